"""INT8 post-training quantization of a trained detector for one runtime:
export it in that runtime's deploy form (as pytorch2onnx.py --fuse
--backend), calibrate on training images of the config's own dataset, write
an INT8 QDQ ONNX file with the quantizer patterns that runtime fuses.

    python tools/deployment/quantize.py CONFIG CHECKPOINT --backend openvino \\
        --calib-images 300 --out model_int8_openvino.onnx
    python tools/test.py CONFIG model_int8_openvino.onnx --backend openvino

Each runtime runs the other's INT8 file slower than float32, so the file
names its runtime and the other refuses it. The new file is timed against
float32 in its runtime on this processor and not written if it is slower
(``--max-ratio``, ``--no-speed-check``): INT8 does not pay everywhere
(docs/en/benchmarks.md).

INT8 speed depends on the processor: with AVX-512 VNNI (or AVX-VNNI) an
INT8 multiply-add is one instruction; on AVX2 alone it takes three, and the
gain over float32 is smaller (``lscpu | grep -o 'avx512_vnni\\|avx_vnni'``).
"""
import os
import os.path as osp
import sys
import tempfile
import time

import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.apis.cli import (detector_to_export, export_parser,
                                     reports_user_errors)
from ghostnet_mmdet.deploy import export_onnx
from ghostnet_mmdet.deploy.export.ghostnet_form import to_export_form
from ghostnet_mmdet.deploy.quantize import (DEFAULT_KEEP_FP32, ENGINES, KEEP_FP32_KINDS,
                                            calibration_inputs, conv_kinds, int8_speed_ratio,
                                            onnx_conv_nodes, quantize_onnx)


def parse_args(argv=None):
    parser = export_parser(__doc__.split('\n\n')[0], 'the INT8 .onnx file to write')
    parser.add_argument('--calib-images', type=int, default=300,
                        help='training images to calibrate on (default 300)')
    parser.add_argument('--keep-fp32', nargs='*', choices=KEEP_FP32_KINDS,
                        default=list(DEFAULT_KEEP_FP32),
                        help='kinds of convolution kept in float32 (default: '
                        f'{" ".join(DEFAULT_KEEP_FP32)})')
    parser.add_argument('--backend', required=True, choices=list(ENGINES),
                        help="the runtime the INT8 file is made for: openvino (quantizers "
                        "placed by OpenVINO's NNCF) or onnxruntime (its own static "
                        'quantization); the other runtime refuses the file')
    parser.add_argument('--calibration', choices=['minmax', 'percentile', 'entropy'],
                        default='minmax', help='how activation ranges are set (default minmax; '
                        'percentile and entropy with --backend onnxruntime)')
    parser.add_argument('--reduce-range', action='store_true',
                        help='7-bit weights: avoids int16 saturation of the AVX2 (non-VNNI) '
                        'INT8 kernels of onnxruntime, at some accuracy')
    parser.add_argument('--fp32-out', help='also keep the float32 deploy-form file here')
    parser.add_argument('--seed', type=int, default=0, help='seed of the calibration draw')
    parser.add_argument('--max-ratio', type=float, default=1.0,
                        help='the INT8 file is timed against float32 in its runtime on this '
                        'processor and refused (not written) if it takes more than this '
                        'fraction of float32\'s time (default 1.0: never slower)')
    parser.add_argument('--no-speed-check', action='store_true',
                        help='write the INT8 file without timing it against float32')
    return parser.parse_args(argv)


@reports_user_errors
def main(argv=None):
    args = parse_args(argv)
    if args.calib_images < 1:
        print(f'error: --calib-images must be at least 1, got {args.calib_images}',
              file=sys.stderr)
        return 2
    model, cfg, classes, input_size = detector_to_export(args, fuse=True)
    form = to_export_form(model, args.backend)
    kinds = conv_kinds(form)
    with tempfile.TemporaryDirectory() as folder:
        fp32_file = args.fp32_out or osp.join(folder, 'fp32.onnx')
        export_onnx(form, fp32_file, input_size, classes=classes, backend=args.backend,
                    metadata=dict(config=osp.basename(args.config), fused=True))
        import onnx
        keep = onnx_conv_nodes(onnx.load(fp32_file),
                               [path for kind in args.keep_fp32 for path in kinds[kind]],
                               root=form)
        started = time.perf_counter()
        print(f'calibrating on {args.calib_images} training images of the config '
              f'({input_size[0]}x{input_size[1]}) ...', flush=True)
        inputs = calibration_inputs(cfg, args.calib_images, input_size, seed=args.seed)
        record = quantize_onnx(fp32_file, args.out, inputs, keep, backend=args.backend,
                               calibration=args.calibration, reduce_range=args.reduce_range,
                               extra_metadata=dict(keep_fp32=list(args.keep_fp32)))
        ratio = None
        if not args.no_speed_check:
            print('timing INT8 against float32 in '
                  f'{args.backend} on this processor ...', flush=True)
            ratio = int8_speed_ratio(fp32_file, args.out, args.backend, inputs[0])
    if ratio is not None and ratio > args.max_ratio:
        os.remove(args.out)
        other = 'openvino' if args.backend == 'onnxruntime' else 'onnxruntime'
        print(f'error: the INT8 file takes {ratio:.2f}x the time of float32 in {args.backend} on '
              f'this processor (more than --max-ratio {args.max_ratio:g}), so it was not written: '
              f'INT8 does not pay for this detector in {args.backend} here. Deploy the float32 '
              f'file (pytorch2onnx.py --fuse --backend {args.backend}), or INT8 for the other '
              f'runtime (--backend {other}); --no-speed-check writes it anyway', file=sys.stderr)
        return 2
    speed = '' if ratio is None else f'; {ratio:.2f}x the time of float32 in {args.backend} here'
    print(f'wrote {args.out} (for {args.backend}, quantized by {record["engine"]}): '
          f'{record["int8_convs"]} convolutions in INT8, '
          f'{record["fp32_convs"]} kept in float32 ({", ".join(args.keep_fp32) or "none"}), '
          f'{record["calibration"]} calibration on {record["calibration_images"]} images, '
          f'{time.perf_counter() - started:.0f} s{speed}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
