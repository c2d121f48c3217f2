"""Export a detector to ncnn (through pnnx): the network up to every
prior's decoded box and scores, for phones.

ncnn has no ``NonMaxSuppression``, ``TopK`` or ``Gather`` of the kind the
ONNX graph ends with, and an app runs that part better in its own code: the
exported network (:class:`NetworkForNcnn`) takes the normalised image
(``in0``, 3 x H x W) and gives

- ``out0``: ``boxes [P, 4]`` (x1, y1, x2, y2 in input pixels, not clipped),
- ``out1``: ``scores [P, C]`` (after the head's sigmoid or softmax),
- ``out2``: ``objectness [P, 1]`` (YOLOX and YOLOv3 heads only),

for every prior ``P`` of every level in order (the priors are constants of
the file). A two-stage detector (Faster R-CNN) gives its RPN's boxes and
scores and then the feature maps that RoIAlign pools from (``out2``...);
its RoI head is a second network (``roi_head.ncnn.param``/``.bin``:
flattened RoI features in, class probabilities and box deltas out), which
the app runs on the proposals' RoIAlign features.
:mod:`ghostnet_mmdet.deploy.app_postprocess` does the rest (per-level top-k,
thresholds, clipping, NMS per class), as an app would; its settings travel
in ``meta.json`` beside the ncnn files.

The backbone goes in its deployed form (BatchNorm folded, branches merged)
and nothing more: the onnxruntime/OpenVINO export form (ghost halves apart,
channels padded to AVX blocks) is for those runtimes' blocked layouts; ncnn
packs channels by 4 (ARM NEON) or 8 (AVX) whatever the count, and there the
split form doubles the layers (GhostNet-1.0x's backbone: 218 plain, 412
split). Heads and necks have their BatchNorm folded by
``prepare_for_export(fuse=True)``.
"""
import copy
import json
import math
import os
import os.path as osp
import shutil
import subprocess
import tempfile
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .postprocess import ExportError, head_postprocess

# meta.json's "format": what NcnnDetector checks it reads.
FORMAT = 'ghostnet_mmdet-ncnn'
META_FILE = 'meta.json'
PARAM_FILE, BIN_FILE = 'model.ncnn.param', 'model.ncnn.bin'
INPUT_BLOB = 'in0'
# The outputs, in pnnx's blob names, per family.
OUTPUT_NAMES = {'dense': ('boxes', 'scores'), 'gfl': ('boxes', 'scores'),
                'yolox': ('boxes', 'scores', 'objectness'),
                'yolov3': ('boxes', 'scores', 'objectness'),
                # The RPN's boxes and scores, then the feature maps RoIAlign
                # pools from (feature0, feature1 ...).
                'two_stage': ('boxes', 'scores')}
# Two-stage detectors: the RoI head as a second network, pooled features in
# (``in0``, 1 x R x C*h*w), class probabilities and box deltas out.
ROI_PARAM_FILE, ROI_BIN_FILE = 'roi_head.ncnn.param', 'roi_head.ncnn.bin'
# The number of RoIs the RoI head is traced with (ncnn runs it on any).
ROI_TRACE_COUNT = 64
WH_RATIO_CLIP = 16 / 1000


def _rows(tensor: Tensor, width: int) -> Tensor:
    """``[1, C, H, W]`` -> ``[1, H * W * C / width, width]`` in MMDetection's
    order (position, prior, then the ``width`` values)."""
    return tensor.permute(0, 2, 3, 1).reshape(1, -1, width)


