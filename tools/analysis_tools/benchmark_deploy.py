"""CPU latency of whole detectors in their deploy forms, in one interleaved
run: PyTorch eager (the config as it is), PyTorch fused (backbone
switch_to_deploy, every BatchNorm folded, NHWC) and onnxruntime (the fused
model exported with NMS in the graph). Each timing goes from the normalised
input tensor to the final detections (network, box decoding, NMS), batch 1.

    python tools/analysis_tools/benchmark_deploy.py --sizes 256 640 --threads 2

Without --checkpoints the weights are random, and the class biases are
spread so that about as many boxes reach NMS as with a trained model.
"""
import argparse
import os
import os.path as osp
import tempfile

import torch

from mmdet.structures import DetDataSample
import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.deploy import export_onnx, load_session, prepare_for_export
from ghostnet_mmdet.utils.benchmark import detector_to_time, interleaved, medians

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DETECTORS = {
    'RetinaNet GhostNet-1.0x, GhostShapes config':
        'configs/ghostnet/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py',
    'RetinaNet GhostNet-1.0x, COCO config': 'configs/ghostnet/retinanet_ghostnet-1.0x_fpn_1x_coco.py',
    'YOLOX GhostNet-1.0x, COCO config': 'configs/ghostnet/yolox_ghostnet-1.0x_8xb8-300e_coco.py',
    'RetinaNet MobileNetV2, GhostShapes config':
        'configs/baselines/retinanet_mobilenetv2_fpn_1xb8-1.5k_shapes.py',
    'RetinaNet R-50 (MMDetection), COCO config': 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
}
MODES = ('eager', 'fused', 'onnxruntime')


def build(config, checkpoint=None):
    return detector_to_time(config if config.startswith('mmdet::') else osp.join(REPO, config),
                            checkpoint)


def fused(model):
    prepare_for_export(model, fuse=True)
    if hasattr(model.backbone, 'channels_last'):
        model.backbone.channels_last = True
    return model.to(memory_format=torch.channels_last)


def runners(name, config, checkpoint, size, threads, folder):
    """name/mode -> a function of the normalised input."""
    samples = [DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                           scale_factor=(1.0, 1.0)))]
    eager = build(config, checkpoint)
    fast = fused(build(config, checkpoint))
    path = osp.join(folder, f'{len(os.listdir(folder))}.onnx')
    export_onnx(fused(build(config, checkpoint)), path, (size, size))
    session, _ = load_session(path, threads)
    return {
        (name, 'eager'): lambda x: eager.predict(x, samples),
        (name, 'fused'): lambda x: fast.predict(x.contiguous(memory_format=torch.channels_last),
                                                samples),
        (name, 'onnxruntime'): lambda x: session.run(None, {'input': x.numpy()}),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[256, 640])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--only', nargs='*', help='names (substrings) of the detectors to time')
    parser.add_argument('--checkpoints', nargs='*', default=[], metavar='NAME=PATH',
                        help='trained weights for a detector, e.g. "GhostShapes config=ckpt.pth"')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoints = dict(item.split('=', 1) for item in args.checkpoints)
    detectors = {name: config for name, config in DETECTORS.items()
                 if not args.only or any(part in name for part in args.only)}
    print(f'torch {torch.__version__}, onnxruntime {__import__("onnxruntime").__version__}, '
          f'{args.threads} threads, batch 1, {args.rounds} interleaved rounds, medians in ms')
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            functions = {}
            for name, config in detectors.items():
                checkpoint = next((p for key, p in checkpoints.items() if key in name), None)
                functions.update(runners(name, config, checkpoint, size, args.threads, folder))
            inputs = torch.randn(1, 3, size, size)
            calls = {key: (lambda function=function: function(inputs))
                     for key, function in functions.items()}
            with torch.no_grad():
                timed = medians(interleaved(calls, args.rounds, args.warmup))
            for (name, mode), value in timed.items():
                results[(name, mode, size)] = value
    header = ' | '.join(f'{mode} {size}' for size in args.sizes for mode in MODES)
    print(f'\n| detector | {header} |')
    print('|---|' + '---|' * (len(args.sizes) * len(MODES)))
    for name in detectors:
        cells = ' | '.join(f'{results[(name, mode, size)]:.1f}'
                           for size in args.sizes for mode in MODES)
        print(f'| {name} | {cells} |')
    for size in args.sizes:
        print(f'\nratios at {size}x{size}:')
        for name in detectors:
            eager = results[(name, 'eager', size)]
            print(f'  {name}: fused {results[(name, "fused", size)] / eager:.2f}x, '
                  f'onnxruntime {results[(name, "onnxruntime", size)] / eager:.2f}x of eager')


if __name__ == '__main__':
    main()
