"""Convert GhostNet ImageNet weights (official Huawei code or timm) into a
checkpoint that ``GhostNet(init_cfg=dict(type='Pretrained', checkpoint=...))``
loads, or back (``--reverse``).

Examples::

    # official state_dict_73.98.pth, or timm's ghostnet_100 .pth/.safetensors
    python tools/model_converters/ghostnet_to_mmdet.py \
        state_dict_73.98.pth checkpoints/ghostnet_1.0x_imagenet_mmdet.pth

    # a trained detector's backbone back to the official layout
    python tools/model_converters/ghostnet_to_mmdet.py --reverse \
        --prefix backbone. work_dirs/retinanet/epoch_12.pth ghostnet_official.pth

The converted weights are checked against a GhostNet of ``--widen-factor``
(default 1.0; published weights exist for 1.0x only): a checkpoint of another
width or architecture is rejected with the keys and shapes that differ.
"""
import argparse
import os
import os.path as osp
import sys

import torch

from ghostnet_mmdet.apis.cli import add_trust_argument
from ghostnet_mmdet.models import GhostNet
from ghostnet_mmdet.utils.checkpoint_conversion import (check_and_load_state_dict,
                                                        is_official_layout,
                                                        mmdet_to_official,
                                                        official_to_mmdet,
                                                        read_state_dict)
from ghostnet_mmdet.utils.safe_load import trust_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='input checkpoint (.pth, .pt or .safetensors)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument('--reverse', action='store_true',
                        help='convert ghostnet_mmdet weights to the official/timm layout')
    parser.add_argument('--widen-factor', type=float, default=1.0,
                        help='GhostNet width the weights must fit (default: 1.0)')
    parser.add_argument('--prefix', default=None,
                        help="take only keys under this prefix, e.g. 'backbone.' "
                        'for a detector checkpoint')
    add_trust_argument(parser, 'SRC')
    return parser.parse_args(argv)


def convert(src, dst, reverse=False, widen_factor=1.0, prefix=None):
    state_dict = read_state_dict(src, prefix=prefix)
    official = is_official_layout(state_dict)
    if reverse and official:
        raise ValueError(f'{src} is already in the official/timm layout')
    if not reverse and official:
        state_dict = official_to_mmdet(state_dict)
    # Check against the whole network, final conv included.
    model = GhostNet(widen_factor=widen_factor, out_indices=(2, 4, 6, 8, 9))
    check_and_load_state_dict(model, state_dict, source=src)
    if reverse:
        out = mmdet_to_official(state_dict)
    else:
        out = dict(state_dict=state_dict,
                   meta=dict(source=osp.basename(src), widen_factor=widen_factor,
                             converter='ghostnet_mmdet'))
    dst_dir = osp.dirname(osp.abspath(dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(out, dst)
    return len(state_dict)


def main(argv=None):
    args = parse_args(argv)
    if args.trust_checkpoint:
        trust_checkpoint(args.src)
    try:
        count = convert(args.src, args.dst, args.reverse, args.widen_factor, args.prefix)
    except (FileNotFoundError, KeyError, ValueError) as err:
        message = err.args[0] if err.args else str(err)
        print(f'error: {message}', file=sys.stderr)
        return 1
    direction = 'official/timm' if args.reverse else 'ghostnet_mmdet'
    print(f'wrote {count} tensors in the {direction} layout to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
