"""Convert GhostNet, GhostNetV2 and GhostNetV3 weights between the
official/timm layout and ours, and load them strictly.

The official Huawei code and timm share one state-dict layout (``conv_stem``,
``bn1``, ``blocks.{i}.{j}.ghost1.primary_conv.0``, V2's ``ghost1.short_conv.
{0-5}``, V3's ``primary_rpr_conv.{k}.conv/bn1``, ``cheap_rpr_scale``,
``dw_rpr_conv`` ...), except that the official V3 code names the norm of its
conv + norm branches ``bn`` where timm has ``bn1``. Ours differs where
mmcv's ConvModule names its layers ``conv`` and ``bn`` and where V3's
branches live in a :class:`~ghostnet_mmdet.models.layers.RepConvModule`
(``branches.{k}``, ``scale``, ``identity``). The mapping is a table of
rules used in both directions, so a round trip is exact (to timm's names).
"""
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from .safe_load import CheckpointError, CheckpointMismatchError

_GROUPS = {
    'b': r'blocks\.\d+\.\d+',  # one Ghost bottleneck: stage and position
    'g': r'[12]',  # ghost1 or ghost2
    'op': r'primary_conv|cheap_operation',
    'k': r'\d+',  # a V3 branch
    'w': r'weight',
    'wb': r'weight|bias',
    'n': r'weight|bias|running_mean|running_var|num_batches_tracked',
    'se': r'conv_reduce|conv_expand',
    'f': r'9',  # the final 1x1 conv, after the nine stages
}

# (official/timm key, our key); {name} is a group from _GROUPS.
_RULES = (
    ('conv_stem.{w}', 'stem.conv.{w}'),
    ('bn1.{n}', 'stem.bn.{n}'),
    # (V3's deploy form: the same convolutions with biases, no norms.)
    ('{b}.ghost{g}.{op}.0.{wb}', '{b}.ghost{g}.{op}.conv.{wb}'),
    ('{b}.ghost{g}.{op}.1.{n}', '{b}.ghost{g}.{op}.bn.{n}'),
    ('{b}.conv_dw.{wb}', '{b}.conv_dw.conv.{wb}'),
    ('{b}.bn_dw.{n}', '{b}.conv_dw.bn.{n}'),
    # GhostNetV2 and V3: DFC attention.
    ('{b}.ghost1.short_conv.0.{w}', '{b}.ghost1.short_conv.0.conv.{w}'),
    ('{b}.ghost1.short_conv.1.{n}', '{b}.ghost1.short_conv.0.bn.{n}'),
    ('{b}.ghost1.short_conv.2.{w}', '{b}.ghost1.short_conv.1.conv.{w}'),
    ('{b}.ghost1.short_conv.3.{n}', '{b}.ghost1.short_conv.1.bn.{n}'),
    ('{b}.ghost1.short_conv.4.{w}', '{b}.ghost1.short_conv.2.conv.{w}'),
    ('{b}.ghost1.short_conv.5.{n}', '{b}.ghost1.short_conv.2.bn.{n}'),
    # GhostNetV3's re-parameterisable branches (timm's names).
    ('{b}.ghost{g}.primary_rpr_conv.{k}.conv.{w}', '{b}.ghost{g}.primary_conv.branches.{k}.conv.{w}'),
    ('{b}.ghost{g}.primary_rpr_conv.{k}.bn1.{n}', '{b}.ghost{g}.primary_conv.branches.{k}.bn.{n}'),
    ('{b}.ghost{g}.cheap_rpr_conv.{k}.conv.{w}', '{b}.ghost{g}.cheap_operation.branches.{k}.conv.{w}'),
    ('{b}.ghost{g}.cheap_rpr_conv.{k}.bn1.{n}', '{b}.ghost{g}.cheap_operation.branches.{k}.bn.{n}'),
    ('{b}.ghost{g}.cheap_rpr_scale.conv.{w}', '{b}.ghost{g}.cheap_operation.scale.conv.{w}'),
    ('{b}.ghost{g}.cheap_rpr_scale.bn1.{n}', '{b}.ghost{g}.cheap_operation.scale.bn.{n}'),
    ('{b}.ghost{g}.cheap_rpr_skip.{n}', '{b}.ghost{g}.cheap_operation.identity.{n}'),
    ('{b}.dw_rpr_conv.{k}.conv.{w}', '{b}.conv_dw.branches.{k}.conv.{w}'),
    ('{b}.dw_rpr_conv.{k}.bn1.{n}', '{b}.conv_dw.branches.{k}.bn.{n}'),
    ('{b}.dw_rpr_scale.conv.{w}', '{b}.conv_dw.scale.conv.{w}'),
    ('{b}.dw_rpr_scale.bn1.{n}', '{b}.conv_dw.scale.bn.{n}'),
    ('{b}.se.{se}.{wb}', '{b}.se.{se}.conv.{wb}'),
    ('{b}.shortcut.0.{w}', '{b}.shortcut.0.conv.{w}'),
    ('{b}.shortcut.1.{n}', '{b}.shortcut.0.bn.{n}'),
    ('{b}.shortcut.2.{w}', '{b}.shortcut.1.conv.{w}'),
    ('{b}.shortcut.3.{n}', '{b}.shortcut.1.bn.{n}'),
    ('blocks.{f}.0.conv.{w}', 'blocks.{f}.conv.{w}'),
    ('blocks.{f}.0.bn1.{n}', 'blocks.{f}.bn.{n}'),
)
# The ImageNet classifier of the reference network; a detection backbone
# has no use for it.
CLASSIFIER_KEY = re.compile(r'^(conv_head|classifier)\.')
# Containers that training scripts wrap a state dict in, tried in order.
_WRAPPERS = ('state_dict', 'model', 'state_dict_ema', 'model_ema')


