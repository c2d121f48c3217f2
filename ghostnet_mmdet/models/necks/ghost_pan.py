"""GhostPAN: a path aggregation network made of ghost blocks (the neck of
NanoDet-Plus, RangiLyu 2021), built from this package's
:class:`~ghostnet_mmdet.models.layers.GhostBottleneck`.

Every input is reduced to ``out_channels`` by a 1x1 conv; top-down, the
coarser map is upsampled (bilinear), concatenated with the finer one and
fused by ``num_blocks`` ghost bottlenecks; bottom-up, the finer output is
downsampled by a depthwise-separable ``kernel_size`` conv of stride 2,
concatenated with the top-down map and fused the same way. Each extra
level is the sum of a stride-2 depthwise-separable conv of the coarsest
reduced input and one of the coarsest output.
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

from ..layers import GhostBottleneck
from ..utils import check_int, check_odd_kernel


@MODELS.register_module()
class GhostPAN(BaseModule):
    """Path aggregation network of ghost bottlenecks (NanoDet-Plus's neck).

    Args:
        in_channels (Sequence[int]): Channels of each input level (finest
            first), e.g. GhostNet-1.0x's ``[40, 112, 160]``.
        out_channels (int): Channels of every output level. Defaults to 96.
        num_extra_levels (int): Levels added below the coarsest input, each
            at half the resolution. Defaults to 1.
        kernel_size (int): Kernel of the depthwise convolutions (the
            downsampling convs and the bottlenecks' shortcut). Defaults to 5.
        expand (float): Expansion of the ghost bottlenecks (their middle
            channels are ``out_channels * expand``). Defaults to 1.
        num_blocks (int): Ghost bottlenecks per fusion. Defaults to 1.
        upsample_cfg (dict): ``F.interpolate`` arguments of the top-down
            path. Defaults to ``dict(scale_factor=2, mode='bilinear')``.
        conv_cfg (dict, optional): Config of the convolutions.
        norm_cfg (dict): Config of the norm layers. Defaults to BN.
        act_cfg (dict): Activation. Defaults to LeakyReLU(0.1), NanoDet-Plus's.
        init_cfg (dict or list[dict], optional): Initialization config.

    Example:
        >>> neck = GhostPAN([40, 112, 160], 96)
        >>> feats = [torch.rand(1, c, s, s) for c, s in zip([40, 112, 160], [40, 20, 10])]
        >>> [tuple(o.shape) for o in neck(feats)]
        [(1, 96, 40, 40), (1, 96, 20, 20), (1, 96, 10, 10), (1, 96, 5, 5)]
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int = 96,
                 num_extra_levels: int = 1,
                 kernel_size: int = 5,
                 expand: float = 1.0,
                 num_blocks: int = 1,
                 upsample_cfg: ConfigType = dict(scale_factor=2, mode='bilinear'),
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='LeakyReLU', negative_slope=0.1),
                 init_cfg: OptMultiConfig = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(in_channels, (str, bytes)) or not isinstance(in_channels, Sequence) \
                or len(in_channels) == 0:
            raise ValueError(f'in_channels must be a non-empty list of channel counts, one per '
                             f'input level, but got {in_channels!r}')
        for channels in in_channels:
            check_int('every in_channels entry', channels)
        check_int('out_channels', out_channels)
        check_int('num_extra_levels', num_extra_levels, minimum=0)
        check_int('num_blocks', num_blocks)
        check_odd_kernel(kernel_size)
        if isinstance(expand, bool) or not isinstance(expand, (int, float)) or expand <= 0:
            raise ValueError(f'expand must be a number > 0, but got {expand!r}')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_extra_levels = num_extra_levels
        self.upsample_cfg = dict(upsample_cfg)
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        mid_channels = max(1, int(out_channels * expand))

        def fusion() -> nn.Sequential:
            return nn.Sequential(*[
                GhostBottleneck(out_channels * 2 if i == 0 else out_channels, mid_channels,
                                out_channels, kernel_size=kernel_size, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, act_cfg=act_cfg)
                for i in range(num_blocks)])

        def downsample() -> DepthwiseSeparableConvModule:
            return DepthwiseSeparableConvModule(out_channels, out_channels, kernel_size,
                                                stride=2, padding=kernel_size // 2, **common)

        levels = len(self.in_channels)
        self.reduce_layers = nn.ModuleList(
            ConvModule(channels, out_channels, 1, **common) for channels in self.in_channels)
        self.top_down_blocks = nn.ModuleList(fusion() for _ in range(levels - 1))
        self.downsamples = nn.ModuleList(downsample() for _ in range(levels - 1))
        self.bottom_up_blocks = nn.ModuleList(fusion() for _ in range(levels - 1))
        self.extra_in_convs = nn.ModuleList(downsample() for _ in range(num_extra_levels))
        self.extra_out_convs = nn.ModuleList(downsample() for _ in range(num_extra_levels))

    def _upsample(self, x: Tensor, like: Tensor) -> Tensor:
        if 'scale_factor' in self.upsample_cfg:
            return F.interpolate(x, **self.upsample_cfg)
        return F.interpolate(x, size=like.shape[2:], **self.upsample_cfg)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'GhostPAN was built for {len(self.in_channels)} input levels '
                             f'(in_channels={self.in_channels}), but got {len(inputs)}')
        reduced = [layer(x) for layer, x in zip(self.reduce_layers, inputs)]
        # Top-down: from the coarsest level to the finest.
        inner: List[Tensor] = [reduced[-1]]
        for index in range(len(reduced) - 1, 0, -1):
            high, low = inner[0], reduced[index - 1]
            fused = self.top_down_blocks[len(reduced) - 1 - index](
                torch.cat([self._upsample(high, low), low], dim=1))
            inner.insert(0, fused)
        # Bottom-up: from the finest level to the coarsest.
        outs = [inner[0]]
        for index in range(len(reduced) - 1):
            down = self.downsamples[index](outs[-1])
            outs.append(self.bottom_up_blocks[index](torch.cat([down, inner[index + 1]], dim=1)))
        top = reduced[-1]
        for extra_in, extra_out in zip(self.extra_in_convs, self.extra_out_convs):
            top = extra_in(top)
            outs.append(top + extra_out(outs[-1]))
        return tuple(outs)