def decode_deltas(priors: Tensor, deltas: Tensor, coder) -> Tensor:
    """``DeltaXYWHBBoxCoder.decode`` (MMDetection's ``delta2bbox``) on
    ``[1, P, 4]`` tensors, in the operators ncnn has (slices along the last
    axis, elementwise arithmetic, exp, clamp)."""
    means = deltas.new_tensor(coder.means).reshape(1, 1, 4)
    stds = deltas.new_tensor(coder.stds).reshape(1, 1, 4)
    deltas = deltas * stds + means
    centre = (priors[..., :2] + priors[..., 2:]) * 0.5
    size = priors[..., 2:] - priors[..., :2]
    shift = deltas[..., :2] * size
    # decode()'s default wh_ratio_clip, 16 / 1000.
    limit = abs(math.log(WH_RATIO_CLIP))
    if coder.add_ctr_clamp:
        shift = shift.clamp(min=-coder.ctr_clamp, max=coder.ctr_clamp)
        log_scale = deltas[..., 2:].clamp(max=limit)
    else:
        log_scale = deltas[..., 2:].clamp(min=-limit, max=limit)
    centre = centre + shift
    half = size * log_scale.exp() * 0.5
    return torch.cat([centre - half, centre + half], dim=-1)


class NetworkForNcnn(nn.Module):
    """A detector as ncnn runs it: image in, every prior's decoded box and
    scores out (see the module's docstring). The priors (and strides) are
    computed once for ``input_size`` and kept as buffers, which pnnx writes
    into the file as constants."""

    def __init__(self, detector: nn.Module, input_size: Tuple[int, int]) -> None:
        super().__init__()
        self.detector = detector
        # Refuses unsupported heads and box coders (each family checks its own).
        self.postprocess = head_postprocess(detector)
        family = self.postprocess.family
        if family not in OUTPUT_NAMES:
            raise ExportError(f'ncnn export supports the head families {tuple(OUTPUT_NAMES)}, '
                              f'not {family!r}')
        self.family = family
        self.input_size = tuple(input_size)
        head = self.head
        with torch.no_grad():
            features = detector.extract_feat(torch.zeros(1, 3, *input_size))
            outputs = head(features)
        sizes = [tuple(level.shape[-2:]) for level in outputs[0]]
        device = outputs[0][0].device
        if family in ('dense', 'two_stage'):
            priors = head.prior_generator.grid_priors(sizes, device=device)
            self.level_counts = [len(level) for level in priors]
            self.register_buffer('priors', torch.cat(priors)[None], persistent=False)
        elif family == 'gfl':
            priors = head.prior_generator.grid_priors(sizes, device=device)
            self.level_counts = [len(level) for level in priors]
            strides = [level.new_full((len(level), 1), stride[0])
                       for level, stride in zip(priors, head.prior_generator.strides)]
            centres = torch.cat([head.anchor_center(level) for level in priors])
            self.register_buffer('centres', centres.repeat(1, 2)[None], persistent=False)
            self.register_buffer('strides', torch.cat(strides)[None], persistent=False)
            self.register_buffer('signs', torch.tensor([-1.0, -1.0, 1.0, 1.0]).reshape(1, 1, 4),
                                 persistent=False)
            self.register_buffer('project', head.integral.project.reshape(1, 1, 1, -1).clone(),
                                 persistent=False)
        elif family == 'yolox':
            priors = head.prior_generator.grid_priors(sizes, device=device, with_stride=True)
            self.level_counts = [len(level) for level in priors]
            priors = torch.cat(priors)
            self.register_buffer('centres', priors[None, :, :2], persistent=False)
            self.register_buffer('strides', priors[None, :, 2:], persistent=False)
        else:  # yolov3
            priors = head.prior_generator.grid_priors(sizes, device=device)
            self.level_counts = [len(level) for level in priors]
            strides = [level.new_full((len(level), 1), float(stride))
                       for level, stride in zip(priors, head.featmap_strides)]
            priors = torch.cat(priors)
            self.register_buffer('centres', ((priors[:, :2] + priors[:, 2:]) * 0.5)[None],
                                 persistent=False)
            self.register_buffer('sizes', (priors[:, 2:] - priors[:, :2])[None],
                                 persistent=False)
            self.register_buffer('strides', torch.cat(strides)[None], persistent=False)

    @property
    def head(self) -> nn.Module:
        # Not a second attribute: pnnx needs every module under one name.
        # Two-stage detectors: the RPN's head makes the network's boxes.
        if self.family == 'two_stage':
            return self.detector.rpn_head
        return self.detector.bbox_head

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        _reset_calls(self)
        features = self.detector.extract_feat(inputs)
        head = self.head
        if self.family in ('dense', 'two_stage'):
            cls_scores, bbox_preds = head(features)
            scores = torch.cat([_rows(s, head.cls_out_channels) for s in cls_scores], dim=1)
            # Softmax heads (SSD) put the background last and drop it.
            scores = scores.sigmoid() if head.use_sigmoid_cls else \
                scores.softmax(-1)[..., :head.num_classes]
            deltas = torch.cat([_rows(p, head.bbox_coder.encode_size) for p in bbox_preds], dim=1)
            if type(head.bbox_coder).__name__ == 'DeltaXYWHBBoxCoder':
                boxes = decode_deltas(self.priors, deltas, head.bbox_coder)
            else:  # DistancePointBBoxCoder: distances from the point
                points = self.priors[..., :2]
                boxes = torch.cat([points - deltas[..., :2], points + deltas[..., 2:]], dim=-1)
            if self.family == 'two_stage':
                extractor = self.detector.roi_head.bbox_roi_extractor
                return (boxes, scores, *features[:extractor.num_inputs])
            return boxes, scores
        if self.family == 'gfl':
            cls_scores, bbox_preds = head(features)
            bins = head.reg_max + 1
            scores = torch.cat([_rows(s, head.cls_out_channels) for s in cls_scores],
                               dim=1).sigmoid()
            distributions = torch.cat([_rows(p, 4 * bins) for p in bbox_preds], dim=1)
            distributions = distributions.reshape(1, -1, 4, bins).softmax(-1)
            distances = (distributions * self.project).sum(-1) * self.strides
            return self.centres + distances * self.signs, scores
        if self.family == 'yolox':
            cls_scores, bbox_preds, objectnesses = head(features)
            scores = torch.cat([_rows(s, head.num_classes) for s in cls_scores], dim=1).sigmoid()
            deltas = torch.cat([_rows(p, 4) for p in bbox_preds], dim=1)
            objectness = torch.cat([_rows(o, 1) for o in objectnesses], dim=1).sigmoid()
            centres = deltas[..., :2] * self.strides + self.centres
            half = deltas[..., 2:].exp() * self.strides * 0.5
            return torch.cat([centres - half, centres + half], dim=-1), scores, objectness
        (pred_maps, ) = head(features)
        preds = torch.cat([_rows(p, head.num_attrib) for p in pred_maps], dim=1)
        # YOLOBBoxCoder: the centre moves within its cell, the size scales
        # the anchor.
        centres = self.centres + (preds[..., :2].sigmoid() - 0.5) * self.strides
        half = self.sizes * preds[..., 2:4].exp() * 0.5
        boxes = torch.cat([centres - half, centres + half], dim=-1)
        return boxes, preds[..., 5:].sigmoid(), preds[..., 4:5].sigmoid()

    def settings(self) -> dict:
        """The app's post-processing settings: the ONNX file's, with each
        level's number of rows."""
        settings = self.postprocess.settings()
        # A box coder that does not clip (clip_border=False) is followed.
        clip = settings['clip'] and getattr(self.head.bbox_coder, 'clip_border', True)
        settings.update(clip=bool(clip), level_counts=list(self.level_counts),
                        outputs=list(self.output_names()))
        if self.family == 'two_stage':
            roi_head = self.detector.roi_head
            extractor, bbox_head = roi_head.bbox_roi_extractor, roi_head.bbox_head
            layer = extractor.roi_layers[0]
            settings.update(
                roi_strides=[int(stride) for stride in extractor.featmap_strides],
                finest_scale=float(extractor.finest_scale),
                roi_output_size=[int(side) for side in layer.output_size],
                roi_sampling_ratio=int(layer.sampling_ratio), roi_aligned=bool(layer.aligned),
                rcnn_means=[float(v) for v in bbox_head.bbox_coder.means],
                rcnn_stds=[float(v) for v in bbox_head.bbox_coder.stds],
                rcnn_clip=bool(getattr(bbox_head.bbox_coder, 'clip_border', True)),
                reg_class_agnostic=bool(bbox_head.reg_class_agnostic))
        return settings

    def output_names(self) -> Tuple[str, ...]:
        names = OUTPUT_NAMES[self.family]
        if self.family == 'two_stage':
            count = self.detector.roi_head.bbox_roi_extractor.num_inputs
            names = names + tuple(f'feature{i}' for i in range(count))
        return names


