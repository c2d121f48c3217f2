"""The GhostNet family as MMDetection backbones: GhostNet (Han et al.,
"GhostNet: More Features from Cheap Operations", CVPR 2020), GhostNetV2
("Enhance Cheap Operation with Long-Range Attention", NeurIPS 2022) and
GhostNetV3 ("Exploring the Training Strategies for Compact Models", 2024).

One table describes all three: the paper's Table 1, block for block, with
the widths and rounding of the official Huawei code and timm, so their
ImageNet weights load (see :mod:`ghostnet_mmdet.utils.checkpoint_conversion`).
:func:`ghostnet_plan` turns it into the channels of every block for a width
and version; everything else (the modules, the output channels, the
GroupNorm check) is derived from that plan. V2 adds DFC attention to the
first ghost module of every block after the first two; V3 adds that and
re-parameterisable branches.
"""
import math
import numbers
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, fuse_conv_bn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

from mmdet.models.utils import make_divisible

from ..layers.ghost_blocks import GhostBottleneck

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
# Channel counts are multiples of this (make_divisible rounding).
CHANNEL_DIVISOR = 4
# V2 and V3 put DFC attention in every block from this one on (counting all
# blocks of the network from 0), as the reference code does.
FIRST_ATTENTION_BLOCK = 2
VERSIONS = ('v1', 'v2', 'v3')


class BlockPlan(NamedTuple):
    """One Ghost bottleneck of a GhostNet of a given width and version."""
    stage: int
    in_channels: int
    mid_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    se_ratio: float
    attention: bool


class GhostNetPlan(NamedTuple):
    """The channels of every layer: the stem, the blocks, the final conv."""
    stem_channels: int
    blocks: Tuple[BlockPlan, ...]
    final_channels: int

    def output_channels(self) -> List[int]:
        """Channels of the ten output indices (0-8 the stages, 9 the final conv)."""
        last = {block.stage: block.out_channels for block in self.blocks}
        return [last[stage] for stage in range(len(GHOSTNET_ARCH))] + [self.final_channels]

    def norm_channels(self, num_stages: int = len(GHOSTNET_ARCH)) -> List[int]:
        """Channels of every norm layer of the first ``num_stages`` stages
        (and the final conv when all are built), for up-front checks."""
        counts = {self.stem_channels}
        for block in self.blocks:
            if block.stage >= num_stages:
                continue
            counts |= {math.ceil(block.mid_channels / 2), math.ceil(block.out_channels / 2)}
            if block.stride > 1 or block.attention:
                counts.add(block.mid_channels)  # depthwise conv, DFC attention
            if block.stride > 1 or block.in_channels != block.out_channels:
                counts |= {block.in_channels, block.out_channels}  # shortcut
        if num_stages > len(GHOSTNET_ARCH):
            counts.add(self.final_channels)
        return sorted(counts)


def ghostnet_plan(widen_factor: float = 1.0, version: str = 'v1') -> GhostNetPlan:
    """Every channel count of a GhostNet of ``widen_factor`` and ``version``:
    ``make_divisible(c * widen_factor, 4)`` of the table's counts (MMDetection's
    ``make_divisible``, the same rounding as the reference code and timm)."""
    _check_widen_factor(widen_factor)
    if version not in VERSIONS:
        raise ValueError(f'version must be one of {VERSIONS}, but got {version!r}')

    def scaled(channels):
        return make_divisible(channels * widen_factor, CHANNEL_DIVISOR)

    blocks = []
    channels = stem = scaled(STEM_CHANNELS)
    for stage, rows in enumerate(GHOSTNET_ARCH):
        for kernel_size, expansion, out, se_ratio, stride in rows:
            blocks.append(BlockPlan(stage, channels, scaled(expansion), scaled(out), kernel_size,
                                    stride, se_ratio,
                                    version != 'v1' and len(blocks) >= FIRST_ATTENTION_BLOCK))
            channels = blocks[-1].out_channels
    return GhostNetPlan(stem, tuple(blocks), scaled(FINAL_CHANNELS))


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
    """Output channels of every GhostNet output index for a width (the same
    for V1, V2 and V3).

    Index ``i`` in 0-8 is the last Ghost bottleneck of stage ``i``; index 9
    is the final 1x1 convolution. Use it to set ``neck.in_channels`` without
    building the model, e.g. ``ghostnet_channels(1.1)[4::2][:3]``, or more
    simply :meth:`GhostNet.get_out_channels`.

    Args:
        widen_factor (float): Width multiplier. Defaults to 1.0.

    Returns:
        list[int]: Ten channel counts.
    """
    return ghostnet_plan(widen_factor).output_channels()


