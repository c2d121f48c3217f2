"""The export form of a deployed GhostNet-family backbone: the same numbers
as the network, in the form that CPU runtimes run fastest.

The model classes (:mod:`ghostnet_mmdet.models`) are only the network, and
``switch_to_deploy()`` only folds BatchNorm and merges GhostNetV3's
branches. Here, at export time and on a copy, the deployed backbone becomes
:class:`GhostNetExportForm`, which

- **keeps every ghost module's two halves apart** (no Concat inside the
  backbone: CPU runtimes copy a ghost module's whole output at each one):
  per-channel operations (depthwise convolutions, squeeze-excite pool and
  scale, V2's DFC gate, the residual add) run on each half, and every dense
  convolution after them becomes one convolution per half, summed
  (:func:`conv_pieces`; both runtimes fuse the sum into the second
  convolution); the stem's output is made in two halves for the first
  identity shortcut, and only the outputs are joined;
- **pads every half with zero channels to a multiple of the runtime's
  vector block** (8 channels on AVX2, 16 on AVX-512: :class:`ChannelLayout`,
  :func:`pad_conv`), so that runtimes keep every tensor in their blocked
  layout instead of reordering around odd channel counts (zero weights
  times padding: the same numbers);
- **gives the squeeze-excite gate the form its runtime fuses**: a map of
  the feature map's size (``Resize``, nearest) for onnxruntime, whose
  blocked-layout pass takes that and not a broadcast ``Mul``; a broadcast
  ``Mul`` for OpenVINO, whose CPU plugin runs a ``Resize`` in plain layout
  with a reorder after it (:data:`RUNTIME_GATES`).

The pool is exported as ``GlobalAveragePool`` (runtimes keep it blocked;
``ReduceMean`` they do not). In PyTorch this form is slower than the
network (more, smaller operators), so it is made for export only.
"""
import copy
import math
from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...models.backbones.ghostnet import GHOSTNET_ARCH, GhostNet
from ...models.layers.ghost_blocks import GhostBottleneck, GhostModule, SqueezeExcite
from ..contract import ExportError

# Channel multiple of the padding: AVX2's block (8 float32 values), which
# AVX-512 runtimes also run without reorders in their 8-channel kernels.
DEFAULT_CHANNEL_BLOCK = 8
# The squeeze-excite gate's form per runtime.
GATES = ('resize', 'broadcast')
RUNTIME_GATES = {'onnxruntime': 'resize', 'openvino': 'broadcast'}


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


def _check_block(block) -> int:
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ExportError('channel_block must be a positive int (1: no padding, 8: AVX2 blocks, '
                         f'16: AVX-512 blocks), but got {block!r}')
    return block


def _check_gate(gate) -> str:
    if gate not in GATES:
        raise ExportError(f'gate must be one of {GATES}, but got {gate!r}')
    return gate


# Padding: every convolution of a block over padded channel layouts.

def _pad_squeeze_excite(se: SqueezeExcite, layout: ChannelLayout, block: int) -> None:
    hidden = ChannelLayout.plain(se.conv_reduce.conv.out_channels, block)
    pad_conv(se.conv_reduce, layout, hidden)
    pad_conv(se.conv_expand, hidden, layout)


def _pad_ghost_module(module: GhostModule, in_layout: ChannelLayout,
                      block: int) -> ChannelLayout:
    """Both halves of the module's output padded to a multiple of ``block``;
    returns the output's layout."""
    if module.ratio != 2:
        raise ValueError(f'the export form supports ghost modules of ratio 2, not {module.ratio}')
    out_layout = ChannelLayout.ghost(module.out_channels, block)
    half = out_layout.total // 2
    intrinsic = ChannelLayout(half, out_layout.positions[:math.ceil(module.out_channels / 2)])
    pad_conv(module.primary_conv, in_layout, intrinsic)
    pad_conv(module.cheap_operation, intrinsic, intrinsic)
    if module.short_conv is not None:
        pad_conv(module.short_conv[0], in_layout, out_layout)
        pad_conv(module.short_conv[1], out_layout, out_layout)
        pad_conv(module.short_conv[2], out_layout, out_layout)
    return out_layout