class RoIHeadForNcnn(nn.Module):
    """A two-stage detector's box head (MMDetection's ``ConvFCBBoxHead``
    with fully connected layers alone, e.g. ``Shared2FCBBoxHead``) as ncnn
    runs it: the RoIs' pooled features, flattened (``[1, R, C * h * w]``),
    in; class probabilities (softmax, the background last) and box deltas
    out. ``R`` may be any number at run time."""

    def __init__(self, roi_head: nn.Module) -> None:
        super().__init__()
        head = roi_head.bbox_head
        convs = [getattr(head, f'num_{part}_convs', 0) for part in ('shared', 'cls', 'reg')]
        if not hasattr(head, 'shared_fcs') or any(convs):
            raise ExportError(f'ncnn export of two-stage detectors supports box heads of fully '
                              f'connected layers (Shared2FCBBoxHead), not {type(head).__name__}')
        if roi_head.with_shared_head:
            raise ExportError('ncnn export of two-stage detectors does not support a shared '
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


def ncnn_form(detector: nn.Module) -> nn.Module:
    """The detector as ncnn gets it (a copy): a deployed GhostNet-family
    backbone as the network itself (no channel padding, no split halves)."""
    return copy.deepcopy(detector)


def _run_pnnx(traced_file: str, shape: Tuple[int, ...], work_dir: str,
              fp16: bool) -> Tuple[str, str]:
    """pnnx on a TorchScript file (one input of ``shape``): the ncnn
    ``.param`` and ``.bin`` paths."""
    import pnnx
    param, weights = osp.join(work_dir, PARAM_FILE), osp.join(work_dir, BIN_FILE)
    command = [pnnx.EXEC_PATH, traced_file,
               f'inputshape=[{",".join(str(side) for side in shape)}]f32',
               'device=cpu', f'fp16={int(fp16)}', f'ncnnparam={param}', f'ncnnbin={weights}',
               *(f'{key}={osp.join(work_dir, name)}' for key, name in (
                   ('pnnxparam', 'model.pnnx.param'), ('pnnxbin', 'model.pnnx.bin'),
                   ('pnnxpy', 'model_pnnx.py'), ('pnnxonnx', 'model.pnnx.onnx'),
                   ('ncnnpy', 'model_ncnn.py')))]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=work_dir)
    if result.returncode != 0 or not osp.isfile(param) or not osp.isfile(weights):
        tail = '\n'.join(result.stdout.strip().splitlines()[-10:])
        raise ExportError(f'pnnx could not convert the network (exit status {result.returncode}):'
                          f'\n{tail}')
    return param, weights


