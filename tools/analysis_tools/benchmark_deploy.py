"""CPU latency of detectors (or their backbones alone) in every deploy form,
in one interleaved run: PyTorch eager (the config as it is), PyTorch fused
(deploy form: backbone switch_to_deploy, every BatchNorm folded, NHWC), and
the fused model exported to ONNX in each runtime's export form, run by
onnxruntime and by OpenVINO, in float32 and in INT8 made for that runtime
(QDQ, tools/deployment/quantize.py's defaults). A
detector's timing goes from the normalised input tensor to the final
detections (network, box decoding, NMS in the graph), batch 1; a
backbone's to its feature maps.

    python tools/analysis_tools/benchmark_deploy.py --sizes 320 640 --threads 2
    python tools/analysis_tools/benchmark_deploy.py --part backbone --sizes 320 640 \\
        --only GhostNet-1.0x MobileNetV2 --modes onnxruntime openvino
    python tools/analysis_tools/benchmark_deploy.py --sizes 320 --only SSDLite \\
        --ratios GhostNet/MobileNetV2 --modes eager onnxruntime openvino
    python tools/analysis_tools/benchmark_deploy.py --sizes 320 640 --only "RetinaNet GhostNet-1.0x" \\
        "RetinaNet MobileNetV2" --checkpoints "GhostNet-1.0x=a.pth" "MobileNetV2=b.pth" \\
        --image data/shapes/val/000003.jpg --ratios GhostNet/MobileNetV2

Ratios are medians of per-round ratios (steadier than ratios of medians on
a noisy machine). Each round runs every variant once, in a random order,
after --pause seconds of idling (default 0.1: onnxruntime's workers spin
after a run and slowed an OpenVINO run that followed at once by up to 2.3x
on a 2-core machine). Without --checkpoints the weights are random, and the
class biases are spread so that boxes reach NMS on random input (more than
a trained model's: see spread_head_scores); INT8 files are then calibrated
on random inputs (their speed does not depend on the ranges). With trained
--checkpoints and an --image, NMS has a real image's work. Modes: eager,
fused, onnxruntime, openvino, onnxruntime-int8, openvino-int8, and runtime
settings to compare: onnxruntime-extended / -basic (graph optimisation
level), onnxruntime-nolayout (its NCHWc pass off), openvino-throughput
(hint), openvino-resize (OpenVINO running onnxruntime's export form, whose
squeeze-excite gates are a Resize instead of a broadcast); and ncnn,
ncnn-fp16 (tools/deployment/pytorch2ncnn.py's files, a detector with the
app's NumPy post-processing after the network; on x86 these are x86
figures, not a phone's); executorch (tools/deployment/pytorch2executorch.py's
programs, XNNPACK, the same post-processing). The work is done by
ghostnet_mmdet/apis/deploy_benchmark.py.

    python tools/analysis_tools/benchmark_deploy.py --sizes 320 --only "LiteGFL" \
        --modes ncnn onnxruntime openvino --ratios ncnn/onnxruntime ncnn/openvino
"""
import argparse
import os.path as osp

import torch

import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.apis.deploy_benchmark import (APP_MODES, DETECTORS, MODES, SETTINGS,
                                                  print_report, software, time_deploy,
                                                  write_medians)
from ghostnet_mmdet.deploy.export.ghostnet_form import DEFAULT_CHANNEL_BLOCK
from ghostnet_mmdet.deploy.quantize import DEFAULT_KEEP_FP32, KEEP_FP32_KINDS
from ghostnet_mmdet.utils.benchmark import processor_name


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--part', choices=['detector', 'backbone'], default='detector')
    parser.add_argument('--sizes', type=int, nargs='+', default=[320, 640])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--pause', type=float, default=0.1,
                        help='seconds of idling before each timed call, so that one '
                        'runtime\'s spinning threads do not slow the next (0: none)')
    parser.add_argument('--modes', nargs='+', choices=MODES + APP_MODES + SETTINGS,
                        default=list(MODES))
    parser.add_argument('--only', nargs='*', help='names (substrings) of the detectors to time')
    parser.add_argument('--block', type=int, default=8,
                        help='channel block for the layout-break count (8 AVX2, 16 AVX-512)')
    parser.add_argument('--channel-blocks', type=int, nargs='*', default=[],
                        help='time the GhostNet detectors in export forms padded to each of '
                        f'these channel blocks (1: no padding) instead of {DEFAULT_CHANNEL_BLOCK}')
    parser.add_argument('--keep-fp32', nargs='*', choices=KEEP_FP32_KINDS,
                        default=list(DEFAULT_KEEP_FP32),
                        help='kinds of convolution the INT8 files keep in float32 (as quantize.py)')
    parser.add_argument('--ratios', nargs='*', default=[], metavar='A/B',
                        help='per-round ratio medians to print, e.g. '
                        '"GhostNet-1.0x/MobileNetV2" or "openvino-int8/openvino"')
    parser.add_argument('--checkpoints', nargs='*', default=[], metavar='NAME=PATH',
                        help='trained weights for a detector, e.g. "GhostNet-1.0x, GhostShapes=x.pth"')
    parser.add_argument('--image', help='time on this image (resized to each size, normalised '
                        'by each detector\'s preprocessor) instead of random input: with trained '
                        '--checkpoints, NMS gets the work of a real image')
    parser.add_argument('--out', help='also write the medians, with the processor, versions, '
                        'threads and date, to this JSON file (.dev_scripts/record_latency.py '
                        'puts them into the metafiles)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image = None
    if args.image:
        import mmcv
        if not osp.isfile(args.image):
            parser.error(f'--image {args.image!r} is not a file')
        image = mmcv.imread(args.image)
    checkpoints = dict(item.split('=', 1) for item in args.checkpoints)
    detectors = {name: config for name, config in DETECTORS.items()
                 if not args.only or any(part in name for part in args.only)}
    print(f'{processor_name()}; {software()}; {args.part}, {args.threads} threads, '
          f'batch 1, {args.rounds} interleaved rounds, medians in ms')
    results, times = time_deploy(detectors, args, checkpoints, image)
    if args.out:
        write_medians(args.out, results, args, detectors)
    print_report(results, times, args)


if __name__ == '__main__':
    main()