def _pad_bottleneck(module: GhostBottleneck, in_layout: ChannelLayout,
                    block: int) -> ChannelLayout:
    mid = _pad_ghost_module(module.ghost1, in_layout, block)
    if module.conv_dw is not None:
        pad_conv(module.conv_dw, mid, mid)
    if module.se is not None:
        _pad_squeeze_excite(module.se, mid, block)
    out = _pad_ghost_module(module.ghost2, mid, block)
    if isinstance(module.shortcut, nn.Identity):
        if in_layout != out:
            raise ValueError(f'an identity shortcut needs the input in the output layout {out}, '
                             f'got {in_layout}')
    else:
        pad_conv(module.shortcut[0], in_layout, in_layout)
        pad_conv(module.shortcut[1], in_layout, out)
    return out


# The forward pass on split halves.

def _squeeze_excite_pieces(se: SqueezeExcite, pieces: Pieces, gate: str) -> Pieces:
    pooled = tuple(F.adaptive_avg_pool2d(piece, 1) for piece in pieces)
    gates = conv_pieces(se.conv_expand, conv_pieces(se.conv_reduce, pooled), len(pieces))
    out = []
    for piece, gate_map in zip(pieces, gates):
        gate_map = F.hardsigmoid(gate_map)
        if gate == 'resize':
            gate_map = F.interpolate(gate_map, size=piece.shape[-2:], mode='nearest')
        out.append(piece * gate_map)
    return tuple(out)


def _ghost_module_pieces(module: GhostModule, pieces: Pieces) -> Pieces:
    intrinsic = conv_pieces(module.primary_conv, pieces)
    out = intrinsic + conv_pieces(module.cheap_operation, intrinsic)
    if module.short_conv is not None:
        attention = module.short_conv
        gates = conv_pieces(attention[0], tuple(attention._pool(piece) for piece in pieces),
                            len(out))
        gates = conv_pieces(attention[2], conv_pieces(attention[1], gates))
        out = tuple(attention._apply_gate(piece, gate) for piece, gate in zip(out, gates))
    return out


def _bottleneck_pieces(module: GhostBottleneck, pieces: Pieces, gate: str) -> Pieces:
    out = _ghost_module_pieces(module.ghost1, pieces)
    if module.conv_dw is not None:
        out = conv_pieces(module.conv_dw, out)
    if module.se is not None:
        out = _squeeze_excite_pieces(module.se, out, gate)
    out = _ghost_module_pieces(module.ghost2, out)
    if isinstance(module.shortcut, nn.Identity):
        shortcut = pieces
    else:
        shortcut = conv_pieces(module.shortcut[1], conv_pieces(module.shortcut[0], pieces),
                               len(out))
    if len(shortcut) != len(out):
        raise ValueError(f'an identity shortcut needs the input in {len(out)} pieces, got '
                         f'{len(shortcut)}')
    return tuple(piece + short for piece, short in zip(out, shortcut))


