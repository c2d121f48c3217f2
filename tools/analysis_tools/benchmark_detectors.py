"""CPU inference latency of whole detectors (preprocessing, network, box
decoding and NMS), batch 1, measured in one run with interleaved rounds.

    python tools/analysis_tools/benchmark_detectors.py \\
        configs/ghostnet/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py \\
        configs/baselines/retinanet_r18_fpn_1xb8-1.5k_shapes.py \\
        configs/baselines/retinanet_mobilenetv2_fpn_1xb8-1.5k_shapes.py \\
        --sizes 256 640 --threads 2 --fused

--checkpoints (one per config, in order; '-' for none) load trained weights,
which makes the NMS workload realistic; without them the classification
layers get varied scores so that about as many boxes reach NMS. --fused
also times every detector in deploy form: the backbone's switch_to_deploy
(BatchNorm folded, GhostNetV3's branches merged) and every other BatchNorm
folded with mmcv's fuse_conv_bn.
"""
import argparse
import os.path as osp

import torch

import ghostnet_mmdet  # noqa: F401
from ghostnet_mmdet.apis import detector_to_time
from ghostnet_mmdet.utils.benchmark import interleaved, medians


def build(config, checkpoint=None, fuse=False):
    return detector_to_time(config, checkpoint, deploy_form=fuse)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--checkpoints', nargs='*', default=None)
    parser.add_argument('--sizes', type=int, nargs='+', default=[256])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=30)
    parser.add_argument('--fused', action='store_true', help='also time the deploy forms')
    args = parser.parse_args()
    if args.checkpoints and len(args.checkpoints) != len(args.configs):
        parser.error('give one checkpoint per config (- for none)')
    torch.set_num_threads(args.threads)
    from mmdet.structures import DetDataSample
    checkpoints = [None if c == '-' else c for c in (args.checkpoints or [None] * len(args.configs))]
    forms = [False, True] if args.fused else [False]
    models = {(osp.basename(c), fuse): build(c, checkpoint, fuse)
              for c, checkpoint in zip(args.configs, checkpoints) for fuse in forms}
    generator = torch.Generator().manual_seed(0)
    results = {}
    for size in args.sizes:
        shape = (size, size)
        image = torch.randint(0, 256, (3, *shape), dtype=torch.uint8, generator=generator)

        def step(model):
            meta = dict(img_shape=shape, ori_shape=shape, scale_factor=(1.0, 1.0))
            return model.test_step(dict(inputs=[image], data_samples=[DetDataSample(metainfo=meta)]))

        calls = {key: (lambda model=model: step(model)) for key, model in models.items()}
        with torch.no_grad():
            for key, value in medians(interleaved(calls, args.rounds, warmup=3)).items():
                results[key + (size, )] = value
    print(f'\nDetector latency (ms, median), batch 1, {args.threads} threads, {args.rounds} '
          'interleaved rounds' + ('; deploy form: BatchNorm folded, V3 re-parameterised'
                                  if args.fused else ''))
    columns = [(fuse, size) for size in args.sizes for fuse in forms]
    print('| config | params | ' + ' | '.join(
        f'{"deploy form" if fuse else "eager"} {size}' for fuse, size in columns) + ' |')
    print('|---|---|' + '---|' * len(columns))
    for config in dict.fromkeys(name for name, _ in models):
        params = sum(p.numel() for p in models[(config, False)].parameters()) / 1e6
        cells = ' | '.join(f'{results[(config, fuse, size)]:.1f}' for fuse, size in columns)
        print(f'| {config} | {params:.2f}M | {cells} |')


if __name__ == '__main__':
    main()
