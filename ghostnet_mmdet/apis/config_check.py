"""Up-front checks of a detector config, before anything is built or any
data is read: the neck fits the backbone, the head's strides fit the neck,
and what the machine cannot do is said at once.

Without them, a neck built for another width fails at the first forward
pass with a shape error from inside torch, and anchor strides that do not
match the feature maps train without an error at all.
"""
import inspect
from typing import List, Optional

import torch
from mmengine.config import Config

from mmdet.registry import MODELS

# Necks whose outputs keep their inputs' order and strides, then add levels
# at twice the last stride (``num_outs``).
_PYRAMID_NECKS = ('FPN', 'PAFPN', 'ChannelMapper', 'YOLOXPAFPN', 'CSPNeXtPAFPN', 'HRFPN', 'NASFPN',
                  'FPG')


class ConfigError(ValueError):
    """A config that cannot work; the message names the keys to change."""


def _arguments(cfg: dict) -> dict:
    """A component config with its class's defaults filled in."""
    cls = MODELS.get(cfg['type'])
    if cls is None:
        return dict(cfg)
    filled = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
              if p.default is not inspect.Parameter.empty}
    filled.update(cfg)
    return filled


def backbone_outputs(backbone_cfg: dict):
    """``(channels, strides)`` of a GhostNet-family backbone config, or
    ``None`` for backbones that cannot say without being built."""
    cls = MODELS.get(backbone_cfg.get('type'))
    if cls is None or not hasattr(cls, 'get_out_channels') or not hasattr(cls, 'get_out_strides'):
        return None
    args = _arguments(backbone_cfg)
    try:
        channels = cls.get_out_channels(args['widen_factor'], args['out_indices'])
        strides = cls.get_out_strides(args['out_indices'])
    except (TypeError, ValueError) as err:
        raise ConfigError(f'model.backbone: {err}') from None
    return channels, strides


def _neck_strides(neck: dict, in_strides: List[int]) -> Optional[List[int]]:
    """Strides of a neck's outputs, for the necks whose rule is known."""
    kind = neck['type']
    if kind == 'YOLOV3Neck':
        return list(reversed(in_strides))[:neck.get('num_scales', len(in_strides))]
    if kind not in _PYRAMID_NECKS:
        return None
    start = neck.get('start_level', 0) or 0
    end = neck.get('end_level', -1)
    used = in_strides[start:] if end in (-1, None, len(in_strides) - 1) else in_strides[start:end + 1]
    num_outs = neck.get('num_outs') or len(used)
    strides = list(used)
    while len(strides) < num_outs:
        strides.append(strides[-1] * 2)
    return strides[:num_outs]


def _check_neck(neck_cfg: dict, channels: List[int], strides: List[int],
                backbone: str) -> Optional[List[int]]:
    neck = _arguments(neck_cfg)
    kind = neck['type']
    in_channels = neck.get('in_channels')
    if not isinstance(in_channels, (list, tuple)):
        return None
    expected = list(reversed(channels)) if kind == 'YOLOV3Neck' else list(channels)
    order = ' (deepest first, as YOLOV3Neck takes them)' if kind == 'YOLOV3Neck' else ''
    if list(in_channels) != expected:
        count = (f'{len(in_channels)} inputs, but the backbone has {len(channels)} outputs'
                 if len(in_channels) != len(channels) else 'other channel counts')
        raise ConfigError(
            f'model.neck.in_channels={list(in_channels)} does not fit the backbone: '
            f'{backbone} outputs {expected} channels{order}; {count}. Set '
            f'model.neck.in_channels={expected}, or change the backbone\'s widen_factor / '
            'out_indices')
    if kind in ('FPN', 'PAFPN'):
        num_ins = len(in_channels)
        start, end, num_outs = neck.get('start_level', 0), neck.get('end_level', -1), neck['num_outs']
        if not 0 <= start < num_ins:
            raise ConfigError(
                f'model.neck.start_level={start} must be in range(0, {num_ins}): the '
                f'neck has {num_ins} inputs ({backbone})')
        if end in (-1, num_ins - 1):
            if num_outs < num_ins - start:
                raise ConfigError(
                    f'model.neck.num_outs={num_outs} is less than the {num_ins - start} '
                    f'inputs it uses from start_level={start}; set num_outs >= {num_ins - start}')
        elif not start <= end < num_ins or num_outs != end - start + 1:
            raise ConfigError(
                f'model.neck.end_level={end} needs start_level <= end_level < {num_ins} and '
                f'num_outs == end_level - start_level + 1 = {end - start + 1}, '
                f'but got start_level={start}, num_outs={num_outs}')
    return _neck_strides(neck, strides)


