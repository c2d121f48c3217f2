"""Check that a checkpoint fits a detector before it is used, and say what
the checkpoint is when it does not.

MMEngine loads checkpoints non-strictly (fine-tuning needs that), so a wrong
file - ImageNet backbone weights instead of a trained detector, a detector of
another width or number of classes - evaluates to mAP 0.000 with only a few
log lines to show for it. The tools call :func:`check_detector_checkpoint`
first: strictly for testing, drawing and export; for ``load_from`` in
training, a checkpoint that matches nothing is refused and a partial match
is summarised per module.
"""
import functools
import glob
import logging
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader

from ..models import GhostNet, GhostNetV2, GhostNetV3, ghostnet_plan
from ..models.backbones.ghostnet import width_name
from ..utils.checkpoint_conversion import (is_official_layout, official_to_mmdet,
                                           unwrap_state_dict)
from ..utils.safe_load import CheckpointError, CheckpointMismatchError, check_checkpoint_file

# Widths tried when naming the GhostNet a checkpoint holds.
KNOWN_WIDTHS = (0.5, 0.75, 1.0, 1.1, 1.2, 1.3, 1.5, 1.6, 2.0)


def read_checkpoint(filename: str) -> Tuple['OrderedDict[str, torch.Tensor]', dict]:
    """The state dict and the ``meta`` dict of a checkpoint file, through
    MMEngine's (safe) loaders."""
    checkpoint = CheckpointLoader.load_checkpoint(str(filename), map_location='cpu')
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    state_dict = unwrap_state_dict(checkpoint, str(filename))
    return state_dict, meta if isinstance(meta, dict) else {}


def identify_ghostnet_arch(state_dict: Dict[str, torch.Tensor]):
    """``(class, widen_factor, deploy)`` of the GhostNet-family network whose
    weights ``state_dict`` holds (official/timm layout or ours, backbone keys
    only), trying the known widths; None when it is none of them."""
    if is_official_layout(state_dict):
        try:
            state_dict = official_to_mmdet(state_dict)
        except KeyError:
            return None
    if 'stem.conv.weight' not in state_dict:
        return None
    deploy = 'stem.bn.weight' not in state_dict
    stem = state_dict['stem.conv.weight'].shape[0]
    for cls in (GhostNet, GhostNetV2, GhostNetV3):
        for width in KNOWN_WIDTHS:
            if ghostnet_plan(width).stem_channels != stem:
                continue
            reference = _reference_shapes(cls, width, deploy)
            if all(reference.get(k) == tuple(v.shape) for k, v in state_dict.items()):
                return cls, width, deploy
    return None


@functools.lru_cache(maxsize=None)
def _reference_shapes(cls, widen_factor: float, deploy: bool) -> Dict[str, Tuple[int, ...]]:
    """Key -> shape of a ``cls`` of ``widen_factor``'s state dict (built
    on the meta device: shapes only, nothing allocated or initialised)."""
    with torch.device('meta'):
        model = cls(widen_factor=widen_factor, out_indices=(9, ), deploy=deploy, init_cfg=None)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def arch_name(cls, widen_factor: float, deploy: bool = False) -> str:
    name = f'{cls.__name__}-{width_name(widen_factor)}'
    return f'{name} in deploy form' if deploy else name


def identify_ghostnet(state_dict: Dict[str, torch.Tensor]) -> Optional[str]:
    """``'a GhostNetV2-1.3x'`` when ``state_dict`` is a GhostNet-family
    network of a known width (see :func:`identify_ghostnet_arch`), else
    None. Deploy forms of V2 and V3 are the same network; they are named
    as V2."""
    found = identify_ghostnet_arch(state_dict)
    return f'a {arch_name(*found)}' if found else None


def _module_of(key: str) -> str:
    return key.split('.', 1)[0]


