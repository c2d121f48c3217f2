"""The network that app runtimes (ncnn, ExecuTorch) run: the detector up to
every prior's decoded box and scores, and the ``meta.json`` that goes with it.

Phone runtimes have no ONNX ``NonMaxSuppression``, ``TopK`` or ``Gather`` of
the kind the ONNX graph ends with, and an app runs that part better in its
own code: :class:`NetworkForApp` takes the normalised image (1 x 3 x H x W)
and gives, for every prior ``P`` of every level in order (the priors are
constants of the file), the outputs its head family names
(:meth:`~.heads.HeadPostprocess.app_output_names`):

- ``boxes [P, 4]`` (x1, y1, x2, y2 in input pixels, not clipped),
- ``scores [P, C]`` (after the head's sigmoid or softmax),
- ``objectness [P, 1]`` (YOLOX and YOLOv3 heads only),
- a two-stage detector (Faster R-CNN): its RPN's boxes and scores and then
  the feature maps that RoIAlign pools from (``feature0``...); its RoI head
  is a second network (:class:`RoIHeadForApp`: flattened RoI features in,
  class probabilities and box deltas out).

:mod:`ghostnet_mmdet.deploy.app_postprocess` does the rest (per-level top-k,
thresholds, clipping, NMS per class), with the settings of ``meta.json``.
Each head family says where its network stops (:mod:`.heads`); this module
has no family of its own.
"""
import copy
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ..contract import META_FILE, ExportError
from .heads import head_postprocess


class NetworkForApp(nn.Module):
    """A detector as app runtimes run it: image in, every prior's decoded
    box and scores out (see the module's docstring). The family's constants
    (priors, strides ...) are computed once for ``input_size`` and kept as
    buffers, which the runtimes' files hold as constants."""

    def __init__(self, detector: nn.Module, input_size: Tuple[int, int]) -> None:
        super().__init__()
        self.detector = detector
        # Refuses unsupported heads and box coders (each family checks its own).
        self.family = head_postprocess(detector)
        self.input_size = tuple(input_size)
        with torch.no_grad():
            features = detector.extract_feat(torch.zeros(1, 3, *input_size))
            outputs = self.family.app_head(features)
        sizes = [tuple(level.shape[-2:]) for level in outputs[0]]
        constants, self.level_counts = self.family.app_constants(sizes, outputs[0][0].device)
        for name, value in constants.items():
            # Each its own storage (slices of one prior tensor would share
            # theirs, which torch.export cannot lift as separate constants).
            self.register_buffer(name, value.clone().contiguous(), persistent=False)

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        _reset_calls(self)
        return self.family.app_forward(self, self.detector.extract_feat(inputs))

    def output_names(self) -> Tuple[str, ...]:
        return self.family.app_output_names()

    def settings(self) -> dict:
        """The app's post-processing settings: the family's, with each
        level's number of rows and the output names."""
        return dict(self.family.app_settings(), level_counts=list(self.level_counts),
                    outputs=list(self.output_names()))


class RoIHeadForApp(nn.Module):
    """A two-stage detector's box head (MMDetection's ``ConvFCBBoxHead``
    with fully connected layers alone, e.g. ``Shared2FCBBoxHead``) as app
    runtimes run it: the RoIs' pooled features, flattened (``[1, R, C * h * w]``),
    in; class probabilities (softmax, the background last) and box deltas
    out. ``R`` may be any number at run time."""

    def __init__(self, roi_head: nn.Module) -> None:
        super().__init__()
        head = roi_head.bbox_head
        convs = [getattr(head, f'num_{part}_convs', 0) for part in ('shared', 'cls', 'reg')]
        if not hasattr(head, 'shared_fcs') or any(convs):
            raise ExportError(f'app export of two-stage detectors supports box heads of fully '
                              f'connected layers (Shared2FCBBoxHead), not {type(head).__name__}')
        if roi_head.with_shared_head:
            raise ExportError('app export of two-stage detectors does not support a shared '
                              'RoI head (ResNet C4)')
        self.bbox_head = head

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        head = self.bbox_head
        for fc in head.shared_fcs:
            x = head.relu(fc(x))
        x_cls, x_reg = x, x
        for fc in head.cls_fcs:
            x_cls = head.relu(fc(x_cls))
        for fc in head.reg_fcs:
            x_reg = head.relu(fc(x_reg))
        return head.fc_cls(x_cls).softmax(-1), head.fc_reg(x_reg)