def layer_counts(param_file: str) -> Dict[str, int]:
    """Layers of an ncnn ``.param`` file by type (the ``Input`` included)."""
    counts: Dict[str, int] = {}
    with open(param_file) as f:
        lines = f.read().splitlines()
    for line in lines[2:]:
        if line.strip():
            kind = line.split()[0]
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def export_network_ncnn(network: nn.Module, out_dir: str, input_size: Tuple[int, ...],
                        fp16: bool = False,
                        files: Tuple[str, str] = (PARAM_FILE, BIN_FILE)) -> Tuple[str, str]:
    """Trace ``network`` (an image of ``input_size`` (height, width) in, or
    a tensor of the full shape ``input_size``; tensors out) and convert it
    with pnnx into ``out_dir/files`` (``model.ncnn.param`` and ``.bin``),
    float32 weights unless ``fp16``. Returns both paths."""
    try:
        import pnnx  # noqa: F401  (its converter binary)
    except ImportError:
        raise ExportError('ncnn export needs pnnx: pip install --no-deps pnnx==20261020 '
                          '(tools/setup_env.sh installs it)') from None
    os.makedirs(out_dir, exist_ok=True)
    network = network.eval()
    shape = tuple(input_size) if len(input_size) > 2 else (1, 3, *input_size)
    dummy = torch.rand(*shape)
    with tempfile.TemporaryDirectory() as work_dir, torch.no_grad():
        traced_file = osp.join(work_dir, 'model.pt')
        torch.jit.trace(network, dummy, check_trace=False).save(traced_file)
        param, weights = _run_pnnx(traced_file, shape, work_dir, fp16)
        shutil.copy(param, osp.join(out_dir, files[0]))
        shutil.copy(weights, osp.join(out_dir, files[1]))
    return osp.join(out_dir, files[0]), osp.join(out_dir, files[1])


