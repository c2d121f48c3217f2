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
import copy
import math
from typing import NamedTuple, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_activation_layer, build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.models.utils import make_divisible
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class ChannelLayout(NamedTuple):
    """Where the channels of a feature map lie in the padded deploy form:
    natural channel ``j`` is channel ``positions[j]`` of ``total``; the
    others are padding, which every consumer multiplies by zero weights.

    Runtimes keep a tensor in their blocked channel layout (8 channels a
    block on AVX2, 16 on AVX-512) only where its channel count is a multiple
    of the block, and through a Concat only where every input is; padding
    the ghost modules' halves to such multiples keeps the whole backbone in
    that layout.
    """
    total: int
    positions: Tuple[int, ...]

    @classmethod
    def plain(cls, channels: int, block: int = 1) -> 'ChannelLayout':
        """``channels`` in order, zeros after them up to a multiple of ``block``."""
        return cls(_round_up(channels, block), tuple(range(channels)))

    @classmethod
    def ghost(cls, channels: int, block: int) -> 'ChannelLayout':
        """A ghost module's output: the intrinsic half and the cheap half,
        each padded to a multiple of ``block`` (ratio 2)."""
        intrinsic = math.ceil(channels / 2)
        half = _round_up(intrinsic, block)
        return cls(2 * half, tuple(range(intrinsic)) + tuple(range(half, half + channels - intrinsic)))

    def runs(self) -> Tuple[Tuple[int, int], ...]:
        """The natural channels as ``(start, stop)`` runs of consecutive positions."""
        runs, start = [], self.positions[0]
        for previous, position in zip(self.positions, self.positions[1:]):
            if position != previous + 1:
                runs.append((start, previous + 1))
                start = position
        runs.append((start, self.positions[-1] + 1))
        return tuple(runs)

    def to_natural(self, x: torch.Tensor) -> torch.Tensor:
        """The natural channels of a padded feature map, in order: one
        slice, or one gather (a concatenation of the runs would join
        tensors off the block)."""
        if self.total == len(self.positions):
            return x
        runs = self.runs()
        if len(runs) == 1:
            return x[:, runs[0][0]:runs[0][1]]
        return x.index_select(1, torch.tensor(self.positions, device=x.device))


def pad_conv(module: nn.Module, in_layout: ChannelLayout, out_layout: ChannelLayout) -> None:
    """Give ``module.conv`` (of a ConvModule or a deployed RepConvModule)
    the padded input and output layouts, in place: its weights at the
    natural channels' positions, zeros elsewhere, so it computes the same
    numbers. Dense and depthwise convolutions only."""
    conv = module.conv
    depthwise = conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels
    if conv.groups != 1 and not depthwise:
        raise ValueError(f'channel padding supports dense and depthwise convolutions, not '
                         f'groups={conv.groups} with {conv.in_channels} input channels')
    if len(in_layout.positions) != conv.in_channels or \
            len(out_layout.positions) != conv.out_channels:
        raise ValueError(f'layouts of {len(in_layout.positions)} and {len(out_layout.positions)} '
                         f'channels do not fit a conv from {conv.in_channels} to '
                         f'{conv.out_channels} channels')
    if depthwise and in_layout != out_layout:
        raise ValueError('a depthwise convolution keeps its channels where they are: its input '
                         'and output layouts must be the same')
    weight = conv.weight.detach()
    outputs = torch.tensor(out_layout.positions, device=weight.device)
    inputs = torch.tensor(in_layout.positions, device=weight.device)
    rows = weight.new_zeros((out_layout.total, ) + weight.shape[1:])
    rows[outputs] = weight
    if depthwise:
        padded_weight = rows
    else:
        padded_weight = weight.new_zeros((out_layout.total, in_layout.total) + weight.shape[2:])
        padded_weight[:, inputs] = rows
    bias = weight.new_zeros(out_layout.total)
    if conv.bias is not None:
        bias[outputs] = conv.bias.detach()
    padded = copy.deepcopy(conv)
    padded.in_channels, padded.out_channels = in_layout.total, out_layout.total
    padded.groups = out_layout.total if depthwise else 1
    padded.weight = nn.Parameter(padded_weight, requires_grad=conv.weight.requires_grad)
    padded.bias = nn.Parameter(bias, requires_grad=conv.weight.requires_grad)
    module.conv = padded
    if hasattr(module, 'in_channels'):  # ConvModule's record of its conv
        module.in_channels, module.out_channels = padded.in_channels, padded.out_channels


# A feature map held as equal channel slices, in order (the deploy form with
# the ghost modules' halves kept apart: see :func:`conv_pieces`).
Pieces = Tuple[torch.Tensor, ...]


