"""Export a whole detector to ONNX: a normalised image tensor and each
image's size in, boxes, scores and labels out, with box decoding and NMS
inside the graph (mmdeploy's convention for the image and the outputs:
input ``input``, outputs ``dets`` ``[N, M, 5]`` and ``labels`` ``[N, M]``;
plus ``img_shape`` ``[N, 2]``, each image's height and width inside the
padded input, where MMDetection clips boxes).

The graph reproduces MMDetection's own post-processing step for step (see
:mod:`ghostnet_mmdet.deploy.export.heads` for each head family), so that the
runtimes give the detections of ``model.predict`` box for box.

Boxes are in input-tensor coordinates; dividing by the resize factor is the
runner's (:class:`~ghostnet_mmdet.deploy.OnnxRuntimeDetector`) job, as in
MMDetection. Exported with torch's TorchScript exporter (``dynamo=False``):
it takes the NMS and RoIAlign operators from ``symbolic`` functions, while
the dynamo exporter would need them as custom ops with onnxscript
translations, and it traces MMDetection's heads without graph breaks.
"""
import copy
import json
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn

from ..contract import INPUT_NAMES, OUTPUT_NAMES, ExportError
from .ghostnet_form import DEFAULT_CHANNEL_BLOCK, backbone_export_form, to_export_form
from .heads import ROI_ALIGN_OPSET, TwoStagePostprocess, head_postprocess


class DetectorForExport(nn.Module):
    """An MMDetection detector with its post-processing, as one traceable
    module: ``forward(inputs, img_shape)`` gives ``(dets, labels)``.

    Args:
        detector (nn.Module): The detector, in eval mode.
        input_size (tuple[int, int]): ``(height, width)`` of the input.
        max_per_img (int, optional): Detections kept per image; the test
            config's ``max_per_img`` by default (YOLOX configs have none:
            then 1000).
    """

    def __init__(self, detector: nn.Module, input_size: Tuple[int, int],
                 max_per_img: Optional[int] = None) -> None:
        super().__init__()
        self.detector = detector
        self.postprocess = head_postprocess(detector, max_per_img)
        self.input_size = tuple(input_size)

    def settings(self) -> dict:
        return self.postprocess.settings()

    def forward(self, inputs: torch.Tensor, img_shape: torch.Tensor):
        return self.postprocess(self.detector.extract_feat(inputs), img_shape)