class Comparison:
    """How a state dict lines up with a model's parameters and buffers."""

    def __init__(self, model_state: Dict[str, torch.Tensor],
                 state_dict: Dict[str, torch.Tensor]) -> None:
        self.model_keys = list(model_state)
        self.loaded = [k for k in model_state
                       if k in state_dict and state_dict[k].shape == model_state[k].shape]
        self.mismatched = [
            f'{k}: checkpoint {tuple(state_dict[k].shape)}, model {tuple(model_state[k].shape)}'
            for k in model_state if k in state_dict and state_dict[k].shape != model_state[k].shape]
        # Running counts of BatchNorm change nothing at inference.
        self.missing = [k for k in model_state
                        if k not in state_dict and not k.endswith('num_batches_tracked')]
        self.unexpected = [k for k in state_dict if k not in model_state]

    @property
    def fits(self) -> bool:
        return not self.missing and not self.mismatched

    def per_module(self) -> str:
        """One line: tensors loaded / in the model, per top-level module."""
        totals: Dict[str, List[int]] = OrderedDict()
        loaded = set(self.loaded)
        for key in self.model_keys:
            if key.endswith('num_batches_tracked'):
                continue
            counts = totals.setdefault(_module_of(key), [0, 0])
            counts[0] += key in loaded
            counts[1] += 1
        return ', '.join(f'{name} {done}/{total}' for name, (done, total) in totals.items())

    def problems(self, limit: int = 5) -> List[str]:
        lines = []
        for title, keys in (('not in the checkpoint', self.missing),
                            ('of another shape', self.mismatched),
                            ('in the checkpoint but not in the model', self.unexpected)):
            if keys:
                shown = '; '.join(keys[:limit]) + (f'; ... ({len(keys) - limit} more)'
                                                   if len(keys) > limit else '')
                lines.append(f'{len(keys)} tensor(s) {title}: {shown}')
        return lines


def _model_num_classes(model) -> Optional[int]:
    for head in (getattr(model, 'bbox_head', None),
                 getattr(getattr(model, 'roi_head', None), 'bbox_head', None)):
        if head is not None and hasattr(head, 'num_classes'):
            return head.num_classes
    return None


def _model_classes(model) -> Optional[Tuple[str, ...]]:
    meta = getattr(model, 'dataset_meta', None) or {}
    classes = meta.get('classes')
    return tuple(classes) if classes else None


def _show_classes(classes, limit: int = 4) -> str:
    classes = list(classes)
    return ', '.join(classes[:limit]) + (', ...' if len(classes) > limit else '')


def _backbone_name(model) -> str:
    backbone = getattr(model, 'backbone', None)
    width = getattr(backbone, 'widen_factor', None)
    if width is None:
        return type(backbone).__name__ if backbone is not None else 'backbone'
    return arch_name(type(backbone), width, getattr(backbone, 'deploy', False))


def describe_checkpoint(state_dict: Dict[str, torch.Tensor], meta: dict, model,
                        filename: str) -> str:
    """A sentence on what the checkpoint is, against what ``model`` needs."""
    if not any(key.startswith('backbone.') for key in state_dict):
        identified = identify_ghostnet(state_dict)
        if identified:
            return (f'it is {identified} backbone (ImageNet-style weights, no neck or head), '
                    'not a detector: use it as the backbone\'s pretrained weights, '
                    f"model.backbone.init_cfg=dict(type='Pretrained', checkpoint='{filename}')")
        first = ', '.join(list(state_dict)[:3])
        return f'it has no detector keys (backbone.*, neck.*, ...); its first keys: {first}'
    parts = []
    backbone_state = OrderedDict((k[len('backbone.'):], v) for k, v in state_dict.items()
                                 if k.startswith('backbone.'))
    own_backbone = {k[len('backbone.'):]: v for k, v in model.state_dict().items()
                    if k.startswith('backbone.')}
    if not Comparison(own_backbone, backbone_state).fits:
        identified = identify_ghostnet(backbone_state)
        what = identified or 'another backbone (keys such as ' + \
            ', '.join('backbone.' + k for k in list(backbone_state)[:2]) + ')'
        parts.append(f'its backbone is {what}, this config\'s is {_backbone_name(model)}')
    classes = (meta.get('dataset_meta') or {}).get('classes')
    num_classes = _model_num_classes(model)
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        own = _model_classes(model)
        own_text = f' ({_show_classes(own)})' if own and len(own) == num_classes else ''
        parts.append(f'it is a detector for {len(classes)} classes ({_show_classes(classes)}), '
                     f'this config has {num_classes}{own_text}')
    if not parts:
        parts.append('it is a detector whose layers differ from this config\'s')
    return '; '.join(parts)


