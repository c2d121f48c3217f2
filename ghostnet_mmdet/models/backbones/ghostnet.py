"""GhostNet backbone for MMDetection (Han et al., "GhostNet: More Features
from Cheap Operations", CVPR 2020).

The network is the paper's Table 1, block for block, with the widths and
rounding of the official Huawei code and timm's ``ghostnet_100``, so their
ImageNet weights load (see :mod:`ghostnet_mmdet.utils.checkpoint_conversion`).
"""
import math
import numbers
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

from ..layers.ghost_blocks import GhostBottleneck, make_divisible

# One row per Ghost bottleneck: kernel, expansion (mid) channels, output
# channels, squeeze-excite ratio, stride. Grouped into the nine stages of the
# reference code; the paper's table lists the same rows.
GHOSTNET_ARCH: Tuple[Tuple[Tuple[int, int, int, float, int], ...], ...] = (
    ((3, 16, 16, 0, 1), ),
    ((3, 48, 24, 0, 2), ),
    ((3, 72, 24, 0, 1), ),
    ((5, 72, 40, 0.25, 2), ),
    ((5, 120, 40, 0.25, 1), ),
    ((3, 240, 80, 0, 2), ),
    ((3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1),
     (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1)),
    ((5, 672, 160, 0.25, 2), ),
    ((5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0, 1),
     (5, 960, 160, 0.25, 1)),
)
STEM_CHANNELS = 16
FINAL_CHANNELS = 960
# Index 9 is the final 1x1 convolution, after the nine stages.
NUM_OUTPUTS = len(GHOSTNET_ARCH) + 1
# Stride of each output index relative to the input image.
OUTPUT_STRIDES = (2, 4, 4, 8, 8, 16, 16, 32, 32, 32)


def _check_widen_factor(widen_factor) -> None:
    if isinstance(widen_factor, bool) or not isinstance(widen_factor, numbers.Real):
        raise TypeError('widen_factor must be a positive number, but got '
                        f'{widen_factor!r} of type {type(widen_factor).__name__}')
    if not (widen_factor > 0 and math.isfinite(widen_factor)):
        raise ValueError(
            f'widen_factor must be a positive finite number, but got {widen_factor}')


def _check_out_indices(out_indices) -> Tuple[int, ...]:
    if isinstance(out_indices, int) and not isinstance(out_indices, bool):
        out_indices = (out_indices, )
    if not isinstance(out_indices, Sequence) or isinstance(out_indices, str):
        raise TypeError('out_indices must be a sequence of ints in '
                        f'range(0, {NUM_OUTPUTS}), but got {out_indices!r}')
    out_indices = tuple(out_indices)
    if len(out_indices) == 0:
        raise ValueError('out_indices must name at least one output in '
                         f'range(0, {NUM_OUTPUTS}), but got {out_indices!r}')
    for index in out_indices:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError('out_indices must be ints in range(0, '
                            f'{NUM_OUTPUTS}), but got {index!r} in {out_indices!r}')
        if not 0 <= index < NUM_OUTPUTS:
            raise ValueError(
                f'out_indices must be in range(0, {NUM_OUTPUTS}) (0-8: the '
                f'nine stages, 9: the final 1x1 conv), but got {index} in '
                f'{out_indices!r}')
    if len(set(out_indices)) != len(out_indices) or list(out_indices) != sorted(out_indices):
        raise ValueError('out_indices must be strictly increasing, but got '
                         f'{out_indices!r}')
    return out_indices


def width_name(widen_factor: float) -> str:
    """A width as configs and papers write it: ``1.0x``, ``1.3x``, ``0.75x``."""
    text = f'{widen_factor:g}'
    return (text if '.' in text else f'{widen_factor:.1f}') + 'x'


def ghostnet_channels(widen_factor: float = 1.0) -> List[int]:
    """Output channels of every GhostNet output index for a width.

    Index ``i`` in 0-8 is the last Ghost bottleneck of stage ``i``; index 9
    is the final 1x1 convolution. Use it to set ``neck.in_channels`` without
    building the model, e.g. ``ghostnet_channels(1.1)[4::2][:3]``, or more
    simply :meth:`GhostNet.get_out_channels`.

    Args:
        widen_factor (float): Width multiplier. Defaults to 1.0.

    Returns:
        list[int]: Ten channel counts.
    """
    _check_widen_factor(widen_factor)
    channels = [make_divisible(stage[-1][2] * widen_factor, 4)
                for stage in GHOSTNET_ARCH]
    channels.append(make_divisible(FINAL_CHANNELS * widen_factor, 4))
    return channels


