"""The building blocks of GhostNet (Han et al., CVPR 2020), Figures 2 and 3.

Every convolution is an :class:`mmcv.cnn.ConvModule`, so ``conv_cfg``,
``norm_cfg`` and ``act_cfg`` swap layers the MMDetection way. The state-dict
layout differs from the official code only by ConvModule's ``conv``/``bn``
names; :mod:`ghostnet_mmdet.utils.checkpoint_conversion` maps between them.
"""
import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


def make_divisible(value: float, divisor: int = 4, min_value: Optional[int] = None,
                   min_ratio: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, TF-style.

    This is the rounding of the reference implementations: round to the
    nearest multiple (at least ``min_value``), then add one ``divisor`` if
    rounding lost more than ``1 - min_ratio`` of the value. GhostNet uses
    ``divisor=4`` everywhere.

    Args:
        value (float): The channel count before rounding.
        divisor (int): The result is a multiple of it. Defaults to 4.
        min_value (int, optional): Lower bound. Defaults to ``divisor``.
        min_ratio (float): Smallest allowed ratio of result to ``value``.
            Defaults to 0.9.

    Returns:
        int: The rounded channel count.
    """
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < min_ratio * value:
        new_value += divisor
    return new_value


class SqueezeExcite(BaseModule):
    """Squeeze-and-excitation with a hard-sigmoid gate, as used by GhostNet.

    Global average pool, 1x1 conv (with bias) down to
    ``make_divisible(channels * se_ratio, 4)``, activation, 1x1 conv (with
    bias) back to ``channels``, then ``x * hard_sigmoid(.)``.

    Args:
        channels (int): Input and output channels.
        se_ratio (float): Reduction ratio of the hidden layer. Defaults to 0.25.
        conv_cfg (dict, optional): Config of the convolutions. Defaults to None.
        act_cfg (dict): Activation of the hidden layer. Defaults to ReLU.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 channels: int,
                 se_ratio: float = 0.25,
                 conv_cfg: OptConfigType = None,
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        reduced_channels = make_divisible(channels * se_ratio, 4)
        self.conv_reduce = ConvModule(
            channels, reduced_channels, 1, bias=True, conv_cfg=conv_cfg,
            norm_cfg=None, act_cfg=act_cfg)
        self.conv_expand = ConvModule(
            reduced_channels, channels, 1, bias=True, conv_cfg=conv_cfg,
            norm_cfg=None, act_cfg=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Global average pool as a mean: cheaper than AdaptiveAvgPool2d on CPU.
        gate = self.conv_expand(self.conv_reduce(x.mean((2, 3), keepdim=True)))
        # hard_sigmoid(x) = relu6(x + 3) / 6, the gate of the reference code.
        return x * F.hardsigmoid(gate)


class GhostModule(BaseModule):
    """Ghost module (paper, Figure 2b).

    A primary 1x1 convolution makes ``ceil(out_channels / ratio)`` intrinsic
    feature maps; a cheap depthwise ``dw_size`` convolution makes the
    "ghost" maps from them; both are concatenated and cut to
    ``out_channels``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel of the primary convolution. Defaults to 1.
        ratio (int): Output channels per intrinsic map (paper's ``s``).
            Defaults to 2.
        dw_size (int): Kernel of the cheap depthwise convolution (paper's
            ``d``). Defaults to 3.
        stride (int): Stride of the primary convolution. Defaults to 1.
        use_act (bool): Whether both convolutions are followed by the
            activation. Defaults to True.
        conv_cfg (dict, optional): Config of the convolutions.
        norm_cfg (dict): Config of the norm layers. Defaults to BN.
        act_cfg (dict): Config of the activation. Defaults to ReLU.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 1,
                 ratio: int = 2,
                 dw_size: int = 3,
                 stride: int = 1,
                 use_act: bool = True,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.out_channels = out_channels
        intrinsic_channels = math.ceil(out_channels / ratio)
        ghost_channels = intrinsic_channels * (ratio - 1)
        act_cfg = act_cfg if use_act else None
        self.primary_conv = ConvModule(
            in_channels, intrinsic_channels, kernel_size, stride=stride,
            padding=kernel_size // 2, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.cheap_operation = ConvModule(
            intrinsic_channels, ghost_channels, dw_size, padding=dw_size // 2,
            groups=intrinsic_channels, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
            act_cfg=act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        intrinsic = self.primary_conv(x)
        ghost = self.cheap_operation(intrinsic)
        out = torch.cat([intrinsic, ghost], dim=1)
        if out.shape[1] != self.out_channels:
            out = out[:, :self.out_channels]
        return out


class GhostBottleneck(BaseModule):
    """Ghost bottleneck (paper, Figure 3).

    ghost module (with activation) -> [depthwise ``kernel_size`` conv + norm,
    stride 2 only] -> [squeeze-excite] -> ghost module (linear), plus a
    shortcut: identity when the shape is kept, else depthwise conv + norm +
    1x1 conv + norm. No activation after the sum.

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Expansion channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel of the depthwise convolutions. Defaults to 3.
        stride (int): 1 or 2. Defaults to 1.
        se_ratio (float): Squeeze-excite reduction ratio; 0 disables it.
            Defaults to 0.
        conv_cfg (dict, optional): Config of the convolutions.
        norm_cfg (dict): Config of the norm layers. Defaults to BN.
        act_cfg (dict): Config of the activation. Defaults to ReLU.
        with_cp (bool): Use gradient checkpointing for this block. Saves
            memory at the cost of a second forward. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 se_ratio: float = 0.,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 with_cp: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, but got {stride}')
        self.stride = stride
        self.with_cp = with_cp
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.ghost1 = GhostModule(
            in_channels, mid_channels, use_act=True, act_cfg=act_cfg, **common)
        if stride > 1:
            self.conv_dw = ConvModule(
                mid_channels, mid_channels, kernel_size, stride=stride,
                padding=(kernel_size - 1) // 2, groups=mid_channels,
                act_cfg=None, **common)
        else:
            self.conv_dw = None
        if se_ratio > 0:
            self.se = SqueezeExcite(
                mid_channels, se_ratio, conv_cfg=conv_cfg, act_cfg=act_cfg)
        else:
            self.se = None
        self.ghost2 = GhostModule(
            mid_channels, out_channels, use_act=False, **common)
        if in_channels == out_channels and stride == 1:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                ConvModule(
                    in_channels, in_channels, kernel_size, stride=stride,
                    padding=(kernel_size - 1) // 2, groups=in_channels,
                    act_cfg=None, **common),
                ConvModule(in_channels, out_channels, 1, act_cfg=None,
                           **common))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ghost1(x)
        if self.conv_dw is not None:
            out = self.conv_dw(out)
        if self.se is not None:
            out = self.se(out)
        out = self.ghost2(out)
        # In place: ``out`` is a fresh tensor that nothing else holds.
        out += self.shortcut(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)
