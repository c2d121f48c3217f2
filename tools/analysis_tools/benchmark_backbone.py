"""Speed of the GhostNet backbone against timm's ghostnet_100 (the same
architecture) and, optionally, MMDetection's MobileNetV2 and ResNet-18/50.

Each network runs through stride 32 (GhostNet: through stage 8, the last FPN
tap). Networks are timed in interleaved rounds in a rotating order, so that
machine noise and cache effects hit them alike; the table gives medians and
the ratio to timm measured in this one run.

CPU (default): batch 1, eval, no grad, wall-clock latency; ours as built,
in NHWC, and in deploy form (BatchNorm folded) in NHWC.

    python tools/analysis_tools/benchmark_backbone.py --size 640 --threads 2 --with-baselines

GPU (--device cuda): batch 32, channels_last, fp32 and bf16 autocast, eval
forward and training step (forward, backward, SGD step), CUDA-event timing
after warm-up, images per second; eager and torch.compile.

    python tools/analysis_tools/benchmark_backbone.py --device cuda --batch 32 --size 640
"""
import argparse
import statistics

import torch
import torch.nn as nn

from ghostnet_mmdet.utils.benchmark import (cpu_timer, cuda_timer, cuda_train_infer_steps,
                                            interleaved)


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


def build_networks(widen_factor, with_baselines, device):
    from mmdet.registry import MODELS
    import ghostnet_mmdet  # noqa: F401
    ours = f'ghostnet_mmdet GhostNet {widen_factor}x (out 4,6,8)'
    networks = {
        ours: MODELS.build(dict(type='GhostNet', widen_factor=widen_factor)),
        f'{ours}, NHWC': MODELS.build(dict(type='GhostNet', widen_factor=widen_factor,
                                           channels_last=True)),
        f'timm ghostnet {widen_factor}x through stage 8': TimmThroughStage8(widen_factor),
    }
    if device == 'cpu':
        fused = MODELS.build(dict(type='GhostNet', widen_factor=widen_factor, channels_last=True))
        fused.eval().switch_to_deploy()
        networks[f'{ours}, deploy form (BN folded), NHWC'] = fused
    if with_baselines:
        networks['mmdet MobileNetV2 1.0x (out 2,4,6)'] = MODELS.build(
            dict(type='MobileNetV2', out_indices=(2, 4, 6)))
        networks['mmdet ResNet-18'] = MODELS.build(dict(type='ResNet', depth=18))
        if device != 'cpu':
            networks['mmdet ResNet-50'] = MODELS.build(dict(type='ResNet', depth=50))
    return networks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--size', type=int, default=640, help='input side (default 640)')
    parser.add_argument('--batch', type=int, default=None,
                        help='batch size (default 1 on CPU, 32 on CUDA)')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads (default 2)')
    parser.add_argument('--rounds', type=int, default=20, help='timed rounds (default 20)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed runs per network')
    parser.add_argument('--widen-factor', type=float, default=1.0, choices=[0.5, 1.0, 1.3],
                        help='GhostNet width (timm has 0.5, 1.0, 1.3)')
    parser.add_argument('--with-baselines', action='store_true',
                        help='also time MMDetection MobileNetV2 and ResNet-18 (and -50 on CUDA)')
    parser.add_argument('--no-compile', action='store_true', help='CUDA: skip torch.compile rows')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    networks = build_networks(args.widen_factor, args.with_baselines or args.device == 'cuda',
                              args.device)
    timm_name = next(n for n in networks if n.startswith('timm'))
    if args.device == 'cpu':
        batch = args.batch or 1
        x = torch.randn(batch, 3, args.size, args.size)
        functions = {}
        for name, net in networks.items():
            net.eval()
            functions[name] = (lambda net=net: net(x))
        with torch.no_grad():
            times = interleaved(functions, args.rounds, args.warmup, cpu_timer)
        medians = {name: statistics.median(t) for name, t in times.items()}
        print(f'\nCPU latency, batch {batch}, {args.size}x{args.size}, {args.threads} threads, '
              f'{args.rounds} interleaved rounds, torch {torch.__version__}')
        width = max(len(n) for n in networks)
        print(f'| {"network":<{width}} | median ms |   min ms | ratio to timm |')
        print(f'|{"-" * (width + 2)}|-----------|----------|---------------|')
        for name, median in medians.items():
            print(f'| {name:<{width}} | {median:9.1f} | {min(times[name]):8.1f} | '
                  f'{median / medians[timm_name]:13.3f} |')
        return
    batch = args.batch or 32
    networks = {name: net.cuda().to(memory_format=torch.channels_last)
                for name, net in networks.items()}
    functions = cuda_train_infer_steps(networks, batch, args.size, not args.no_compile)
    times = interleaved(functions, args.rounds, args.warmup, cuda_timer)
    rate = {key: batch / (statistics.median(t) / 1000) for key, t in times.items()}
    print(f'\n{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA '
          f'{torch.version.cuda}, batch {batch}, {args.size}x{args.size}, channels_last, '
          f'{args.rounds} interleaved rounds; images per second (median)')
    print('| network | fp32 infer | fp32 train | bf16 infer | bf16 train |')
    print('|---|---|---|---|---|')
    for name in dict.fromkeys(key[0] for key in rate):
        cells = ' | '.join(f'{rate[(name, tag, mode)]:.0f}'
                           for tag in ('fp32', 'bf16') for mode in ('infer', 'train'))
        print(f'| {name} | {cells} |')


if __name__ == '__main__':
    main()
