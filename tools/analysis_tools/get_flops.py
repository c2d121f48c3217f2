"""Parameters and FLOPs of GhostNet detectors and of the backbone alone.

Two counts, because they differ and papers use the first:
  * MACs: multiply-accumulates of convolutions and linear layers (the
    GhostNet paper's "FLOPs": 141M for 1.0x at 224x224 with its ImageNet head);
  * MMEngine: mmengine.analysis.get_model_complexity_info, which also counts
    norms, activations and element-wise ops (what MMDetection's get_flops.py
    reports).

    # a detector config, at a given input size (default 800x1333)
    python tools/analysis_tools/get_flops.py configs/retinanet_ghostnet.py --shape 800 1333
    # the backbone at several widths, at 224x224 with the ImageNet head (paper setting)
    python tools/analysis_tools/get_flops.py --backbone 0.5 1.0 1.1 1.3
    # GhostNetV2 / V3 (V3 in its training and its deploy form)
    python tools/analysis_tools/get_flops.py --backbone 1.0 1.3 1.6 --version v2 v3
"""
import argparse

from mmengine.config import DictAction

import ghostnet_mmdet  # noqa: F401
from ghostnet_mmdet.apis.complexity import backbone_complexity, detector_complexity
from ghostnet_mmdet.models import GHOSTNET_VERSIONS


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('configs', nargs='*', help='detector config files')
    parser.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                        help='input size (default: 800 1333 for detectors, 224 224 for --backbone)')
    parser.add_argument('--backbone', type=float, nargs='+', metavar='WIDTH',
                        help='report the classification network at these widths instead')
    parser.add_argument('--version', nargs='+', choices=sorted(GHOSTNET_VERSIONS),
                        default=['v1'],
                        help='with --backbone: GhostNet (v1), GhostNetV2, GhostNetV3')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    if not args.configs and not args.backbone:
        parser.error('give detector config files or --backbone WIDTH ...')
    if args.backbone:
        shape = tuple(args.shape or (224, 224))
        print(f'\nThe network with its ImageNet head at {shape[0]}x{shape[1]}')
        print('| network | width | params | conv+linear MACs | MMEngine FLOPs |')
        print('|---|---|---|---|---|')
        forms = [(v, False) for v in args.version] + [('v3', True)] * ('v3' in args.version)
        for version, deploy in forms:
            for width in args.backbone:
                r = backbone_complexity(width, shape, version, deploy)
                name = GHOSTNET_VERSIONS[version].__name__ + (' (deploy form)' if deploy else '')
                print(f'| {name} | {width}x | {r["params"] / 1e6:.3f}M | '
                      f'{r["macs"] / 1e6:.2f}M | {r["flops"] / 1e6:.1f}M |')
    if args.configs:
        shape = tuple(args.shape or (800, 1333))
        print(f'\nDetectors at {shape[0]}x{shape[1]}, padded as their data preprocessor '
              'pads (FLOPs: MMEngine count; backbone MACs: conv+linear)')
        print('| config | width | input | params | FLOPs | backbone params | backbone MACs | backbone FLOPs |')
        print('|---|---|---|---|---|---|---|---|')
        for config in args.configs:
            r = detector_complexity(config, shape, args.cfg_options)
            print(f'| {config} | {r["width"]}x | {r["shape"][0]}x{r["shape"][1]} | '
                  f'{r["params"] / 1e6:.2f}M | {r["flops"] / 1e9:.2f}G | '
                  f'{r["backbone_params"] / 1e6:.2f}M | {r["backbone_macs"] / 1e6:.0f}M | '
                  f'{r["backbone_flops"] / 1e6:.0f}M |')


if __name__ == '__main__':
    main()
