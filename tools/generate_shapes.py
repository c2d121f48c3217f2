"""Draw the GhostShapes dataset by hand (the shapes configs also make it on
first use).

    python tools/generate_shapes.py data/shapes --train 2400 --val 200 --image-size 256 --seed 0
"""
from ghostnet_mmdet.datasets.shapes import main

if __name__ == '__main__':
    main()