def conv_pieces(module: nn.Module, pieces: Pieces, num_out: int = 1) -> Pieces:
    """Apply ``module`` (a ConvModule or a deployed RepConvModule, its
    BatchNorm folded) to a feature map held as ``pieces``: equal channel
    slices that are never concatenated. A dense convolution becomes one
    convolution per pair of input piece and output piece, summed (runtimes
    fuse the sum into the second convolution), giving ``num_out`` equal
    slices of its output; a depthwise one runs on each piece. Then the
    module's activation. The same numbers as the convolution of the
    concatenation, up to the rounding of the sums.

    This is the deploy form without concatenations: CPU runtimes copy every
    ghost module's two halves into a new tensor at each Concat. The weights
    of the pieces are slices of the module's: an exported graph holds them
    as unnamed constants (see
    :func:`ghostnet_mmdet.deploy.quantize.onnx_conv_nodes`).
    """
    conv = module.conv
    norm = getattr(module, 'norm', None) if getattr(module, 'with_norm', False) else None
    if norm is not None and not isinstance(norm, nn.Identity):
        raise ValueError(f'a convolution on split pieces needs its {type(norm).__name__} folded '
                         'first (switch_to_deploy)')
    if type(conv) is not nn.Conv2d:
        raise ValueError(f'a convolution on split pieces must be an nn.Conv2d, not '
                         f'{type(conv).__name__}')
    depthwise = conv.groups > 1
    if depthwise and not conv.groups == conv.in_channels == conv.out_channels:
        raise ValueError(f'split pieces support dense and depthwise convolutions, not '
                         f'groups={conv.groups} with {conv.in_channels} input channels')
    if conv.in_channels % len(pieces) or conv.out_channels % num_out:
        raise ValueError(f'a conv from {conv.in_channels} to {conv.out_channels} channels cannot '
                         f'take {len(pieces)} equal input pieces and give {num_out}')
    weight, bias = conv.weight, conv.bias
    args = (conv.stride, conv.padding, conv.dilation)
    step = conv.in_channels // len(pieces)
    if depthwise:
        out = tuple(
            F.conv2d(piece, weight[i * step:(i + 1) * step],
                     None if bias is None else bias[i * step:(i + 1) * step], *args, step)
            for i, piece in enumerate(pieces))
    else:
        out_step = conv.out_channels // num_out
        outs = []
        for j in range(num_out):
            rows = slice(j * out_step, (j + 1) * out_step)
            total = None
            for i, piece in enumerate(pieces):
                term = F.conv2d(piece, weight[rows, i * step:(i + 1) * step],
                                bias[rows] if total is None and bias is not None else None, *args)
                total = term if total is None else total + term
            outs.append(total)
        out = tuple(outs)
    with_activation = getattr(module, 'with_activation', None)
    activate = getattr(module, 'activate', None)
    if activate is not None and with_activation is not False:
        out = tuple(activate(piece) for piece in out)
    return out


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

    def forward_pieces(self, pieces: Pieces) -> Pieces:
        """The same on a feature map held as pieces (:func:`conv_pieces`)."""
        pooled = tuple(self._pool(piece) for piece in pieces)
        gates = conv_pieces(self.conv_expand, conv_pieces(self.conv_reduce, pooled), len(pieces))
        return tuple(self._scale(piece, gate) for piece, gate in zip(pieces, gates))

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:
        # Global average pool as a mean: cheaper than AdaptiveAvgPool2d on CPU
        # in PyTorch; exported as GlobalAveragePool, which runtimes run in
        # their blocked layouts (ReduceMean they do not).
        if torch.onnx.is_in_onnx_export():
            return F.adaptive_avg_pool2d(x, 1)
        return x.mean((2, 3), keepdim=True)

    @staticmethod
    def _scale(x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        # hard_sigmoid(x) = relu6(x + 3) / 6, the gate of the reference code.
        gate = F.hardsigmoid(gate)
        if torch.onnx.is_in_onnx_export():
            # Exported as a gate of the feature map's size (Resize, nearest):
            # CPU runtimes multiply tensors of one shape in their blocked
            # layout, but reorder to plain NCHW and back around a broadcast.
            gate = F.interpolate(gate, size=x.shape[-2:], mode='nearest')
        return x * gate

    def pad_channels(self, layout: ChannelLayout, block: int) -> None:
        """Deploy form: the input's padded layout; the hidden layer padded
        to a multiple of ``block``."""
        hidden = ChannelLayout.plain(self.conv_reduce.conv.out_channels, block)
        pad_conv(self.conv_reduce, layout, hidden)
        pad_conv(self.conv_expand, hidden, layout)


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

    def forward_pieces(self, x: Pieces, out: Pieces) -> Pieces:
        """The same on feature maps held as pieces (:func:`conv_pieces`)."""
        gates = conv_pieces(self[0], tuple(self._pool(piece) for piece in x), len(out))
        gates = conv_pieces(self[2], conv_pieces(self[1], gates))
        return tuple(self._apply_gate(piece, gate) for piece, gate in zip(out, gates))

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
        # Channels of the output tensor: out_channels, or in the padded
        # deploy form (pad_channels) both halves padded.
        self.output_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        intrinsic = self.primary_conv(x)
        ghost = self.cheap_operation(intrinsic)
        out = torch.cat([intrinsic, ghost], dim=1)
        if out.shape[1] != self.output_channels:
            out = out[:, :self.output_channels]
        if self.short_conv is not None:
            out = self.short_conv(x, out)
        return out

    def forward_pieces(self, x: Pieces) -> Pieces:
        """Deploy form without the concatenation: the intrinsic and the
        cheap half as two pieces (:func:`conv_pieces`). Needs halves of
        equal size (ratio 2 and an even ``out_channels``, as every
        GhostNet width has, or the padded form)."""
        if self.ratio != 2 or self.output_channels % 2:
            raise ValueError('split halves need a ghost module of ratio 2 with an even number of '
                             f'output channels, not ratio {self.ratio} and '
                             f'{self.output_channels} channels')
        intrinsic = conv_pieces(self.primary_conv, x)
        out = intrinsic + conv_pieces(self.cheap_operation, intrinsic)
        if self.short_conv is not None:
            out = self.short_conv.forward_pieces(x, out)
        return out

    def pad_channels(self, in_layout: ChannelLayout, block: int) -> ChannelLayout:
        """Deploy form without layout breaks, in place (after BatchNorm is
        folded): both halves padded with zero channels to a multiple of
        ``block``, so the concatenation joins aligned tensors and needs no
        slice. Returns the layout of the output."""
        if self.ratio != 2:
            raise ValueError(f'channel padding supports ghost modules of ratio 2, not {self.ratio}')
        out_layout = ChannelLayout.ghost(self.out_channels, block)
        half = out_layout.total // 2
        intrinsic = ChannelLayout(half, out_layout.positions[:math.ceil(self.out_channels / 2)])
        pad_conv(self.primary_conv, in_layout, intrinsic)
        pad_conv(self.cheap_operation, intrinsic, intrinsic)
        if self.short_conv is not None:
            pad_conv(self.short_conv[0], in_layout, out_layout)
            pad_conv(self.short_conv[1], out_layout, out_layout)
            pad_conv(self.short_conv[2], out_layout, out_layout)
        self.output_channels = out_layout.total
        return out_layout


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

    def pad_channels(self, in_layout: ChannelLayout, block: int) -> ChannelLayout:
        """Deploy form without layout breaks (see :meth:`GhostModule.pad_channels`):
        every convolution of the block over padded layouts. Returns the
        layout of the output (a ghost module's, as the shortcut adds to it)."""
        mid = self.ghost1.pad_channels(in_layout, block)
        if self.conv_dw is not None:
            pad_conv(self.conv_dw, mid, mid)
        if self.se is not None:
            self.se.pad_channels(mid, block)
        out = self.ghost2.pad_channels(mid, block)
        if isinstance(self.shortcut, nn.Identity):
            if in_layout != out:
                raise ValueError(f'an identity shortcut needs the input in the output layout '
                                 f'{out}, got {in_layout}')
        else:
            pad_conv(self.shortcut[0], in_layout, in_layout)
            pad_conv(self.shortcut[1], in_layout, out)
        return out

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

    def forward_pieces(self, x: Pieces) -> Pieces:
        """Deploy form without concatenations: input and output held as
        the two halves of a ghost module's output (:func:`conv_pieces`)."""
        out = self.ghost1.forward_pieces(x)
        if self.conv_dw is not None:
            out = conv_pieces(self.conv_dw, out)
        if self.se is not None:
            out = self.se.forward_pieces(out)
        out = self.ghost2.forward_pieces(out)
        if isinstance(self.shortcut, nn.Identity):
            shortcut = x
        else:
            shortcut = conv_pieces(self.shortcut[1], conv_pieces(self.shortcut[0], x), len(out))
        if len(shortcut) != len(out):
            raise ValueError(f'an identity shortcut needs the input in {len(out)} pieces, got '
                             f'{len(shortcut)}')
        return tuple(piece + short for piece, short in zip(out, shortcut))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)