def preprocessing(data_preprocessor) -> dict:
    """What an app does to an image before ``in0``: the config's mean, std,
    channel order and padding (after resizing as the test pipeline does)."""
    cfg = dict(data_preprocessor or {})
    return dict(mean=list(map(float, cfg.get('mean') or (0, 0, 0))),
                std=list(map(float, cfg.get('std') or (1, 1, 1))),
                bgr_to_rgb=bool(cfg.get('bgr_to_rgb', False)),
                pad_value=float(cfg.get('pad_value', 0)))


def export_ncnn(detector: nn.Module, out_dir: str, input_size: Tuple[int, int],
                classes: Optional[Sequence[str]] = None, metadata: Optional[dict] = None,
                fp16: bool = False, data_preprocessor: Optional[dict] = None) -> dict:
    """Export ``detector`` (prepared with ``prepare_for_export``) to
    ``out_dir``: ``model.ncnn.param``, ``model.ncnn.bin`` and ``meta.json``
    (classes, input size, preprocessing, the app's post-processing
    settings, the layers by type). ``fp16`` stores the weights in half
    precision (half the file; ncnn computes in float32 on x86).

    Returns:
        dict: What was written into ``meta.json``.
    """
    for side in input_size:
        if isinstance(side, bool) or not isinstance(side, int) or side < 32:
            raise ExportError(f'input size must be two ints >= 32, got {tuple(input_size)}')
    network = NetworkForNcnn(ncnn_form(detector), input_size)
    unshare_calls(network, torch.zeros(1, 3, *input_size))
    param, _ = export_network_ncnn(network, out_dir, input_size, fp16=fp16)
    layers = layer_counts(param)
    extra = {}
    if network.family == 'two_stage':
        roi_head = network.detector.roi_head
        extractor = roi_head.bbox_roi_extractor
        height, width = extractor.roi_layers[0].output_size
        shape = (1, ROI_TRACE_COUNT, extractor.out_channels * height * width)
        roi_param, _ = export_network_ncnn(RoIHeadForNcnn(roi_head), out_dir, shape, fp16=fp16,
                                           files=(ROI_PARAM_FILE, ROI_BIN_FILE))
        extra = dict(roi_head=dict(param=ROI_PARAM_FILE, bin=ROI_BIN_FILE, input=INPUT_BLOB,
                                   outputs=dict(scores='out0', deltas='out1'),
                                   layers=layer_counts(roi_param)))
    info = dict(format=FORMAT, classes=list(classes or []),
                input_size=list(input_size), input=INPUT_BLOB,
                outputs={name: f'out{i}' for i, name in enumerate(network.output_names())},
                postprocess=network.settings(), preprocessing=preprocessing(data_preprocessor),
                weights='fp16' if fp16 else 'fp32', backend='ncnn',
                layers=layers, **extra, **(metadata or {}))
    with open(osp.join(out_dir, META_FILE), 'w') as f:
        json.dump(info, f, indent=1)
    return info