def _head_strides(model: dict):
    """``(key, strides)`` pairs that heads declare for their inputs."""
    found = []
    for head_key in ('bbox_head', 'rpn_head'):
        head = model.get(head_key)
        if not isinstance(head, dict):
            continue
        anchors = head.get('anchor_generator') or head.get('prior_generator')
        if isinstance(anchors, dict) and 'strides' in anchors:
            found.append((f'model.{head_key}.anchor_generator.strides', anchors['strides']))
        elif 'strides' in head:
            found.append((f'model.{head_key}.strides', head['strides']))
        if 'featmap_strides' in head:
            found.append((f'model.{head_key}.featmap_strides', head['featmap_strides']))
    return found


def _stride_value(stride) -> int:
    return stride[0] if isinstance(stride, (list, tuple)) else stride


def check_detector_config(cfg: Config) -> None:
    """Raise :class:`ConfigError` when the detector in ``cfg`` cannot work:
    neck inputs that do not fit a GhostNet-family backbone's outputs, FPN
    levels that do not add up, or head strides that are not the neck's.
    Backbones other than this package's are not checked (their channels are
    not known without building them)."""
    model = cfg.get('model') or {}
    backbone_cfg = model.get('backbone')
    if not isinstance(backbone_cfg, dict):
        return
    outputs = backbone_outputs(backbone_cfg)
    if outputs is None:
        return
    channels, strides = outputs
    args = _arguments(backbone_cfg)
    backbone = (f"{backbone_cfg['type']}(widen_factor={args['widen_factor']}, "
                f"out_indices={tuple(args['out_indices'])})")
    neck_cfg = model.get('neck')
    if isinstance(neck_cfg, (list, tuple)):
        neck_cfg = neck_cfg[0] if neck_cfg else None
    neck_strides = _check_neck(neck_cfg, channels, strides, backbone) \
        if isinstance(neck_cfg, dict) else strides
    if not neck_strides:
        return
    for key, declared in _head_strides(model):
        declared = [_stride_value(s) for s in declared]
        if declared != neck_strides[:len(declared)] or len(declared) > len(neck_strides):
            raise ConfigError(
                f'{key}={declared} does not match the feature maps the head gets: '
                f'strides {neck_strides} ({backbone}'
                + (f" + {neck_cfg['type']}" if isinstance(neck_cfg, dict) else '')
                + f'); set {key}={neck_strides} or change the neck\'s num_outs')


def check_machine(cfg: Config, amp: bool = False) -> None:
    """Raise :class:`ConfigError` for what this machine cannot run: ``--amp``
    without a GPU (MMEngine's AmpOptimWrapper is CUDA/NPU/MLU only), SyncBN
    without a GPU."""
    if torch.cuda.is_available():
        return
    if amp:
        raise ConfigError(
            '--amp needs a CUDA GPU: MMEngine\'s AmpOptimWrapper (float16 with loss '
            'scaling) does not run on CPU, and this machine has no CUDA device. Train '
            'without --amp here')
    uses_sync_bn = cfg.get('sync_bn') is not None or 'SyncBN' in cfg.pretty_text
    if uses_sync_bn and cfg.get('launcher', 'none') != 'none':
        raise ConfigError(
            'SyncBN needs GPUs (torch and mmcv synchronise BatchNorm over CUDA only), and '
            'this machine has none: on CPU use norm_cfg=dict(type=\'BN\') (statistics per '
            'process) or dict(type=\'GN\', num_groups=...), and remove sync_bn')