class PerCall(nn.Module):
    """A module that the network calls several times per image (a head's
    convolutions shared by every level), as one copy per call, in call
    order: ncnn runs a convolution whose weights are its own, not a weight
    blob shared by several (pnnx leaves those as ``nn.Conv2d`` ops that
    ncnn cannot load)."""

    def __init__(self, module: nn.Module, calls: int) -> None:
        super().__init__()
        self.copies = nn.ModuleList(copy.deepcopy(module) for _ in range(calls))
        self.calls = 0

    def forward(self, *args, **kwargs):
        module = self.copies[self.calls % len(self.copies)]
        self.calls += 1
        return module(*args, **kwargs)


def unshare_calls(network: nn.Module, inputs: Tensor) -> nn.Module:
    """Give each call of a parameter-holding leaf module that ``network``
    calls more than once per forward its own copy (:class:`PerCall`), in
    place; the numbers stay the same."""
    calls: Dict[str, int] = {}
    hooks = []
    for name, module in network.named_modules():
        if name and not list(module.children()) and list(module.parameters(recurse=False)):
            hooks.append(module.register_forward_pre_hook(
                lambda _m, _a, name=name: calls.__setitem__(name, calls.get(name, 0) + 1)))
    with torch.no_grad():
        network(inputs)
    for hook in hooks:
        hook.remove()
    for name, count in calls.items():
        if count > 1:
            parent_name, _, attr = name.rpartition('.')
            parent = network.get_submodule(parent_name)
            setattr(parent, attr, PerCall(getattr(parent, attr), count))
    return network


def _reset_calls(network: nn.Module) -> None:
    for module in network.modules():
        if isinstance(module, PerCall):
            module.calls = 0


def app_network(detector: nn.Module, input_size: Tuple[int, int]) -> NetworkForApp:
    """The app network of ``detector`` (prepared with ``prepare_for_export``;
    a copy, so the detector is left as it is): the backbone in its deployed
    form and nothing more (the onnxruntime/OpenVINO export form, ghost halves
    apart and channels padded to AVX blocks, is for those runtimes' blocked
    layouts; ncnn and XNNPACK pack channels whatever the count)."""
    for side in input_size:
        if isinstance(side, bool) or not isinstance(side, int) or side < 32:
            raise ExportError(f'input size must be two ints >= 32, got {tuple(input_size)}')
    detector = copy.deepcopy(detector)
    # The runtimes choose their own memory layout: a channels-last backbone
    # would hand ExecuTorch's portable kernels (GroupNorm) NHWC tensors
    # they refuse.
    if getattr(getattr(detector, 'backbone', None), 'channels_last', False):
        detector.backbone.channels_last = False
    return NetworkForApp(detector, input_size).eval()


def preprocessing(data_preprocessor) -> dict:
    """What an app does to an image before ``in0``: the config's mean, std,
    channel order and padding (after resizing as the test pipeline does)."""
    cfg = dict(data_preprocessor or {})
    return dict(mean=list(map(float, cfg.get('mean') or (0, 0, 0))),
                std=list(map(float, cfg.get('std') or (1, 1, 1))),
                bgr_to_rgb=bool(cfg.get('bgr_to_rgb', False)),
                pad_value=float(cfg.get('pad_value', 0)))


def app_metadata(network: NetworkForApp, fmt: str, backend: str,
                 output_names: Sequence[str], classes: Optional[Sequence[str]] = None,
                 data_preprocessor: Optional[dict] = None, **extra) -> dict:
    """``meta.json`` of an app export (see
    :mod:`ghostnet_mmdet.deploy.contract`): ``outputs`` maps the family's
    output names to ``output_names``, the runtime's own."""
    return dict(format=fmt, classes=list(classes or []), input_size=list(network.input_size),
                outputs=dict(zip(network.output_names(), output_names)),
                postprocess=network.settings(), preprocessing=preprocessing(data_preprocessor),
                backend=backend, **extra)


def write_metadata(out_dir: str, info: dict) -> None:
    import json
    import os.path as osp
    with open(osp.join(out_dir, META_FILE), 'w') as f:
        json.dump(info, f, indent=1)