def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for name, group in _GROUPS.items():
        pattern = pattern.replace(re.escape('{%s}' % name), f'(?P<{name}>{group})')
    return re.compile(f'^{pattern}$')


_OFFICIAL_TO_OURS = [(_compile(src), dst) for src, dst in _RULES]
_OURS_TO_OFFICIAL = [(_compile(dst), src) for src, dst in _RULES]


def _convert(state_dict: Dict[str, torch.Tensor], rules, what: str,
             drop_classifier: bool) -> 'OrderedDict[str, torch.Tensor]':
    converted = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        if drop_classifier and CLASSIFIER_KEY.match(key):
            continue
        for pattern, template in rules:
            match = pattern.match(key)
            if match:
                converted[template.format(**match.groupdict())] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(
            f'{len(unknown)} key(s) are not part of a GhostNet in the {what} '
            f'layout: {_preview(unknown)}')
    return converted


# The official V3 code's name for the norm in a conv + norm branch (timm: bn1),
# and the operation counters that its FLOPs tool leaves in checkpoints.
_OFFICIAL_V3_NORM = re.compile(r'\.(ghost[12]\.\w+_rpr_\w+(?:\.\d+)?|dw_rpr_\w+(?:\.\d+)?)\.bn\.')
_COUNTERS = re.compile(r'(^|\.)total_(ops|params)$')


def official_to_mmdet(state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Map an official/timm GhostNet (V1, V2 or V3) state dict onto our key
    names.

    The ImageNet head (``conv_head``, ``classifier``) is dropped, and so are
    the official V3 code's ``total_ops``/``total_params`` counters; its
    ``...bn.`` branch norms are read as timm's ``...bn1.``. Any other key that
    is not GhostNet's raises ``KeyError`` listing it.
    """
    normalised = OrderedDict(
        (_OFFICIAL_V3_NORM.sub(r'.\1.bn1.', key), value) for key, value in state_dict.items()
        if not _COUNTERS.search(key))
    return _convert(normalised, _OFFICIAL_TO_OURS, 'official/timm', drop_classifier=True)


def mmdet_to_official(state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Map our GhostNet state dict onto the official/timm key names (the
    inverse of :func:`official_to_mmdet`, without the ImageNet head)."""
    return _convert(state_dict, _OURS_TO_OFFICIAL, 'ghostnet_mmdet',
                    drop_classifier=False)


def is_official_layout(state_dict: Dict[str, torch.Tensor]) -> bool:
    """Whether a state dict uses the official/timm key names."""
    return 'conv_stem.weight' in state_dict


def unwrap_state_dict(checkpoint, source: str = 'checkpoint') -> 'OrderedDict[str, torch.Tensor]':
    """The tensors of a loaded checkpoint, out of whatever container.

    Wrappers (``state_dict``, ``model``, ...) and a ``module.`` prefix from
    DataParallel are removed. Raises ``CheckpointError`` when no state dict
    of tensors is found.
    """
    for wrapper in _WRAPPERS:
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
            break
    if not isinstance(checkpoint, dict) or not checkpoint or not all(
            isinstance(v, torch.Tensor) for v in checkpoint.values()):
        found = type(checkpoint).__name__
        if isinstance(checkpoint, dict):
            found += ' with keys ' + ', '.join(map(str, list(checkpoint)[:5]))
        raise CheckpointError(f'{source} does not hold a state dict of tensors (found {found})')
    state_dict = OrderedDict(checkpoint)
    if all(k.startswith('module.') for k in state_dict):
        state_dict = OrderedDict((k[len('module.'):], v) for k, v in state_dict.items())
    return state_dict


def read_state_dict(path: str, map_location: str = 'cpu',
                    prefix: Optional[str] = None) -> 'OrderedDict[str, torch.Tensor]':
    """Read the tensors of a checkpoint file, in whatever container.

    ``.safetensors`` files are read with safetensors; anything else with
    MMEngine's checkpoint loader (local paths, ``http(s)://`` and other
    prefixes it knows), which this package makes load safely
    (:mod:`ghostnet_mmdet.utils.safe_load`). See :func:`unwrap_state_dict`.
    With ``prefix`` (for example ``'backbone.'``) only keys under it are
    kept, without it.
    """
    if str(path).endswith('.safetensors'):
        if not osp.isfile(path):
            raise FileNotFoundError(f'checkpoint file not found: {path}')
        from safetensors.torch import load_file
        checkpoint = load_file(path, device=str(map_location))
    else:
        if '://' not in str(path) and not osp.isfile(path):
            raise FileNotFoundError(f'checkpoint file not found: {path}')
        checkpoint = CheckpointLoader.load_checkpoint(path, map_location=map_location)
    state_dict = unwrap_state_dict(checkpoint, str(path))
    if prefix:
        if not prefix.endswith('.'):
            prefix += '.'
        state_dict = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                                 if k.startswith(prefix))
        if not state_dict:
            raise CheckpointError(f'{path} has no keys under prefix {prefix!r}')
    return state_dict


