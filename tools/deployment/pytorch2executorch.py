"""Export a trained detector to ExecuTorch (XNNPACK delegate), PyTorch's
on-device runtime, in float32.

    python tools/deployment/pytorch2executorch.py CONFIG CHECKPOINT --out DIR
    python tools/test.py CONFIG DIR --backend executorch

Writes ``DIR/model.pte`` (the network from the deploy form, BatchNorm
folded and the backbone deployed, up to every prior's decoded box and
scores, lowered to XNNPACK) and ``DIR/meta.json`` (classes, input size,
preprocessing, the post-processing settings). NMS and the rest run in the
app, as ``ghostnet_mmdet/deploy/app_postprocess.py`` does it (the same as
for ncnn: docs/en/mobile.md). Single-stage detectors (RetinaNet, SSDLite,
RTMDet, LiteGFL, YOLOX, YOLOv3). INT8 (PT2E with XNNPACK's quantizer) gave
no working program for these detectors with ExecuTorch 1.5.1: not offered.
"""
import os.path as osp
import sys
import time

import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.apis.cli import (detector_to_export, export_parser, reports_user_errors,
                                     verify_on_image)
from ghostnet_mmdet.deploy import ExecuTorchDetector, export_executorch


def parse_args(argv=None):
    parser = export_parser(__doc__.split('\n\n')[0], 'the folder to write the ExecuTorch '
                           'program and meta.json into')
    parser.add_argument('--verify', metavar='IMAGE',
                        help='run this image through PyTorch and ExecuTorch and compare')
    return parser.parse_args(argv)


@reports_user_errors
def main(argv=None):
    args = parse_args(argv)
    model, cfg, classes, input_size = detector_to_export(args, fuse=True)
    started = time.perf_counter()
    info = export_executorch(model, args.out, input_size, classes=classes,
                             metadata=dict(config=osp.basename(args.config)),
                             data_preprocessor=cfg.model.data_preprocessor)
    size = osp.getsize(osp.join(args.out, 'model.pte')) / 2**20
    print(f'wrote {args.out}: model.pte ({size:.1f} MiB, {info["weights"]}), meta.json; input '
          f'3x{input_size[0]}x{input_size[1]}, outputs {list(info["outputs"])}, '
          f'{len(info["classes"])} classes, post-processing {info["postprocess"]["family"]}, '
          f'{time.perf_counter() - started:.0f} s')
    if args.verify:
        verify_on_image(cfg, model, ExecuTorchDetector(args.out, cfg.model.data_preprocessor),
                        args.verify, 'ExecuTorch', score_atol=1e-4, box_atol=1e-2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
