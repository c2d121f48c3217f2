"""YOLO txt labels to COCO JSON (MMDetection's CocoDataset format).

    python tools/dataset_converters/yolo2coco.py data/my_yolo --img-dir images/train \
        --names data/my_yolo/data.yaml --out data/my_yolo/train.json

Labels are read from the folder YOLO expects (images/train -> labels/train)
unless --label-dir says otherwise; class names from a classes.txt (one a
line) or a data.yaml (names:), or --classes. File names in the JSON are
relative to the dataset folder: data_prefix=dict(img='') in the config.
"""
import argparse
import sys

from ghostnet_mmdet.apis.cli import reports_user_errors
from ghostnet_mmdet.datasets.converters import read_class_names, write_coco, yolo_to_coco


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='YOLO txt labels to COCO JSON')
    parser.add_argument('root', help='the dataset folder')
    parser.add_argument('--img-dir', required=True, help='image folder under root, e.g. '
                        'images/train')
    parser.add_argument('--out', required=True, help='the COCO JSON file to write')
    parser.add_argument('--label-dir', help='txt folder under root (default: img-dir with '
                        'images/ replaced by labels/)')
    names = parser.add_mutually_exclusive_group(required=True)
    names.add_argument('--names', help='classes.txt or data.yaml with the class names')
    names.add_argument('--classes', nargs='+', help='the class names in index order')
    return parser.parse_args(argv)


@reports_user_errors
def main(argv=None):
    args = parse_args(argv)
    classes = args.classes or read_class_names(args.names)
    content = yolo_to_coco(args.root, args.img_dir, classes, args.label_dir)
    counts = write_coco(content, args.out)
    print(f'{args.out}: {counts["images"]} images, {counts["boxes"]} boxes, '
          f'{counts["classes"]} classes ({", ".join(classes)})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
