"""Convert GhostNet, GhostNetV2 or GhostNetV3 ImageNet weights (official
Huawei code or timm) into a checkpoint that ``GhostNet(init_cfg=dict(
type='Pretrained', checkpoint=...))`` (or ``GhostNetV2``/``GhostNetV3``)
loads, or back to timm's layout (``--reverse``).

Examples::

    # official state_dict_73.98.pth, or timm's ghostnet_100 .pth/.safetensors
    python tools/model_converters/ghostnet_to_mmdet.py \
        state_dict_73.98.pth checkpoints/ghostnet-1.0x_imagenet_mmdet.pth

    # timm's ghostnetv2_130 / the official GhostNetV3 1.0x weights
    python tools/model_converters/ghostnet_to_mmdet.py --version v2 --widen-factor 1.3 \
        ghostnetv2_130.pth checkpoints/ghostnetv2-1.3x_imagenet_mmdet.pth
    python tools/model_converters/ghostnet_to_mmdet.py --version v3 \
        ghostnetv3-1.0x.pth.tar checkpoints/ghostnetv3-1.0x_imagenet_mmdet.pth

    # a trained detector's backbone back to the official layout
    python tools/model_converters/ghostnet_to_mmdet.py --reverse \
        --prefix backbone. work_dirs/retinanet/epoch_12.pth ghostnet_official.pth

The converted weights are checked against a network of ``--version``
(default v1) and ``--widen-factor`` (default 1.0): a checkpoint of another
version, width or architecture is rejected with what it is and the keys
and shapes that differ. V3 weights are converted in their training form
(``switch_to_deploy`` makes the deploy form).
"""
import argparse
import os
import os.path as osp
import sys

import torch

from ghostnet_mmdet.apis import arch_name, identify_ghostnet_arch
from ghostnet_mmdet.apis.cli import add_trust_argument
from ghostnet_mmdet.models import GHOSTNET_VERSIONS
from ghostnet_mmdet.models.backbones.ghostnet import width_name
from ghostnet_mmdet.utils.checkpoint_conversion import (check_and_load_state_dict,
                                                        is_official_layout,
                                                        mmdet_to_official,
                                                        official_to_mmdet,
                                                        read_state_dict)
from ghostnet_mmdet.utils.safe_load import CheckpointMismatchError, trust_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='input checkpoint (.pth, .pt or .safetensors)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument('--reverse', action='store_true',
                        help='convert ghostnet_mmdet weights to the official/timm layout')
    parser.add_argument('--version', choices=sorted(GHOSTNET_VERSIONS), default='v1',
                        help='GhostNet (v1), GhostNetV2 or GhostNetV3 (default: v1)')
    parser.add_argument('--widen-factor', type=float, default=1.0,
                        help='width the weights must fit (default: 1.0)')
    parser.add_argument('--prefix', default=None,
                        help="take only keys under this prefix, e.g. 'backbone.' "
                        'for a detector checkpoint')
    add_trust_argument(parser, 'SRC')
    return parser.parse_args(argv)


def convert(src, dst, reverse=False, widen_factor=1.0, prefix=None, version='v1'):
    state_dict = read_state_dict(src, prefix=prefix)
    official = is_official_layout(state_dict)
    if reverse and official:
        raise ValueError(f'{src} is already in the official/timm layout')
    if not reverse and official:
        state_dict = official_to_mmdet(state_dict)
    # Check against the whole network, final conv included.
    model = GHOSTNET_VERSIONS[version](widen_factor=widen_factor, out_indices=(2, 4, 6, 8, 9))
    try:
        check_and_load_state_dict(model, state_dict, source=src)
    except CheckpointMismatchError as err:
        found = identify_ghostnet_arch(state_dict)
        if found is None:
            raise
        cls, width, deploy = found
        wanted = arch_name(type(model), widen_factor)
        flags = [f'--version {v}' for v, c in GHOSTNET_VERSIONS.items()
                 if c is cls and v != version]
        flags += [f'--widen-factor {width_name(width)[:-1]}'] if width != widen_factor else []
        hint = f'pass {" ".join(flags)}' if flags else \
            'convert the training-form weights (this is a deploy form)'
        raise CheckpointMismatchError(
            f'{src}: it is a {arch_name(cls, width, deploy)}, not a {wanted}: {hint}.\n'
            f'{err}') from None
    if reverse:
        out = mmdet_to_official(state_dict)
    else:
        out = dict(state_dict=state_dict,
                   meta=dict(source=osp.basename(src), widen_factor=widen_factor,
                             architecture=type(model).__name__, converter='ghostnet_mmdet'))
    dst_dir = osp.dirname(osp.abspath(dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(out, dst)
    return len(state_dict)


def main(argv=None):
    args = parse_args(argv)
    if args.trust_checkpoint:
        trust_checkpoint(args.src)
    try:
        count = convert(args.src, args.dst, args.reverse, args.widen_factor, args.prefix,
                        args.version)
    except (FileNotFoundError, KeyError, ValueError) as err:
        message = err.args[0] if err.args else str(err)
        print(f'error: {message}', file=sys.stderr)
        return 1
    direction = 'official/timm' if args.reverse else 'ghostnet_mmdet'
    print(f'wrote {count} tensors in the {direction} layout to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
