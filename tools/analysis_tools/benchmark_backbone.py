"""CPU latency of the GhostNet backbone against timm's ghostnet_100 (the same
architecture) and, optionally, MMDetection's MobileNetV2 and ResNet-18.

Each network runs through stride 32 (GhostNet: through stage 8, the last FPN
tap), batch 1, eval mode, no grad. Networks are timed in interleaved rounds so
in a rotating order, so that machine noise and cache effects hit them alike;
the table gives medians and the ratio to timm measured in this one run.

    python tools/analysis_tools/benchmark_backbone.py --size 640 --threads 2
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn


class TimmThroughStage8(nn.Module):
    """timm's GhostNet from the stem through stage 8 (blocks 0-8)."""

    def __init__(self, widen_factor):
        super().__init__()
        import timm
        name = {0.5: 'ghostnet_050', 1.0: 'ghostnet_100', 1.3: 'ghostnet_130'}[widen_factor]
        net = timm.create_model(name, pretrained=False)
        self.stem = nn.Sequential(net.conv_stem, net.bn1, net.act1)
        self.blocks = net.blocks[:9]

    def forward(self, x):
        return self.blocks(self.stem(x))


def build_networks(widen_factor, with_baselines):
    from mmdet.registry import MODELS
    import ghostnet_mmdet  # noqa: F401
    networks = {
        f'ghostnet_mmdet GhostNet {widen_factor}x (out 4,6,8)':
            MODELS.build(dict(type='GhostNet', widen_factor=widen_factor)),
        f'timm ghostnet {widen_factor}x through stage 8': TimmThroughStage8(widen_factor),
    }
    if with_baselines:
        networks['mmdet MobileNetV2 1.0x (out 2,4,6)'] = MODELS.build(
            dict(type='MobileNetV2', out_indices=(2, 4, 6)))
        networks['mmdet ResNet-18'] = MODELS.build(dict(type='ResNet', depth=18))
    return networks


def benchmark(networks, size, rounds, warmup):
    x = torch.randn(1, 3, size, size)
    times = {name: [] for name in networks}
    with torch.no_grad():
        for net in networks.values():
            net.eval()
            for _ in range(warmup):
                net(x)
        names = list(networks)
        for round_index in range(rounds):
            # Rotate the order so no network always follows the same one.
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                networks[name](x)
                times[name].append((time.perf_counter() - start) * 1000)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=int, default=640, help='input side (default 640)')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads (default 2)')
    parser.add_argument('--rounds', type=int, default=20, help='timed rounds (default 20)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed runs per network')
    parser.add_argument('--widen-factor', type=float, default=1.0, choices=[0.5, 1.0, 1.3],
                        help='GhostNet width (timm has 0.5, 1.0, 1.3)')
    parser.add_argument('--with-baselines', action='store_true',
                        help='also time MMDetection MobileNetV2 and ResNet-18')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    networks = build_networks(args.widen_factor, args.with_baselines)
    times = benchmark(networks, args.size, args.rounds, args.warmup)
    medians = {name: statistics.median(t) for name, t in times.items()}
    timm_name = next(n for n in networks if n.startswith('timm'))
    print(f'\nCPU latency, batch 1, {args.size}x{args.size}, {args.threads} threads, '
          f'{args.rounds} interleaved rounds, torch {torch.__version__}')
    width = max(len(n) for n in networks)
    print(f'| {"network":<{width}} | median ms |   min ms | ratio to timm |')
    print(f'|{"-" * (width + 2)}|-----------|----------|---------------|')
    for name, median in medians.items():
        ratio = median / medians[timm_name]
        print(f'| {name:<{width}} | {median:9.1f} | {min(times[name]):8.1f} | {ratio:13.3f} |')


if __name__ == '__main__':
    main()