@MODELS.register_module()
class GhostNet(BaseModule):
    """GhostNet backbone.

    The stem (3x3 stride-2 conv + norm + act) is followed by nine stages of
    Ghost bottlenecks and a final 1x1 conv + norm + act to 960 channels
    (scaled by ``widen_factor``). Output index ``i`` in 0-8 is the output of
    stage ``i``; index 9 the final conv:

    ====== ====== ===== ===== ===== =====
    index  stride 0.5x  1.0x  1.1x  1.3x
    ====== ====== ===== ===== ===== =====
    2      4      12    24    28    32
    4      8      20    40    44    52
    6      16     56    112   124   144
    8      32     80    160   176   208
    9      32     480   960   1056  1248
    ====== ====== ===== ===== ===== =====

    The default ``out_indices=(4, 6, 8)`` are the paper's FPN taps: the last
    block at strides 8, 16 and 32. Layers after the last requested output
    are not built (the final conv only exists when 9 is requested);
    pretrained checkpoints of the whole network still load.

    Args:
        widen_factor (float): Width multiplier; every channel count is
            ``make_divisible(c * widen_factor, 4)``. Defaults to 1.0.
        out_indices (Sequence[int]): Output indices, in range(0, 10).
            Defaults to (4, 6, 8).
        frozen_stages (int): Stages to freeze (no gradients, norm layers in
            eval mode): -1 freezes nothing, 0 the stem, ``k`` the stem and
            outputs ``0..k-1``. In range(-1, 11). Defaults to -1.
        in_channels (int): Channels of the input image. Defaults to 3.
        conv_cfg (dict, optional): Config of the convolutions.
        norm_cfg (dict): Config of the norm layers. Defaults to BN.
        act_cfg (dict): Config of the activation that replaces every ReLU of
            the paper (the squeeze-excite gate stays a hard sigmoid).
            Defaults to ReLU.
        norm_eval (bool): Keep norm layers in eval mode during training
            (frozen statistics). Defaults to False.
        with_cp (bool): Gradient checkpointing in the Ghost bottlenecks.
            Defaults to False.
        channels_last (bool): Run the network in channels-last (NHWC)
            memory layout; the outputs are the same numbers. Measured on a
            2-core CPU (oneDNN): a training step of RetinaNet-GhostNet at
            256x256, batch 8, about 5% faster. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config. With
            ``dict(type='Pretrained', checkpoint=PATH[, prefix=...])`` the
            checkpoint may be in this layout or in the official/timm layout,
            and must match the architecture exactly.
    """

    def __init__(self,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (4, 6, 8),
                 frozen_stages: int = -1,
                 in_channels: int = 3,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 channels_last: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
            ]
        super().__init__(init_cfg=init_cfg)
        _check_widen_factor(widen_factor)
        self.out_indices = _check_out_indices(out_indices)
        if isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int):
            raise TypeError('frozen_stages must be an int in range(-1, '
                            f'{NUM_OUTPUTS + 1}), but got {frozen_stages!r}')
        if not -1 <= frozen_stages <= NUM_OUTPUTS:
            raise ValueError(
                f'frozen_stages must be in range(-1, {NUM_OUTPUTS + 1}) (-1: '
                f'none, 0: stem, k: stem and outputs 0..k-1), but got {frozen_stages}')
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'in_channels must be a positive int, but got {in_channels!r}')
        self.widen_factor = widen_factor
        self.frozen_stages = frozen_stages
        self.in_channels = in_channels
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        if not isinstance(channels_last, bool):
            raise TypeError(f'channels_last must be True or False, but got {channels_last!r}')
        self.channels_last = channels_last
        self.stage_channels = ghostnet_channels(widen_factor)
        self.out_channels = [self.stage_channels[i] for i in self.out_indices]
        _check_group_norm(norm_cfg, self._norm_channels())

        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        stem_channels = make_divisible(STEM_CHANNELS * widen_factor, 4)
        self.stem = ConvModule(
            in_channels, stem_channels, 3, stride=2, padding=1, **common)

        # Stages after the last requested output are not built: they would
        # cost compute and leave parameters without gradients (which
        # DistributedDataParallel rejects).
        num_blocks = self.out_indices[-1] + 1
        blocks = []
        channels = stem_channels
        for stage in GHOSTNET_ARCH[:num_blocks]:
            layers = []
            for kernel_size, expansion, out, se_ratio, stride in stage:
                mid_channels = make_divisible(expansion * widen_factor, 4)
                out_channels = make_divisible(out * widen_factor, 4)
                layers.append(
                    GhostBottleneck(
                        channels, mid_channels, out_channels, kernel_size,
                        stride=stride, se_ratio=se_ratio, with_cp=with_cp,
                        **common))
                channels = out_channels
            blocks.append(nn.Sequential(*layers))
        if num_blocks == NUM_OUTPUTS:
            blocks.append(
                ConvModule(channels, self.stage_channels[-1], 1, **common))
        self.blocks = nn.ModuleList(blocks)
        self._freeze_stages()

    @staticmethod
    def get_out_channels(widen_factor: float = 1.0,
                         out_indices: Sequence[int] = (4, 6, 8)) -> List[int]:
        """Channels of the outputs ``out_indices`` at ``widen_factor``,
        without building the model (for ``neck.in_channels``)."""
        channels = ghostnet_channels(widen_factor)
        return [channels[i] for i in _check_out_indices(out_indices)]

    @staticmethod
    def get_out_strides(out_indices: Sequence[int] = (4, 6, 8)) -> List[int]:
        """Strides, relative to the input image, of the outputs ``out_indices``."""
        return [OUTPUT_STRIDES[i] for i in _check_out_indices(out_indices)]

    def _norm_channels(self) -> List[int]:
        """Channel counts of every norm layer, for up-front config checks."""
        counts = [make_divisible(STEM_CHANNELS * self.widen_factor, 4)]
        channels = counts[0]
        num_blocks = self.out_indices[-1] + 1
        for stage in GHOSTNET_ARCH[:num_blocks]:
            for kernel_size, expansion, out, se_ratio, stride in stage:
                mid = make_divisible(expansion * self.widen_factor, 4)
                out = make_divisible(out * self.widen_factor, 4)
                counts += [math.ceil(mid / 2), math.ceil(out / 2)]
                if stride > 1:
                    counts.append(mid)
                if stride > 1 or channels != out:
                    counts += [channels, out]
                channels = out
        if num_blocks == NUM_OUTPUTS:
            counts.append(self.stage_channels[-1])
        return sorted(set(counts))

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            frozen = [self.stem] + list(self.blocks[:self.frozen_stages])
            for module in frozen:
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True) -> 'GhostNet':
        """Switch mode, keeping frozen stages and (with ``norm_eval``) all
        norm layers in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, (_BatchNorm, nn.GroupNorm, nn.LayerNorm)):
                    module.eval()
        return self

    def init_weights(self) -> None:
        """Initialize weights; a ``Pretrained`` init_cfg loads strictly."""
        init_cfg = self.init_cfg
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            from ...utils.checkpoint_conversion import load_ghostnet_checkpoint
            checkpoint = init_cfg.get('checkpoint')
            if not checkpoint:
                raise ValueError("init_cfg=dict(type='Pretrained') needs a "
                                 f"'checkpoint' path, but got {init_cfg!r}")
            load_ghostnet_checkpoint(
                self, checkpoint, prefix=init_cfg.get('prefix'),
                map_location=init_cfg.get('map_location', 'cpu'))
            print_log(f'GhostNet: loaded pretrained weights from {checkpoint}',
                      logger='current')
            self._is_init = True
            return
        super().init_weights()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the feature maps at ``out_indices``, in order."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError('GhostNet expects a 4D tensor (N, C, H, W), but '
                             f'got {shape}')
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'GhostNet was built for {self.in_channels} input channels '
                f'(in_channels={self.in_channels}), but the input has shape '
                f'{tuple(x.shape)} with {x.shape[1]} channels')
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.stem(x)
        outs = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)


def _check_group_norm(norm_cfg: OptConfigType, channel_counts: List[int]) -> None:
    """Fail early, with the channel counts, when GroupNorm cannot split them."""
    if not norm_cfg or norm_cfg.get('type') not in ('GN', 'GroupNorm'):
        return
    groups = norm_cfg.get('num_groups')
    if not isinstance(groups, int) or groups < 1:
        raise ValueError("norm_cfg of type 'GN' needs a positive int "
                         f"'num_groups', but got {norm_cfg!r}")
    bad = [c for c in channel_counts if c % groups]
    if bad:
        good = [g for g in range(1, groups + 1)
                if all(c % g == 0 for c in channel_counts)]
        raise ValueError(
            f'GroupNorm num_groups={groups} does not divide the channel '
            f'counts {bad} of this GhostNet width; num_groups that divide '
            f'every norm layer here: {good}')