@MODELS.register_module()
class GhostNet(BaseModule):
    """GhostNet backbone (and, through :class:`GhostNetV2` and
    :class:`GhostNetV3`, its successors).

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
        deploy (bool): Build the inference form directly: every
            convolution with a bias and no norm layer, V3's branches
            merged, as :meth:`switch_to_deploy` leaves it, so that its
            checkpoints load. Inference only. Defaults to False.
        num_branches (int, optional): Re-parameterisation branches per
            convolution in training, GhostNetV3's recipe: 0 (V1, V2) trains
            the plain network; ``k`` > 0 trains each conv as ``k`` conv +
            norm branches plus a scale branch and an identity norm, merged
            into one conv by :meth:`switch_to_deploy`, so the deployed
            network is the plain one. ``type='GhostNet', num_branches=3``
            trains V1's network with V3's branches. None: the version's own
            (3 for V3). Defaults to None.
        init_cfg (dict or list[dict], optional): Initialization config. With
            ``dict(type='Pretrained', checkpoint=PATH[, prefix=...])`` the
            checkpoint may be in this layout or in the official/timm layout,
            and must match the architecture exactly.
    """

    # What a version adds to the shared plan and blocks (see the subclasses).
    version = 'v1'
    num_branches = 0

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
                 deploy: bool = False,
                 num_branches: Optional[int] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        if num_branches is not None:
            if isinstance(num_branches, bool) or not isinstance(num_branches, int) \
                    or num_branches < 0:
                raise ValueError('num_branches must be None (the version\'s own: '
                                 f'{type(self).num_branches}) or an int >= 0, '
                                 f'but got {num_branches!r}')
            self.num_branches = num_branches
        if init_cfg is None:
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
            ]
        super().__init__(init_cfg=init_cfg)
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
        self.plan = ghostnet_plan(widen_factor, self.version)
        self.stage_channels = self.plan.output_channels()
        self.out_channels = [self.stage_channels[i] for i in self.out_indices]
        # Stages after the last requested output are not built: they would
        # cost compute and leave parameters without gradients (which
        # DistributedDataParallel rejects).
        num_built = self.out_indices[-1] + 1
        self.deploy = bool(deploy)
        if self.deploy:
            norm_cfg = None  # convolutions with biases, as switch_to_deploy leaves them
        else:
            _check_group_norm(norm_cfg, self.plan.norm_channels(num_built))

        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.stem = ConvModule(
            in_channels, self.plan.stem_channels, 3, stride=2, padding=1, **common)
        stages = [[] for _ in range(min(num_built, len(GHOSTNET_ARCH)))]
        for block in self.plan.blocks:
            if block.stage < len(stages):
                stages[block.stage].append(GhostBottleneck(
                    block.in_channels, block.mid_channels, block.out_channels,
                    block.kernel_size, stride=block.stride, se_ratio=block.se_ratio,
                    attention=block.attention, num_branches=self.num_branches,
                    deploy=self.deploy, with_cp=with_cp, **common))
        blocks = [nn.Sequential(*layers) for layers in stages]
        if num_built == NUM_OUTPUTS:
            blocks.append(ConvModule(self.plan.blocks[-1].out_channels,
                                     self.plan.final_channels, 1, **common))
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

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            frozen = [self.stem] + list(self.blocks[:self.frozen_stages])
            for module in frozen:
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def switch_to_deploy(self) -> None:
        """Turn the network into its inference form, in place: V3's branches
        merged and every BatchNorm folded into the convolution before it
        (mmcv's ``fuse_conv_bn``: the stem, both convolutions of every ghost
        module, the stride-2 depthwise convolutions, the shortcuts, the final
        conv). The outputs stay the same within float rounding; the state
        dict is then that of ``deploy=True``. Afterwards the network cannot
        train. MMDeploy calls this method by its name; the forms that
        runtimes run fastest are made from the deployed network by
        :mod:`ghostnet_mmdet.deploy`."""
        if self.deploy:
            return
        others = sorted({type(m).__name__ for m in self.modules()
                         if isinstance(m, (nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d))})
        if others:
            raise ValueError(f'switch_to_deploy folds BatchNorm into convolutions; this network '
                             f'has {", ".join(others)} layers, which cannot be folded')
        for module in self.modules():
            if module is not self and hasattr(module, 'switch_to_deploy'):
                module.switch_to_deploy()
        fuse_conv_bn(self)
        for param in self.parameters():
            param.detach_()
            param.requires_grad_(False)
        self.deploy = True
        self.eval()

    def train(self, mode: bool = True) -> 'GhostNet':
        """Switch mode, keeping frozen stages and (with ``norm_eval``) all
        norm layers in eval mode."""
        if mode and getattr(self, 'deploy', False):
            raise RuntimeError(
                f'{type(self).__name__} is in deploy form (switch_to_deploy or deploy=True: '
                'BatchNorm folded into the convolutions) and cannot be trained; build it '
                'without deploy=True and load the training checkpoint to train')
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


@MODELS.register_module()
class GhostNetV2(GhostNet):
    """GhostNetV2 backbone (Tang et al., NeurIPS 2022).

    GhostNet's network with decoupled fully connected (DFC) attention in the
    first ghost module of every block after the first two: the block input
    average-pooled 2x2, a 1x1 conv, depthwise (1, 5) and (5, 1) convs (each
    with a norm), a sigmoid upsampled to the ghost output, which it gates.
    Same arguments, outputs and channels as :class:`GhostNet`; timm's
    ``ghostnetv2_100/130/160`` and the official weights convert with
    ``tools/model_converters/ghostnet_to_mmdet.py --version v2``.

    Feature maps of one pixel in a direction (inputs up to 32 px there) are
    not pooled in that direction; the reference code fails on them.
    """
    version = 'v2'


@MODELS.register_module()
class GhostNetV3(GhostNet):
    """GhostNetV3 backbone (Liu et al., 2024), re-parameterised.

    GhostNetV2's network whose convolutions train as parallel branches:
    each ghost module's primary conv as three 1x1 conv + norm branches, its
    cheap depthwise conv as three depthwise branches, a 1x1 depthwise scale
    branch and an identity norm; the stride-2 depthwise conv as three
    branches and a 1x1 scale branch. :meth:`switch_to_deploy` folds them
    (and every BatchNorm) into single convolutions: the inference network,
    with the parameter count of a deployed GhostNetV2; ``deploy=True``
    builds that form directly so that its checkpoints load. Same arguments,
    outputs and channels as :class:`GhostNet`; timm's ``ghostnetv3_*`` and
    the official weights convert with ``--version v3``.
    """
    version = 'v3'
    num_branches = 3


# The family by version name (converters, analysis tools and tests pick a
# class by it).
GHOSTNET_VERSIONS = {'v1': GhostNet, 'v2': GhostNetV2, 'v3': GhostNetV3}


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
