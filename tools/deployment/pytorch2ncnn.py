"""Export a trained detector to ncnn (through pnnx), for phones.

    python tools/deployment/pytorch2ncnn.py CONFIG CHECKPOINT --out DIR
    python tools/deployment/pytorch2ncnn.py \\
        configs/ghostnet/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py \\
        work_dirs/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes/iter_1500.pth \\
        --out ncnn_retinanet/ --verify data/shapes/val/000000.jpg

Writes ``DIR/model.ncnn.param``, ``DIR/model.ncnn.bin`` (the network, from
the deploy form: BatchNorm folded, the backbone deployed) and
``DIR/meta.json`` (classes, input size, preprocessing, the post-processing
settings). The network stops at every prior's decoded box and scores; NMS
and the rest run in the app, as ``ghostnet_mmdet/deploy/app_postprocess.py``
does it (docs/en/mobile.md). ``--fp16`` stores the weights in half
precision (ncnn's storage on phones).

Run it with ``tools/test.py CONFIG DIR --backend ncnn`` or
``tools/demo.py IMAGE CONFIG DIR --backend ncnn``. Every single-stage
detector config exports (RetinaNet, SSDLite, RTMDet, LiteGFL, YOLOX,
YOLOv3); two-stage detectors (Faster R-CNN) do not.
"""
import argparse
import os.path as osp
import sys

import torch

import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.apis.cli import (add_trust_argument, load_detector_to_export,
                                     reports_user_errors)
from ghostnet_mmdet.deploy import (NcnnDetector, default_input_size, export_ncnn,
                                   match_detections, prepare_for_export)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='detector config file')
    parser.add_argument('checkpoint', help='trained checkpoint of that detector')
    parser.add_argument('--out', required=True, help='the folder to write the ncnn files into')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('HEIGHT', 'WIDTH'),
                        help='input size (default: the side of the test pipeline\'s Resize, '
                        'rounded up to the preprocessor\'s pad_size_divisor, square)')
    parser.add_argument('--fp16', action='store_true',
                        help='store the weights in half precision (run with ncnn\'s fp16 '
                        'storage)')
    parser.add_argument('--verify', metavar='IMAGE',
                        help='run this image through PyTorch and ncnn and compare')
    add_trust_argument(parser, 'the checkpoint')
    return parser.parse_args(argv)


def verify(cfg, model, folder, image):
    """PyTorch and ncnn on one image: the detections, side by side."""
    from mmdet.apis import inference_detector
    with torch.no_grad():
        expected = inference_detector(model, image).pred_instances
    runtime = NcnnDetector(folder, cfg.model.data_preprocessor)
    runtime.cfg = cfg
    with torch.no_grad():
        actual = inference_detector(runtime, image).pred_instances
    mismatch = match_detections(expected, actual, score_atol=1e-4, box_atol=1e-2)
    print(f'verify {image}: PyTorch {len(expected)} detections, ncnn {len(actual)}: '
          + (f'they differ: {mismatch}' if mismatch else
             'the same detections (labels equal, scores within 1e-4, boxes within 0.01 px)'))


@reports_user_errors
def main(argv=None):
    args = parse_args(argv)
    model = load_detector_to_export(args.config, args.checkpoint, args.trust_checkpoint)
    cfg, classes = model.cfg, model.dataset_meta['classes']
    input_size = tuple(args.shape) if args.shape else default_input_size(cfg)
    prepare_for_export(model, fuse=True)
    info = export_ncnn(model, args.out, input_size, classes=classes,
                       metadata=dict(config=osp.basename(args.config)), fp16=args.fp16,
                       data_preprocessor=cfg.model.data_preprocessor)
    print(f'wrote {args.out}: model.ncnn.param ({sum(info["layers"].values())} layers), '
          f'model.ncnn.bin ({info["weights"]} weights), meta.json; input '
          f'3x{input_size[0]}x{input_size[1]}, outputs {info["outputs"]}, '
          f'{len(info["classes"])} classes, post-processing {info["postprocess"]["family"]}')
    if args.verify:
        verify(cfg, model, args.out, args.verify)
    return 0


if __name__ == '__main__':
    sys.exit(main())
