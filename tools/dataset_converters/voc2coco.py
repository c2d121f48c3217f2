"""Pascal VOC XML labels to COCO JSON (MMDetection's CocoDataset format).

    python tools/dataset_converters/voc2coco.py data/my_voc \
        --split-file ImageSets/Main/train.txt --out data/my_voc/train.json

File names in the JSON are relative to the dataset folder, so a config reads
it with data_root='data/my_voc/', ann_file='train.json' and
data_prefix=dict(img='') (docs/en/user_guides/custom_dataset.md).
"""
import argparse
import sys

from ghostnet_mmdet.apis.cli import reports_user_errors
from ghostnet_mmdet.datasets.converters import voc_to_coco, write_coco


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Pascal VOC XML to COCO JSON')
    parser.add_argument('root', help='the dataset folder')
    parser.add_argument('--out', required=True, help='the COCO JSON file to write')
    parser.add_argument('--ann-dir', default='Annotations', help='XML folder under root')
    parser.add_argument('--img-dir', default='JPEGImages', help='image folder under root')
    parser.add_argument('--split-file', help='image stems to convert (e.g. '
                        'ImageSets/Main/train.txt); all XML files if not given')
    parser.add_argument('--classes', nargs='+', help='class names in label order '
                        '(default: the names found, sorted)')
    return parser.parse_args(argv)


@reports_user_errors
def main(argv=None):
    args = parse_args(argv)
    content = voc_to_coco(args.root, args.ann_dir, args.img_dir, args.split_file, args.classes)
    counts = write_coco(content, args.out)
    names = ', '.join(c['name'] for c in content['categories'])
    print(f'{args.out}: {counts["images"]} images, {counts["boxes"]} boxes, '
          f'{counts["classes"]} classes ({names})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
