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
``tools/demo.py IMAGE CONFIG DIR --backend ncnn``. Every detector config
exports (RetinaNet, SSDLite, RTMDet, LiteGFL, YOLOX, YOLOv3, and Faster
R-CNN as two networks, ``roi_head.ncnn.*`` the second, with RoIAlign in the
app between them).
"""
import os.path as osp
import sys

import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.apis.cli import (detector_to_export, export_parser, reports_user_errors,
                                     verify_on_image)
from ghostnet_mmdet.deploy import NcnnDetector, export_ncnn


def parse_args(argv=None):
    parser = export_parser(__doc__.split('\n\n')[0], 'the folder to write the ncnn files into')
    parser.add_argument('--fp16', action='store_true',
                        help='store the weights in half precision (run with ncnn\'s fp16 '
                        'storage)')
    parser.add_argument('--verify', metavar='IMAGE',
                        help='run this image through PyTorch and ncnn and compare')
    return parser.parse_args(argv)


@reports_user_errors
def main(argv=None):
    args = parse_args(argv)
    model, cfg, classes, input_size = detector_to_export(args, fuse=True)
    info = export_ncnn(model, args.out, input_size, classes=classes,
                       metadata=dict(config=osp.basename(args.config)), fp16=args.fp16,
                       data_preprocessor=cfg.model.data_preprocessor)
    print(f'wrote {args.out}: model.ncnn.param ({sum(info["layers"].values())} layers), '
          f'model.ncnn.bin ({info["weights"]} weights), meta.json; input '
          f'3x{input_size[0]}x{input_size[1]}, outputs {info["outputs"]}, '
          f'{len(info["classes"])} classes, post-processing {info["postprocess"]["family"]}')
    if args.verify:
        # ncnn's float32 kernels round differently from PyTorch's: the
        # tolerance of the ONNX export matrix for random heads.
        verify_on_image(cfg, model, NcnnDetector(args.out, cfg.model.data_preprocessor),
                        args.verify, 'ncnn', score_atol=1e-4, box_atol=1e-2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
