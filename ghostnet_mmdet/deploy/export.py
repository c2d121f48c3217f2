"""Export a whole detector to ONNX: a normalised image tensor in, boxes,
scores and labels out, with box decoding and NMS inside the graph
(mmdeploy's convention: input ``input``, outputs ``dets`` ``[N, M, 5]`` and
``labels`` ``[N, M]``).

The graph reproduces MMDetection's own post-processing step for step, so
that onnxruntime gives the detections of ``model.predict`` box for box:

- RetinaNet-style heads (sigmoid classification, anchors, delta boxes): per
  level the ``nms_pre`` best (anchor, class) scores, kept if above
  ``score_thr``; decoded with the head's own box coder and clipped to the
  input; boxes not wider and taller than ``min_bbox_size`` dropped;
- YOLOX: objectness times the best class score, kept if at least
  ``score_thr``; boxes decoded from the priors;
- then NMS per class (ONNX ``NonMaxSuppression``) and the ``max_per_img``
  best.

Boxes are in input-tensor coordinates; dividing by the resize factor is the
runner's (:class:`~ghostnet_mmdet.deploy.OnnxRuntimeDetector`) job, as in
MMDetection. Exported with torch's TorchScript exporter (``dynamo=False``):
it takes the NMS operator from a ``symbolic`` function, while the dynamo
exporter would need it as a custom op with an onnxscript translation, and
it traces MMDetection's heads without graph breaks.
"""
import json
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn

from .nms import batched_class_nms

SUPPORTED_HEADS = ('RetinaHead', 'YOLOXHead')


class ExportError(ValueError):
    """A detector or option the exporter does not support; says which."""


def _head_kind(head) -> str:
    names = [cls.__name__ for cls in type(head).__mro__]
    if 'YOLOXHead' in names:
        return 'yolox'
    if 'AnchorHead' in names and getattr(head, 'use_sigmoid_cls', False) and \
            type(head.bbox_coder).__name__ == 'DeltaXYWHBBoxCoder':
        return 'anchor'
    raise ExportError(
        f'ONNX export supports {", ".join(SUPPORTED_HEADS)} (and other sigmoid anchor heads '
        f'with DeltaXYWHBBoxCoder), not {type(head).__name__}')