def check_detector_checkpoint(model, filename: str, partial: bool = False,
                              logger: str = 'current') -> Comparison:
    """Compare the checkpoint ``filename`` with ``model``'s parameters and
    buffers.

    Args:
        model (nn.Module): The detector (a wrapped one is unwrapped).
        filename (str): The checkpoint.
        partial (bool): ``load_from`` for training: a partial match is fine
            and logged per module; only a checkpoint that fits nothing is
            refused. Otherwise every parameter and buffer must load, with its
            shape (BatchNorm's ``num_batches_tracked`` excepted).

    Raises:
        CheckpointMismatchError: With what the checkpoint looks like and the
            first mismatching keys.
        CheckpointError: The file is unsafe, truncated or not a checkpoint.
    """
    if is_model_wrapper(model):
        model = model.module
    state_dict, meta = read_checkpoint(filename)
    comparison = Comparison(model.state_dict(), state_dict)
    if comparison.fits or (partial and comparison.loaded):
        if partial and not comparison.fits:
            print_log(f'load_from {filename}: a partial match, tensors loaded per module: '
                      f'{comparison.per_module()}; not loaded: '
                      f'{len(comparison.missing)} missing, {len(comparison.mismatched)} of '
                      'another shape (they keep their initialisation)', logger=logger)
            for line in comparison.problems(limit=3):
                print_log(f'  {line}', logger=logger)
        return comparison
    usage = 'fits nothing of' if partial else 'does not fit'
    raise CheckpointMismatchError(
        f'{filename} {usage} this detector: '
        f'{describe_checkpoint(state_dict, meta, model, filename)}.\n'
        f'  tensors loaded per module: {comparison.per_module()}\n  '
        + '\n  '.join(comparison.problems()))


def find_resumable_checkpoint(work_dir: str, logger: str = 'current') -> Optional[str]:
    """The checkpoint ``--resume`` should take in ``work_dir``: the one that
    ``last_checkpoint`` names if it is complete, else the newest complete
    ``iter_*.pth``/``epoch_*.pth``; None when there is none.

    A run killed while saving can leave a truncated file, or (MMEngine
    removes the oldest checkpoint before writing the next one when
    ``max_keep_ckpts`` is set) a ``last_checkpoint`` that names a file that
    is gone. Such files are never taken; the log says which were skipped.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
    numbered = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        match = re.fullmatch(r'(?:iter|epoch)_(\d+)\.pth', osp.basename(path))
        if match:
            numbered.append((int(match.group(1)), path))
    candidates = ([named] if named else []) + [
        path for _, path in sorted(numbered, reverse=True)
        if not named or osp.abspath(path) != osp.abspath(named)]
    for path in candidates:
        if not osp.isfile(path):
            print_log(f'resume: {pointer} names {path}, which does not exist (the run was '
                      'probably killed while saving); looking for an older checkpoint',
                      logger=logger, level=logging.WARNING)
            continue
        try:
            check_checkpoint_file(path)
        except CheckpointError as err:
            print_log(f'resume: skipping {path}: {err}', logger=logger, level=logging.WARNING)
            continue
        return path
    print_log(f'resume: no complete checkpoint in {work_dir}; training starts from the '
              'beginning', logger=logger, level=logging.WARNING)
    return None