def default_input_size(cfg):
    """The square that every image of the config's test pipeline fits in:
    the side of its Resize, rounded up to the preprocessor's
    ``pad_size_divisor``."""
    from mmdet.utils import get_test_pipeline_cfg
    for step in get_test_pipeline_cfg(cfg):
        if step['type'] == 'Resize' and 'scale' in step:
            scale = step['scale']
            side = max(scale) if isinstance(scale, (list, tuple)) else scale
            divisor = cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1) or 1
            side = -(-side // divisor) * divisor
            return side, side
    raise ExportError('the test pipeline has no Resize with a scale; give --shape HEIGHT WIDTH')


class BackboneForExport(nn.Module):
    """A backbone alone, for export: its feature maps as the graph's outputs
    (its parameters named ``backbone.<path>`` in the graph)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor):
        return tuple(self.backbone(x))


def export_backbone_onnx(backbone: nn.Module, path: str, input_size: Tuple[int, int],
                         opset: int = 17, backend: str = 'onnxruntime',
                         channel_block: int = DEFAULT_CHANNEL_BLOCK) -> nn.Module:
    """Export ``backbone`` alone (input ``input``, one output per feature
    map) in its export form for ``backend``
    (:func:`~ghostnet_mmdet.deploy.ghostnet_form.backbone_export_form`) with
    the TorchScript exporter, as the benchmarks and the layout checks use
    it; returns the wrapper that was exported."""
    wrapper = BackboneForExport(backbone_export_form(backbone, backend, channel_block)).eval()
    with torch.no_grad():
        torch.onnx.export(wrapper, (torch.zeros(1, 3, *input_size), ), path, dynamo=False,
                          opset_version=opset, input_names=['input'], do_constant_folding=True)
    return wrapper


def prepare_for_export(detector: nn.Module, fuse: bool = False) -> nn.Module:
    """Eval mode, and with ``fuse`` the backbone in deploy form
    (``switch_to_deploy``: BatchNorm folded, re-parameterised branches
    merged) and every other BatchNorm folded into its convolution. The
    runtime's export form is made from this by :func:`export_onnx`."""
    detector.eval()
    if fuse:
        backbone = getattr(detector, 'backbone', None)
        if hasattr(backbone, 'switch_to_deploy'):
            backbone.switch_to_deploy()
        unshare_modules(detector)
        fuse_conv_bn(detector)
    return detector


def unshare_modules(module: nn.Module, _seen: Optional[set] = None) -> None:
    """Give every submodule reached under a second name a copy of its own.
    RTMDet's head shares its convolutions across levels, each level with its
    own BatchNorm: folding those into one shared convolution would fold
    every level's statistics into the same weights."""
    seen = set() if _seen is None else _seen
    for name, child in module.named_children():
        if id(child) in seen:
            child = copy.deepcopy(child)
            setattr(module, name, child)
        seen.add(id(child))
        unshare_modules(child, seen)


def constant_arrays_to_initializers(model, min_size: int = 16) -> None:
    """Move ``Constant`` nodes of more than ``min_size`` values (the priors
    that the post-processing keeps as constants) into the graph's
    initializers, where weights live: NNCF's graph reader, for one, takes the
    data of a ``Gather`` from a constant to be an initializer."""
    import numpy as np
    from onnx import numpy_helper
    graph = model.graph
    for node in list(graph.node):
        if node.op_type != 'Constant' or len(node.attribute) != 1 or \
                node.attribute[0].name != 'value':
            continue
        array = numpy_helper.to_array(node.attribute[0].t)
        if np.size(array) <= min_size:
            continue
        graph.initializer.append(numpy_helper.from_array(array, node.output[0]))
        graph.node.remove(node)


def export_onnx(detector: nn.Module, path: str, input_size: Tuple[int, int],
                batch_size: int = 1, dynamic_batch: bool = False, opset: int = 17,
                max_per_img: Optional[int] = None, classes: Optional[Sequence[str]] = None,
                metadata: Optional[dict] = None, backend: str = 'onnxruntime',
                channel_block: int = DEFAULT_CHANNEL_BLOCK) -> dict:
    """Export ``detector`` (prepared with :func:`prepare_for_export`, or
    already in its export form) to ``path`` in its export form for
    ``backend``, the runtime the file is made for
    (:func:`~ghostnet_mmdet.deploy.ghostnet_form.to_export_form`, on a
    copy), and check the file with ``onnx.checker``.

    Returns:
        dict: What was written into the model's metadata (``classes``,
        ``input_size``, the post-processing settings, ``metadata``).
    """
    import onnx
    # Checked before anything is written.
    if opset < 11:
        raise ExportError(f'--opset must be at least 11 (NonMaxSuppression with boxes per '
                          f'image, TopK with a k input), got {opset}')
    detector = to_export_form(detector, backend, channel_block)
    wrapper = DetectorForExport(detector, input_size, max_per_img).eval()
    if isinstance(wrapper.postprocess, TwoStagePostprocess) and opset < ROI_ALIGN_OPSET:
        raise ExportError(f'--opset must be at least {ROI_ALIGN_OPSET} for two-stage detectors '
                          f'(RoiAlign with half_pixel coordinates), got {opset}')
    dummy = torch.zeros(batch_size, 3, *input_size)
    img_shape = torch.tensor([list(input_size)] * batch_size, dtype=torch.float32)
    dynamic_axes = {name: {0: 'batch'} for name in INPUT_NAMES + OUTPUT_NAMES} \
        if dynamic_batch else None
    with torch.no_grad():
        # One call before tracing: the post-processing keeps what depends on
        # the input size alone (priors) as constants of the graph.
        wrapper(dummy, img_shape)
        torch.onnx.export(wrapper, (dummy, img_shape), path, dynamo=False, opset_version=opset,
                          input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
    model = onnx.load(path)
    constant_arrays_to_initializers(model)
    info = dict(classes=list(classes or []), input_size=list(input_size),
                dynamic_batch=dynamic_batch, postprocess=wrapper.settings(), backend=backend,
                **(metadata or {}))
    for key, value in info.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return info
