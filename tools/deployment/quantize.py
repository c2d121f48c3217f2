"""INT8 post-training quantization of a trained detector: export it in its
deploy form (as pytorch2onnx.py --fuse), calibrate on training images of the
config's own dataset, write an INT8 QDQ ONNX file that onnxruntime and
OpenVINO both run.

    python tools/deployment/quantize.py CONFIG CHECKPOINT --calib-images 300 --out model_int8.onnx
    python tools/test.py CONFIG model_int8.onnx --backend openvino

``--halves`` chooses the float32 GhostNet graph that is quantized: the
ghost halves kept apart (``split``, as pytorch2onnx.py exports it: a dense
convolution after them is two convolutions summed) or concatenated
(``concat``).

INT8 speed depends on the processor: with AVX-512 VNNI (or AVX-VNNI) an
INT8 multiply-add is one instruction; on AVX2 alone it takes three, and the
gain over float32 is smaller (``lscpu | grep -o 'avx512_vnni\\|avx_vnni'``).
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.apis.cli import (add_trust_argument, load_detector_to_export,
                                     reports_user_errors)
from ghostnet_mmdet.deploy import default_input_size, export_onnx, prepare_for_export
from ghostnet_mmdet.deploy.quantize import (DEFAULT_KEEP_FP32, ENGINES, KEEP_FP32_KINDS,
                                            calibration_inputs, conv_kinds, onnx_conv_nodes,
                                            quantize_onnx)



def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='detector config file')
    parser.add_argument('checkpoint', help='trained checkpoint of that detector')
    parser.add_argument('--out', required=True, help='the INT8 .onnx file to write')
    parser.add_argument('--calib-images', type=int, default=300,
                        help='training images to calibrate on (default 300)')
    parser.add_argument('--keep-fp32', nargs='*', choices=KEEP_FP32_KINDS,
                        default=list(DEFAULT_KEEP_FP32),
                        help='kinds of convolution kept in float32 (default: '
                        f'{" ".join(DEFAULT_KEEP_FP32)})')
    parser.add_argument('--engine', choices=list(ENGINES), default='nncf',
                        help="who places the quantizers: OpenVINO's NNCF (default; fastest in "
                        "OpenVINO) or onnxruntime's static quantization (convolutions only)")
    parser.add_argument('--calibration', choices=['minmax', 'percentile', 'entropy'],
                        default='minmax', help='how activation ranges are set (default minmax; '
                        'percentile and entropy with --engine onnxruntime)')
    parser.add_argument('--reduce-range', action='store_true',
                        help='7-bit weights: avoids int16 saturation of the AVX2 (non-VNNI) '
                        'INT8 kernels of onnxruntime, at some accuracy')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('HEIGHT', 'WIDTH'),
                        help="input size (default: the test pipeline's, as pytorch2onnx.py)")
    parser.add_argument('--fp32-out', help='also keep the float32 deploy-form file here')
    parser.add_argument('--seed', type=int, default=0, help='seed of the calibration draw')
    parser.add_argument('--halves', choices=['split', 'concat'], default='concat',
                        help="GhostNet's ghost halves in the graph to quantize: apart (as "
                        'pytorch2onnx.py exports them) or concatenated (default)')
    add_trust_argument(parser, 'the checkpoint')
    return parser.parse_args(argv)


@reports_user_errors
def main(argv=None):
    args = parse_args(argv)
    if args.calib_images < 1:
        print(f'error: --calib-images must be at least 1, got {args.calib_images}',
              file=sys.stderr)
        return 2
    model = load_detector_to_export(args.config, args.checkpoint, args.trust_checkpoint)
    cfg, classes = model.cfg, model.dataset_meta['classes']
    input_size = tuple(args.shape) if args.shape else default_input_size(cfg)
    prepare_for_export(model, fuse=True)
    if hasattr(getattr(model, 'backbone', None), 'deploy_split_halves'):
        model.backbone.deploy_split_halves = args.halves == 'split'
    kinds = conv_kinds(model)
    with tempfile.TemporaryDirectory() as folder:
        fp32_file = args.fp32_out or osp.join(folder, 'fp32.onnx')
        export_onnx(model, fp32_file, input_size, classes=classes,
                    metadata=dict(config=osp.basename(args.config), fused=True))
        import onnx
        keep = onnx_conv_nodes(onnx.load(fp32_file),
                               [path for kind in args.keep_fp32 for path in kinds[kind]],
                               root=model)
        started = time.perf_counter()
        print(f'calibrating on {args.calib_images} training images of the config '
              f'({input_size[0]}x{input_size[1]}) ...', flush=True)
        inputs = calibration_inputs(cfg, args.calib_images, input_size, seed=args.seed)
        record = quantize_onnx(fp32_file, args.out, inputs, keep, engine=args.engine,
                               calibration=args.calibration, reduce_range=args.reduce_range,
                               extra_metadata=dict(keep_fp32=list(args.keep_fp32)))
    print(f'wrote {args.out} ({args.engine}): {record["int8_convs"]} convolutions in INT8, '
          f'{record["fp32_convs"]} kept in float32 ({", ".join(args.keep_fp32) or "none"}), '
          f'{record["calibration"]} calibration on {record["calibration_images"]} images, '
          f'{time.perf_counter() - started:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