class GhostNetExportForm(nn.Module):
    """A deployed GhostNet, V2 or V3 backbone (``switch_to_deploy()``) in
    its export form (module docstring): ghost halves apart, channels padded
    to ``channel_block``, the squeeze-excite gate as ``gate``. Takes over
    the backbone's modules under their names (``stem``, ``blocks``), padded
    in place: build it from a copy (:func:`to_export_form` does). Returns
    the backbone's outputs, the same numbers up to the rounding of the
    split sums.

    Args:
        backbone (GhostNet): A deployed GhostNet-family backbone.
        channel_block (int): Pad the halves to a multiple of this (1: no
            padding). Defaults to 8.
        gate (str): ``'resize'`` (onnxruntime) or ``'broadcast'``
            (OpenVINO). Defaults to ``'resize'``.
    """

    def __init__(self, backbone: GhostNet, channel_block: int = DEFAULT_CHANNEL_BLOCK,
                 gate: str = 'resize') -> None:
        super().__init__()
        if not isinstance(backbone, GhostNet) or not backbone.deploy:
            raise ExportError('the export form is made from a deployed GhostNet-family backbone '
                             '(call switch_to_deploy() first), not '
                             f'{type(backbone).__name__}'
                             + (' in training form' if isinstance(backbone, GhostNet) else ''))
        self.channel_block = _check_block(channel_block)
        self.gate = _check_gate(gate)
        self.in_channels = backbone.in_channels
        self.out_indices = backbone.out_indices
        self.out_channels = backbone.out_channels
        self.stem, self.blocks = backbone.stem, backbone.blocks
        self.output_layouts = self._pad(backbone.plan.stem_channels,
                                        backbone.plan.final_channels)

    def _pad(self, stem_channels: int, final_channels: int) -> Optional[List[ChannelLayout]]:
        """Every feature map between blocks in the layout of a ghost module's
        output, the stem's included (the first block adds it to its own
        output); returns the outputs' layouts."""
        block = self.channel_block
        if block == 1:
            return None
        layout = ChannelLayout.ghost(stem_channels, block)
        pad_conv(self.stem, ChannelLayout.plain(self.in_channels), layout)
        layouts = []
        for stage in self.blocks[:len(GHOSTNET_ARCH)]:
            for module in stage:
                layout = _pad_bottleneck(module, layout, block)
            layouts.append(layout)
        if len(self.blocks) > len(GHOSTNET_ARCH):
            layout = ChannelLayout.plain(final_channels, block)
            pad_conv(self.blocks[-1], layouts[-1], layout)
            layouts.append(layout)
        return layouts

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        pieces = conv_pieces(self.stem, (x, ), num_out=2)
        outs = []
        for index, stage in enumerate(self.blocks):
            if index < len(GHOSTNET_ARCH):
                for module in stage:
                    pieces = _bottleneck_pieces(module, pieces, self.gate)
            else:
                pieces = conv_pieces(stage, pieces)
            if index in self.out_indices:
                joined = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)
                if self.output_layouts is not None:
                    joined = self.output_layouts[index].to_natural(joined)
                outs.append(joined)
        return tuple(outs)


def backbone_export_form(backbone: nn.Module, backend: str = 'onnxruntime',
                         channel_block: int = DEFAULT_CHANNEL_BLOCK) -> nn.Module:
    """The export form of ``backbone`` for ``backend`` (a new module, made
    from a copy): a deployed GhostNet-family backbone becomes a
    :class:`GhostNetExportForm`; one already in its export form is taken as
    it is (refused if its gate is another runtime's); any other backbone, or
    one not deployed (exported as trained, BatchNorm unfolded), is returned
    as it is."""
    if backend not in RUNTIME_GATES:
        raise ExportError(f'backend must be one of {tuple(RUNTIME_GATES)}, but got {backend!r}')
    if isinstance(backbone, GhostNetExportForm):
        if backbone.gate != RUNTIME_GATES[backend]:
            raise ExportError(f'this export form gates squeeze-excite with {backbone.gate!r}, '
                              f'the form of another runtime than {backend}')
        return backbone
    if not isinstance(backbone, GhostNet) or not backbone.deploy:
        return backbone
    return GhostNetExportForm(copy.deepcopy(backbone), channel_block, RUNTIME_GATES[backend])


def to_export_form(detector: nn.Module, backend: str = 'onnxruntime',
                   channel_block: int = DEFAULT_CHANNEL_BLOCK) -> nn.Module:
    """A copy of ``detector`` (prepared with ``prepare_for_export``) whose
    backbone is in its export form for ``backend``; ``detector`` itself is
    left as it is (and returned as it is when there is nothing to change,
    e.g. when it is in that export form already). Module paths stay the same (``backbone.stem.conv`` ...),
    so the parameters keep their names in the exported graph."""
    backbone = getattr(detector, 'backbone', None)
    form = backbone_export_form(backbone, backend, channel_block) if backbone is not None \
        else None
    if form is None or form is backbone:
        return detector
    copied = copy.copy(detector)  # shallow: shares every module but the backbone
    copied._modules = dict(detector._modules)
    copied._modules['backbone'] = form
    return copied