def _preview(keys: List[str], limit: int = 10) -> str:
    keys = list(keys)
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')


def check_and_load_state_dict(model: torch.nn.Module,
                              state_dict: Dict[str, torch.Tensor],
                              source: str = 'checkpoint') -> Tuple[List[str], List[str]]:
    """Load ``state_dict`` into a GhostNet only if it matches exactly.

    Tolerated: missing ``num_batches_tracked`` buffers (older checkpoints
    lack them) and weights of blocks that this model does not build (its
    ``out_indices`` stop earlier). Everything else that differs - missing or
    unexpected keys, or shapes - raises ``ValueError`` listing it, so that a
    checkpoint of another width or architecture never loads partially.

    Returns:
        tuple[list[str], list[str]]: The tolerated missing and skipped keys.
    """
    own = model.state_dict()
    built_blocks = len(getattr(model, 'blocks', []))
    skipped = []
    checked = OrderedDict()
    for key, value in state_dict.items():
        match = re.match(r'^blocks\.(\d+)\.', key)
        if key not in own and match and int(match.group(1)) >= built_blocks:
            skipped.append(key)
        else:
            checked[key] = value
    missing = [k for k in own if k not in checked]
    tolerated = [k for k in missing if k.endswith('num_batches_tracked')]
    missing = [k for k in missing if k not in tolerated]
    unexpected = [k for k in checked if k not in own]
    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in checked.items() if k in own and v.shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f'missing in the checkpoint ({len(missing)}): {_preview(missing)}')
    if unexpected:
        problems.append(f'not in the model ({len(unexpected)}): {_preview(unexpected)}')
    if mismatched:
        problems.append(f'shape mismatch ({len(mismatched)}): {_preview(mismatched, 5)}')
    if problems:
        widen = getattr(model, 'widen_factor', None)
        raise CheckpointMismatchError(
            f'{source} does not match this GhostNet (widen_factor={widen}); '
            'refusing a partial load.\n  ' + '\n  '.join(problems))
    for key in tolerated:
        checked[key] = own[key]
    model.load_state_dict(checked, strict=True)
    return tolerated, skipped


def load_ghostnet_checkpoint(model: torch.nn.Module, path: str,
                             prefix: Optional[str] = None,
                             map_location: str = 'cpu') -> None:
    """Load GhostNet weights from ``path`` into ``model``, strictly.

    Accepts our layout (e.g. the output of
    ``tools/model_converters/ghostnet_to_mmdet.py``), the official/timm layout
    (converted on the fly), ``.pth``/``.safetensors``, and, with
    ``prefix='backbone.'``, a whole detector's checkpoint.
    """
    state_dict = read_state_dict(path, map_location=map_location, prefix=prefix)
    if is_official_layout(state_dict):
        try:
            state_dict = official_to_mmdet(state_dict)
        except KeyError as err:
            raise CheckpointMismatchError(f'{path}: {err.args[0]}') from None
    check_and_load_state_dict(model, state_dict, source=str(path))