class DetectorForExport(nn.Module):
    """A single-stage MMDetection detector with its post-processing, as one
    traceable module for a fixed input size.

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
        if getattr(detector, 'bbox_head', None) is None:
            raise ExportError(
                f'ONNX export supports single-stage detectors ({", ".join(SUPPORTED_HEADS)}); '
                f'{type(detector).__name__} has no bbox_head (two-stage detectors are not '
                'supported)')
        self.head = detector.bbox_head
        self.kind = _head_kind(self.head)
        self.input_size = tuple(input_size)
        cfg = self.head.test_cfg
        self.score_thr = float(cfg.get('score_thr', 0.0))
        self.nms_pre = int(cfg.get('nms_pre', -1))
        self.min_bbox_size = cfg.get('min_bbox_size', -1)
        nms = cfg.get('nms') or {}
        if nms.get('type', 'nms') != 'nms':
            raise ExportError(f"ONNX export supports test_cfg.nms type 'nms', not {nms['type']!r}")
        self.iou_threshold = float(nms.get('iou_threshold', 0.5))
        self.max_per_img = int(max_per_img or cfg.get('max_per_img') or 1000)
        self.num_classes = self.head.num_classes

    def settings(self) -> dict:
        return dict(head=type(self.head).__name__, score_thr=self.score_thr,
                    nms_pre=self.nms_pre, min_bbox_size=self.min_bbox_size,
                    iou_threshold=self.iou_threshold, max_per_img=self.max_per_img)

    def forward(self, inputs: torch.Tensor):
        features = self.detector.extract_feat(inputs)
        outputs = self.head(features)
        if self.kind == 'anchor':
            boxes, scores, labels, valid = self._anchor_candidates(*outputs, inputs.shape[0])
        else:
            boxes, scores, labels, valid = self._yolox_candidates(*outputs, inputs.shape[0])
        return batched_class_nms(boxes, scores, labels, valid, self.num_classes,
                                 self.iou_threshold, self.max_per_img)

    def _anchor_candidates(self, cls_scores, bbox_preds, batch):
        head = self.head
        sizes = [score.shape[-2:] for score in cls_scores]
        anchors = head.prior_generator.grid_priors(sizes, device=cls_scores[0].device)
        levels = []
        for cls_score, bbox_pred, level_anchors in zip(cls_scores, bbox_preds, anchors):
            # (anchor, class) pairs in MMDetection's order: position, anchor, class.
            scores = cls_score.permute(0, 2, 3, 1).reshape(batch, -1).sigmoid()
            deltas = bbox_pred.permute(0, 2, 3, 1).reshape(batch, -1, 4)
            count = scores.shape[1]
            if 0 < self.nms_pre < count:
                scores, index = scores.topk(self.nms_pre, dim=1)
            else:
                index = torch.arange(count, device=scores.device).expand(batch, count)
            anchor_index = torch.div(index, self.num_classes, rounding_mode='floor')
            labels = index - anchor_index * self.num_classes
            deltas = torch.gather(deltas, 1, anchor_index[..., None].expand(-1, -1, 4))
            # max_shape=None: MMDetection 3.3.0's delta2bbox clips through
            # mmdet.core.export (gone since 3.0) while exporting; the clip
            # follows here, as its eager path does it.
            boxes = head.bbox_coder.decode(level_anchors[anchor_index].reshape(-1, 4),
                                           deltas.reshape(-1, 4), max_shape=None)
            if getattr(head.bbox_coder, 'clip_border', True):
                boxes = self._clip(boxes)
            levels.append((boxes.reshape(batch, -1, 4), scores, labels))
        boxes, scores, labels = (torch.cat(parts, dim=1) for parts in zip(*levels))
        valid = scores > self.score_thr
        if self.min_bbox_size is not None and self.min_bbox_size >= 0:
            valid = valid & (boxes[..., 2] - boxes[..., 0] > self.min_bbox_size) & \
                (boxes[..., 3] - boxes[..., 1] > self.min_bbox_size)
        return boxes, scores, labels, valid

    def _clip(self, boxes: torch.Tensor) -> torch.Tensor:
        """delta2bbox's clip to the input: the same two ``torch.where``."""
        height, width = self.input_size
        limit = boxes.new_tensor([width, height, width, height])
        boxes = torch.where(boxes < 0, boxes.new_tensor(0.), boxes)
        return torch.where(boxes > limit, limit, boxes)

    def _yolox_candidates(self, cls_scores, bbox_preds, objectnesses, batch):
        head = self.head
        sizes = [score.shape[-2:] for score in cls_scores]
        priors = torch.cat(head.prior_generator.grid_priors(
            sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device, with_stride=True))
        class_scores = torch.cat([s.permute(0, 2, 3, 1).reshape(batch, -1, self.num_classes)
                                  for s in cls_scores], dim=1).sigmoid()
        deltas = torch.cat([p.permute(0, 2, 3, 1).reshape(batch, -1, 4) for p in bbox_preds], dim=1)
        objectness = torch.cat([o.permute(0, 2, 3, 1).reshape(batch, -1)
                                for o in objectnesses], dim=1).sigmoid()
        boxes = head._bbox_decode(priors, deltas)
        best, labels = class_scores.max(dim=2)
        valid = objectness * best >= self.score_thr
        return boxes, best * objectness, labels, valid


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
                         opset: int = 17) -> nn.Module:
    """Export ``backbone`` alone (input ``input``, one output per feature
    map) with the TorchScript exporter, as the benchmarks and the layout
    checks use it; returns the wrapper that was exported."""
    wrapper = BackboneForExport(backbone).eval()
    with torch.no_grad():
        torch.onnx.export(wrapper, (torch.zeros(1, 3, *input_size), ), path, dynamo=False,
                          opset_version=opset, input_names=['input'], do_constant_folding=True)
    return wrapper


def prepare_for_export(detector: nn.Module, fuse: bool = False) -> nn.Module:
    """Eval mode, and with ``fuse`` the backbone in deploy form
    (``switch_to_deploy``: BatchNorm folded, re-parameterised branches
    merged) and every other BatchNorm folded into its convolution."""
    detector.eval()
    if fuse:
        backbone = getattr(detector, 'backbone', None)
        if hasattr(backbone, 'switch_to_deploy'):
            backbone.switch_to_deploy()
        fuse_conv_bn(detector)
    return detector


def export_onnx(detector: nn.Module, path: str, input_size: Tuple[int, int],
                batch_size: int = 1, dynamic_batch: bool = False, opset: int = 17,
                max_per_img: Optional[int] = None, classes: Optional[Sequence[str]] = None,
                metadata: Optional[dict] = None) -> dict:
    """Export ``detector`` (prepared with :func:`prepare_for_export`) to
    ``path`` and check the file with ``onnx.checker``.

    Returns:
        dict: What was written into the model's metadata (``classes``,
        ``input_size``, the post-processing settings, ``metadata``).
    """
    import onnx
    if opset < 11:  # checked before anything is written
        raise ExportError(f'--opset must be at least 11 (NonMaxSuppression with boxes per '
                          f'image, TopK with a k input), got {opset}')
    wrapper = DetectorForExport(detector, input_size, max_per_img).eval()
    dummy = torch.zeros(batch_size, 3, *input_size)
    dynamic_axes = {name: {0: 'batch'} for name in ('input', 'dets', 'labels')} \
        if dynamic_batch else None
    with torch.no_grad():
        torch.onnx.export(wrapper, (dummy, ), path, dynamo=False, opset_version=opset,
                          input_names=['input'], output_names=['dets', 'labels'],
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
    model = onnx.load(path)
    info = dict(classes=list(classes or []), input_size=list(input_size),
                dynamic_batch=dynamic_batch, postprocess=wrapper.settings(), **(metadata or {}))
    for key, value in info.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return info
