"""Export a trained detector to ONNX, with box decoding and NMS in the graph.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out model.onnx
    python tools/deployment/pytorch2onnx.py \\
        configs/ghostnet/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py \\
        work_dirs/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes/iter_1500.pth \\
        --out retinanet_shapes.onnx --fuse --verify data/shapes/val/000000.jpg

Every detector config of the plugin exports: RetinaNet, SSDLite, RTMDet,
YOLOX, YOLOv3 and Faster R-CNN (docs/en/deployment.md: the support matrix).

With ``--fuse`` the file is the deploy form made for one runtime
(``--backend``, default onnxruntime): a GhostNet backbone with its ghost
halves apart, its channels padded to ``--channel-block``, and its
squeeze-excite gates in the form that runtime fuses. The other runtime runs
it too, with the same detections, a little slower.

The graph takes the normalised, padded image tensor that the config's test
pipeline and data preprocessor make (input ``input``, N x 3 x H x W) and each
image's height and width inside it (``img_shape``, N x 2, float: boxes are
clipped there, as MMDetection clips them), and returns ``dets`` (N x M x 5:
x1, y1, x2, y2, score, in input pixels) and ``labels`` (N x M; -1 past an
image's detections). Run it with
``tools/test.py CONFIG model.onnx --backend onnxruntime`` (or ``openvino``)
or ``tools/demo.py IMAGE CONFIG model.onnx --backend openvino``.
"""
import os.path as osp
import sys

import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.apis.cli import (detector_to_export, export_parser, reports_user_errors,
                                     verify_on_image)
from ghostnet_mmdet.deploy import BACKENDS, export_onnx
from ghostnet_mmdet.deploy.export.ghostnet_form import DEFAULT_CHANNEL_BLOCK


def parse_args(argv=None):
    parser = export_parser(__doc__.split('\n\n')[0], 'the .onnx file to write')
    parser.add_argument('--batch', type=int, default=1, help='batch size of the graph (default 1)')
    parser.add_argument('--dynamic-batch', action='store_true',
                        help='any batch size at run time (the spatial size stays fixed)')
    parser.add_argument('--fuse', action='store_true',
                        help='the backbone in deploy form (switch_to_deploy) and every other '
                        'BatchNorm folded into its convolution')
    parser.add_argument('--backend', choices=list(BACKENDS), default='onnxruntime',
                        help='the runtime the deploy form is made for (default onnxruntime)')
    parser.add_argument('--channel-block', type=int, default=DEFAULT_CHANNEL_BLOCK,
                        help='pad GhostNet\'s ghost halves to a multiple of this many channels '
                        f'(default {DEFAULT_CHANNEL_BLOCK}: the AVX2 block; 16: AVX-512\'s; '
                        '1: no padding)')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17, >= 11)')
    parser.add_argument('--max-per-img', type=int,
                        help="detections per image (default: the config's test_cfg.max_per_img, "
                        'or 1000 where it has none)')
    parser.add_argument('--verify', metavar='IMAGE',
                        help='run this image through PyTorch and the deploy runtimes and compare')
    parser.add_argument('--verify-backends', nargs='+', choices=list(BACKENDS),
                        default=list(BACKENDS), help='the runtimes --verify runs (default: all)')
    return parser.parse_args(argv)


@reports_user_errors
def main(argv=None):
    args = parse_args(argv)
    model, cfg, classes, input_size = detector_to_export(args, fuse=args.fuse)
    info = export_onnx(model, args.out, input_size, batch_size=args.batch,
                       dynamic_batch=args.dynamic_batch, opset=args.opset,
                       max_per_img=args.max_per_img, classes=classes,
                       metadata=dict(config=osp.basename(args.config), fused=args.fuse),
                       backend=args.backend, channel_block=args.channel_block)
    print(f'wrote {args.out} (for {args.backend}): input 1x3x{input_size[0]}x{input_size[1]}'
          f'{" (dynamic batch)" if args.dynamic_batch else ""}, outputs dets and labels, '
          f'{len(info["classes"])} classes, post-processing {info["postprocess"]}; '
          'onnx.checker passed')
    for backend in args.verify_backends if args.verify else ():
        verify_on_image(cfg, model, BACKENDS[backend](args.out, cfg.model.data_preprocessor),
                        args.verify, backend)
    return 0


if __name__ == '__main__':
    sys.exit(main())
