"""CPU inference latency of whole detectors (preprocessing, network, box
decoding and NMS), batch 1, measured in one run with interleaved rounds.

    python tools/analysis_tools/benchmark_detectors.py \
        configs/ghostnet/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py \
        configs/baselines/retinanet_r18_fpn_1xb8-1.5k_shapes.py \
        configs/baselines/retinanet_mobilenetv2_fpn_1xb8-1.5k_shapes.py --size 256 --threads 2

Weights do not change the cost of the network; they are random here unless
--checkpoints are given (one per config, in order), which also makes the NMS
workload realistic.
"""
import argparse
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import ghostnet_mmdet  # noqa: F401


def build(config, checkpoint=None):
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import MODELS
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    return model.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--checkpoints', nargs='*', default=None)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=30)
    args = parser.parse_args()
    if args.checkpoints and len(args.checkpoints) != len(args.configs):
        parser.error('give one checkpoint per config')
    torch.set_num_threads(args.threads)
    from mmdet.structures import DetDataSample
    models = {c: build(c, args.checkpoints[i] if args.checkpoints else None)
              for i, c in enumerate(args.configs)}
    shape = (args.size, args.size)
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, *shape), dtype=torch.uint8, generator=generator)

    def batch():
        meta = dict(img_shape=shape, ori_shape=shape, scale_factor=(1.0, 1.0))
        return dict(inputs=[image], data_samples=[DetDataSample(metainfo=meta)])

    times = {c: [] for c in models}
    names = list(models)
    with torch.no_grad():
        for name in names:
            for _ in range(3):
                models[name].test_step(batch())
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                models[name].test_step(batch())
                times[name].append((time.perf_counter() - start) * 1000)
    print(f'\nDetector latency, batch 1, {args.size}x{args.size}, {args.threads} threads, '
          f'{args.rounds} interleaved rounds')
    print('| config | params | median ms | min ms |')
    print('|---|---|---|---|')
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f'| {name} | {params:.2f}M | {statistics.median(times[name]):.1f} | '
              f'{min(times[name]):.1f} |')


if __name__ == '__main__':
    main()
