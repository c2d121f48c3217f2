"""The building blocks of the GhostNet family: GhostNet (Han et al., CVPR
2020, Figures 2 and 3), GhostNetV2's DFC attention (NeurIPS 2022) and
GhostNetV3's re-parameterisable branches (2024).

A version adds its pieces to the same blocks: ``attention=True`` gives a
ghost module V2's decoupled fully connected (DFC) attention,
``num_branches=3`` replaces single convolutions by V3's parallel branches
(:class:`RepConvModule`), which ``switch_to_deploy`` folds back into one.

Every convolution is an :class:`mmcv.cnn.ConvModule`, so ``conv_cfg``,
``norm_cfg`` and ``act_cfg`` swap layers the MMDetection way. The state-dict
layout differs from the official code and timm by ConvModule's ``conv``/
``bn`` names; :mod:`ghostnet_mmdet.utils.checkpoint_conversion` maps between
them.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_activation_layer, build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.models.utils import make_divisible
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


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
        return self._scale(x, self.conv_expand(self.conv_reduce(self._pool(x))))

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:
        # Global average pool as a mean: cheaper than AdaptiveAvgPool2d on CPU.
        return x.mean((2, 3), keepdim=True)

    @staticmethod
    def _scale(x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        # hard_sigmoid(x) = relu6(x + 3) / 6, the gate of the reference code.
        return x * F.hardsigmoid(gate)



def _fold_batch_norm(kernel: torch.Tensor, norm: nn.Module):
    """A convolution kernel (and bias) with the BatchNorm after it folded in."""
    if not isinstance(norm, _BatchNorm):
        raise ValueError('switch_to_deploy folds BatchNorm into convolutions, not '
                         f'{type(norm).__name__}')
    std = (norm.running_var + norm.eps).sqrt()
    scale = norm.weight / std
    return kernel * scale.reshape(-1, 1, 1, 1), norm.bias - norm.running_mean * scale


class RepConvModule(BaseModule):
    """GhostNetV3's re-parameterisable convolution: the sum of
    ``num_branches`` conv + norm branches, optionally a 1x1 conv + norm
    "scale" branch and a norm-only "identity" branch, then the activation.
    :meth:`switch_to_deploy` folds them into one biased convolution of the
    same kernel, stride and groups (the inference form, also built directly
    with ``deploy=True``).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel of the branches.
        stride (int): Stride. Defaults to 1.
        padding (int): Padding of the branches. Defaults to 0.
        groups (int): Groups of every convolution. Defaults to 1.
        num_branches (int): Parallel kxk branches. Defaults to 3.
        with_scale (bool): Add a 1x1 branch. Defaults to False.
        with_identity (bool): Add a norm-only branch (needs equal in and out
            channels and stride 1). Defaults to False.
        conv_cfg, norm_cfg, act_cfg (dict): As for ConvModule; the
            activation follows the sum.
        deploy (bool): Build the single folded convolution. Defaults to
            False.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 stride: int = 1,
                 padding: int = 0,
                 groups: int = 1,
                 num_branches: int = 3,
                 with_scale: bool = False,
                 with_identity: bool = False,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: OptConfigType = dict(type='ReLU'),
                 deploy: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if with_identity and (in_channels != out_channels or stride != 1):
            raise ValueError('an identity branch needs in_channels == out_channels and stride 1, '
                             f'got {in_channels}, {out_channels}, stride {stride}')
        self.deploy = deploy
        self.conv_args = dict(in_channels=in_channels, out_channels=out_channels,
                              kernel_size=kernel_size, stride=stride, padding=padding,
                              groups=groups)
        self.conv_cfg = conv_cfg
        if deploy:
            self.conv = build_conv_layer(conv_cfg, bias=True, **self.conv_args)
        else:
            common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None)
            self.branches = nn.ModuleList(
                ConvModule(in_channels, out_channels, kernel_size, stride=stride,
                           padding=padding, groups=groups, **common)
                for _ in range(num_branches))
            self.scale = ConvModule(in_channels, out_channels, 1, stride=stride, groups=groups,
                                    **common) if with_scale else None
            self.identity = build_norm_layer(norm_cfg, out_channels)[1] if with_identity else None
        self.activate = build_activation_layer(act_cfg) if act_cfg else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            out = self.conv(x)
        else:
            # The reference's order of summation: scale, identity, branches.
            terms = [m for m in (self.scale, self.identity) if m is not None] + list(self.branches)
            out = terms[0](x)
            for term in terms[1:]:
                out = out + term(x)
        return self.activate(out) if self.activate is not None else out

    def _folded(self):
        """Kernel and bias of the one convolution that the branches sum to."""
        size = self.conv_args['kernel_size']
        kernel, bias = 0, 0
        for branch in self.branches:
            branch_kernel, branch_bias = _fold_batch_norm(branch.conv.weight, branch.norm)
            kernel, bias = kernel + branch_kernel, bias + branch_bias
        if self.scale is not None:
            scale_kernel, scale_bias = _fold_batch_norm(self.scale.conv.weight, self.scale.norm)
            pad = size // 2
            kernel = kernel + F.pad(scale_kernel, [pad, pad, pad, pad])
            bias = bias + scale_bias
        if self.identity is not None:
            channels = self.conv_args['out_channels']
            per_group = self.conv_args['in_channels'] // self.conv_args['groups']
            identity = torch.zeros(channels, per_group, size, size, dtype=kernel.dtype,
                                   device=kernel.device)
            identity[torch.arange(channels), torch.arange(channels) % per_group,
                     size // 2, size // 2] = 1
            identity_kernel, identity_bias = _fold_batch_norm(identity, self.identity)
            kernel, bias = kernel + identity_kernel, bias + identity_bias
        return kernel, bias

    def switch_to_deploy(self) -> None:
        """Fold the branches into one biased convolution, in place."""
        if self.deploy:
            return
        kernel, bias = self._folded()
        conv = build_conv_layer(self.conv_cfg, bias=True, **self.conv_args)
        conv.weight.data, conv.bias.data = kernel.detach(), bias.detach()
        self.conv = conv.to(kernel.device)
        del self.branches, self.scale, self.identity
        self.deploy = True


class DFCAttention(nn.Sequential):
    """GhostNetV2's decoupled fully connected attention: on the input
    average-pooled 2x2, a conv like the ghost module's primary one (to its
    output channels), then depthwise (1, 5) and (5, 1) convolutions, each
    with a norm; a sigmoid, upsampled (nearest) to the output size, gates
    the ghost module's output. A sequence of three ConvModules, as the
    reference's ``short_conv``.

    A feature map of 1 pixel in a direction is not pooled in that direction
    (the reference code fails there); everything larger is computed as in
    the reference.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 stride: int = 1, conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = dict(type='BN')) -> None:
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None)
        super().__init__(
            ConvModule(in_channels, out_channels, kernel_size, stride=stride,
                       padding=kernel_size // 2, **common),
            ConvModule(out_channels, out_channels, (1, 5), padding=(0, 2), groups=out_channels,
                       **common),
            ConvModule(out_channels, out_channels, (5, 1), padding=(2, 0), groups=out_channels,
                       **common))

    def forward(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return self._apply_gate(out, super().forward(self._pool(x)))

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:
        window = (2 if x.shape[-2] >= 2 else 1, 2 if x.shape[-1] >= 2 else 1)
        return F.avg_pool2d(x, kernel_size=window, stride=window)

    @staticmethod
    def _apply_gate(out: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return out * F.interpolate(gate.sigmoid(), size=out.shape[-2:], mode='nearest')


class GhostModule(BaseModule):
    """Ghost module (paper, Figure 2b).

    A primary 1x1 convolution makes ``ceil(out_channels / ratio)`` intrinsic
    feature maps; a cheap depthwise ``dw_size`` convolution makes the
    "ghost" maps from them; both are concatenated and cut to
    ``out_channels``. GhostNetV2 gates the result with DFC attention
    (``attention=True``); GhostNetV3 makes both convolutions
    re-parameterisable (``num_branches=3``: three primary branches; three
    cheap branches, a 1x1 scale branch and an identity norm).

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
        attention (bool): GhostNetV2's DFC attention. Defaults to False.
        num_branches (int): 0 for single convolutions, else GhostNetV3's
            parallel branches. Defaults to 0.
        deploy (bool): GhostNetV3's folded form (with ``num_branches``).
            Defaults to False.
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
                 attention: bool = False,
                 num_branches: int = 0,
                 deploy: bool = False,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.out_channels = out_channels
        intrinsic_channels = math.ceil(out_channels / ratio)
        ghost_channels = intrinsic_channels * (ratio - 1)
        act_cfg = act_cfg if use_act else None
        primary = dict(in_channels=in_channels, out_channels=intrinsic_channels,
                       kernel_size=kernel_size, stride=stride, padding=kernel_size // 2,
                       conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        cheap = dict(in_channels=intrinsic_channels, out_channels=ghost_channels,
                     kernel_size=dw_size, padding=dw_size // 2, groups=intrinsic_channels,
                     conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        if num_branches:
            self.primary_conv = RepConvModule(num_branches=num_branches, deploy=deploy, **primary)
            self.cheap_operation = RepConvModule(
                num_branches=num_branches, with_scale=True,
                with_identity=intrinsic_channels == ghost_channels, deploy=deploy, **cheap)
        else:
            self.primary_conv = ConvModule(**primary)
            self.cheap_operation = ConvModule(**cheap)
        self.short_conv = DFCAttention(in_channels, out_channels, kernel_size, stride,
                                       conv_cfg=conv_cfg, norm_cfg=norm_cfg) if attention else None
        self.ratio = ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        intrinsic = self.primary_conv(x)
        ghost = self.cheap_operation(intrinsic)
        out = torch.cat([intrinsic, ghost], dim=1)
        if out.shape[1] != self.out_channels:
            out = out[:, :self.out_channels]
        if self.short_conv is not None:
            out = self.short_conv(x, out)
        return out



class GhostBottleneck(BaseModule):
    """Ghost bottleneck (paper, Figure 3).

    ghost module (with activation) -> [depthwise ``kernel_size`` conv + norm,
    stride 2 only] -> [squeeze-excite] -> ghost module (linear), plus a
    shortcut: identity when the shape is kept, else depthwise conv + norm +
    1x1 conv + norm. No activation after the sum. GhostNetV2 adds DFC
    attention to the first ghost module (``attention``); GhostNetV3 makes
    the ghost modules and the stride-2 depthwise conv (three branches and a
    1x1 scale branch) re-parameterisable (``num_branches``).

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Expansion channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel of the depthwise convolutions. Defaults to 3.
        stride (int): 1 or 2. Defaults to 1.
        se_ratio (float): Squeeze-excite reduction ratio; 0 disables it.
            Defaults to 0.
        attention (bool): DFC attention in the first ghost module (V2/V3).
            Defaults to False.
        num_branches (int): 0, or the re-parameterisable branches of V3.
            Defaults to 0.
        deploy (bool): V3's folded form. Defaults to False.
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
                 attention: bool = False,
                 num_branches: int = 0,
                 deploy: bool = False,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 with_cp: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, but got {stride}')
        self.stride = stride
        self.with_cp = with_cp
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        version = dict(num_branches=num_branches, deploy=deploy)
        self.ghost1 = GhostModule(
            in_channels, mid_channels, use_act=True, attention=attention, act_cfg=act_cfg,
            **version, **common)
        if stride > 1:
            depthwise = dict(kernel_size=kernel_size, stride=stride,
                             padding=(kernel_size - 1) // 2, groups=mid_channels,
                             act_cfg=None, **common)
            if num_branches:
                self.conv_dw = RepConvModule(mid_channels, mid_channels, with_scale=True,
                                             **version, **depthwise)
            else:
                self.conv_dw = ConvModule(mid_channels, mid_channels, **depthwise)
        else:
            self.conv_dw = None
        if se_ratio > 0:
            self.se = SqueezeExcite(
                mid_channels, se_ratio, conv_cfg=conv_cfg, act_cfg=act_cfg)
        else:
            self.se = None
        self.ghost2 = GhostModule(
            mid_channels, out_channels, use_act=False, **version, **common)
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
