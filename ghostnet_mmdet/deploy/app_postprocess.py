"""The post-processing that an app runs after a mobile runtime (ncnn, ExecuTorch), in
NumPy alone: what a phone app ports to C++, Kotlin or Swift.

Mobile runtimes have no ONNX ``NonMaxSuppression``, ``TopK`` or dynamic
shapes to speak of, so the exported network (:mod:`ghostnet_mmdet.deploy.
export.app_network`) stops at every prior's decoded box and scores, and the rest
happens here, one image at a time, step for step as MMDetection's heads do
it (and as the ONNX graph does it, :mod:`ghostnet_mmdet.deploy.export.heads`), one
:class:`AppFamily` per head family:

``dense`` and ``gfl`` families (RetinaNet, SSDLite, RTMDet, LiteGFL):
    per level, the ``nms_pre`` best (prior, class) scores; those above
    ``score_thr``; their boxes clipped to the image.
``yolox``:
    per prior the best class, scored by class score times objectness; those
    at least ``score_thr``; no clip.
``yolov3``:
    (prior, class) pairs with objectness at least ``conf_thr`` and a class
    score above ``score_thr``; the ``nms_pre`` best class scores over all
    levels; scored by class score times objectness; no clip.

Then, for every family: boxes no wider and taller than ``min_bbox_size``
dropped, greedy NMS per class at ``iou_threshold``, and the
``max_per_img`` best.

``two_stage`` (Faster R-CNN) runs a second network in between
(:func:`two_stage_postprocess`): the RPN's proposals (per level the
``rpn_nms_pre`` best, clipped, NMS per level, the ``rpn_max_per_img``
best), RoIAlign of each proposal on the feature map its scale maps to
(:func:`roi_align`, mmcv's), the RoI head network, then class-specific
boxes decoded from the proposals and clipped, ``score_thr``, NMS per
class. Boxes stay in network-input pixels: dividing by the
resize factor is the caller's (as in MMDetection).

The network's outputs (``boxes [P, 4]`` x1 y1 x2 y2, ``scores [P, C]``,
and for YOLO heads ``objectness [P]``) and the settings (the file's
``meta.json``: ``postprocess`` with ``level_counts``, the number of
(prior) rows per level, in order) are all this needs.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS (torchvision's rule: a box is dropped when its IoU with a
    kept, higher-scoring box is above ``iou_threshold``); the kept indices,
    best first. Areas as MMDetection's ops compute them (no +1)."""
    order = np.argsort(-scores, kind='stable')
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        width = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]))
        height = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]))
        inter = width * height
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, np.finfo(np.float32).eps)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def class_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
              iou_threshold: float, max_per_img: int) -> np.ndarray:
    """NMS per class, then the ``max_per_img`` best of what is kept: the
    indices, best first."""
    kept = [index[nms(boxes[index], scores[index], iou_threshold)]
            for index in (np.flatnonzero(labels == label) for label in np.unique(labels))]
    if not kept:
        return np.zeros(0, dtype=np.int64)
    kept = np.concatenate(kept)
    return kept[np.argsort(-scores[kept], kind='stable')][:max_per_img]


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``values`` (all when ``k`` is not in
    ``1 .. len - 1``), largest first."""
    if 0 < k < values.size:
        index = np.argpartition(-values, k - 1)[:k]
        return index[np.argsort(-values[index], kind='stable')]
    return np.argsort(-values, kind='stable')


def _clip(boxes: np.ndarray, img_shape: Sequence[float]) -> np.ndarray:
    height, width = float(img_shape[0]), float(img_shape[1])
    return np.minimum(np.maximum(boxes, 0.0), np.array([width, height, width, height],
                                                       dtype=boxes.dtype))


def per_level_top(scores: np.ndarray, level_counts: Sequence[int], k: int,
                  score_thr: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Per level (``level_counts`` rows of ``scores [P, C]`` each), the
    ``k`` best (row, class) scores, those above ``score_thr`` (when given):
    their flat indices into ``scores`` and their levels."""
    classes = scores.shape[1]
    picked, levels, offset = [], [], 0
    for level, count in enumerate(level_counts):
        flat = scores[offset:offset + count].reshape(-1)
        index = _top(flat, k)
        if score_thr is not None:
            index = index[flat[index] > score_thr]
        picked.append(index + offset * classes)
        levels.append(np.full(len(index), level))
        offset += count
    return np.concatenate(picked), np.concatenate(levels)


def nms_detections(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                   iou_threshold: float, max_per_img: int, min_size: Optional[float] = None
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes no wider and taller than ``min_size`` dropped (when it is set,
    i.e. at least 0), NMS per label, the ``max_per_img`` best: ``dets [M,
    5]`` (x1, y1, x2, y2, score), best first, and ``labels [M]``."""
    if min_size is not None and min_size >= 0:
        large = (boxes[:, 2] - boxes[:, 0] > min_size) & (boxes[:, 3] - boxes[:, 1] > min_size)
        boxes, scores, labels = boxes[large], scores[large], labels[large]
    keep = class_nms(boxes, scores, labels, iou_threshold, max_per_img)
    dets = np.concatenate([boxes[keep], scores[keep, None]], axis=1).astype(np.float32)
    return dets, labels[keep].astype(np.int64)


class AppFamily:
    """One head family's post-processing in an app: :meth:`candidates` from
    the network's outputs, then (:meth:`detections`) small boxes dropped,
    NMS per class and the ``max_per_img`` best. Registered by its name
    (the ``family`` of the file's settings) with :func:`register_app_family`."""
    name = ''

    @staticmethod
    def arrays(outputs: Dict[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        boxes = np.asarray(outputs['boxes'], dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(outputs['scores'], dtype=np.float32).reshape(boxes.shape[0], -1)
        return boxes, scores

    def candidates(self, outputs: Dict[str, np.ndarray], settings: Dict,
                   img_shape: Sequence[float]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``boxes [K, 4]``, ``scores [K]`` and ``labels [K]`` before NMS."""
        raise NotImplementedError

    def detections(self, outputs: Dict[str, np.ndarray], settings: Dict,
                   img_shape: Sequence[float], roi_head=None) -> Tuple[np.ndarray, np.ndarray]:
        boxes, scores, labels = self.candidates(outputs, settings, img_shape)
        return nms_detections(boxes, scores, labels, settings['iou_threshold'],
                              settings['max_per_img'], settings.get('min_bbox_size', -1))


APP_FAMILIES: Dict[str, AppFamily] = {}


def register_app_family(cls):
    APP_FAMILIES[cls.name] = cls()
    return cls


@register_app_family
class DenseApp(AppFamily):
    """Per level the ``nms_pre`` best (prior, class) scores above
    ``score_thr``, their boxes clipped (unless the box coder does not)."""
    name = 'dense'

    def candidates(self, outputs, settings, img_shape):
        boxes, scores = self.arrays(outputs)
        classes = scores.shape[1]
        index, _ = per_level_top(scores, settings['level_counts'], settings['nms_pre'],
                                 settings['score_thr'])
        rows, labels = index // classes, index % classes
        chosen = _clip(boxes[rows], img_shape) if settings.get('clip', True) else boxes[rows]
        return chosen, scores.reshape(-1)[index], labels


@register_app_family
class GFLApp(DenseApp):
    """As ``dense`` (the network decoded the distributions)."""
    name = 'gfl'


@register_app_family
class YOLOXApp(AppFamily):
    """Per prior the best class, scored by class score times objectness,
    kept if at least ``score_thr``; no clip."""
    name = 'yolox'

    def candidates(self, outputs, settings, img_shape):
        boxes, scores = self.arrays(outputs)
        objectness = np.asarray(outputs['objectness'], dtype=np.float32).reshape(-1)
        labels = scores.argmax(axis=1)
        best = scores[np.arange(len(labels)), labels] * objectness
        keep = np.flatnonzero(best >= settings['score_thr'])
        return boxes[keep], best[keep], labels[keep]


@register_app_family
class YOLOV3App(AppFamily):
    """(prior, class) pairs with objectness at least ``conf_thr`` and a
    class score above ``score_thr``, the ``nms_pre`` best class scores over
    all levels, scored by class score times objectness; no clip."""
    name = 'yolov3'

    def candidates(self, outputs, settings, img_shape):
        boxes, scores = self.arrays(outputs)
        objectness = np.asarray(outputs['objectness'], dtype=np.float32).reshape(-1)
        classes = scores.shape[1]
        chosen = scores > settings['score_thr']
        if settings.get('conf_thr', -1) > 0:
            chosen &= (objectness >= settings['conf_thr'])[:, None]
        masked = np.where(chosen, scores, -1.0).reshape(-1)
        index = _top(masked, settings['nms_pre'])
        index = index[masked[index] >= 0]
        rows = index // classes
        return boxes[rows], masked[index] * objectness[rows], index % classes


def postprocess(outputs: Dict[str, np.ndarray], settings: Dict, img_shape: Sequence[float],
                roi_head=None) -> Tuple[np.ndarray, np.ndarray]:
    """One image's detections from the network's outputs.

    Args:
        outputs (dict): ``boxes [P, 4]``, ``scores [P, C]`` (and
            ``objectness [P]`` for the YOLO families; the feature maps for
            two-stage detectors), as the runtime gave them.
        settings (dict): The file's ``postprocess`` metadata.
        img_shape (sequence): The image's ``(height, width)`` inside the
            network input (boxes are clipped there).
        roi_head (callable, optional): Two-stage detectors' second network
            (see :func:`two_stage_postprocess`).

    Returns:
        tuple: ``dets [M, 5]`` (x1, y1, x2, y2, score), best first, and
        ``labels [M]``.
    """
    family = settings['family']
    if family not in APP_FAMILIES:
        raise ValueError(f'post-processing family must be one of {tuple(APP_FAMILIES)}, '
                         f'got {family!r}')
    return APP_FAMILIES[family].detections(outputs, settings, img_shape, roi_head)


def delta2bbox(rois: np.ndarray, deltas: np.ndarray, means: Sequence[float],
               stds: Sequence[float], wh_ratio_clip: float = 16 / 1000,
               ctr_clamp: Optional[float] = None) -> np.ndarray:
    """MMDetection's ``DeltaXYWHBBoxCoder.decode``: ``deltas [R, 4]`` from
    ``rois [R, 4]`` (x1 y1 x2 y2) to boxes; ``ctr_clamp``: the coder's
    ``add_ctr_clamp`` (the centre's shift clamped to +-ctr_clamp pixels, the
    size's log scale only from above), as the exported networks decode."""
    deltas = deltas * np.asarray(stds, np.float32) + np.asarray(means, np.float32)
    centre = (rois[:, :2] + rois[:, 2:]) * 0.5
    size = rois[:, 2:] - rois[:, :2]
    limit = abs(np.log(wh_ratio_clip))
    shift = deltas[:, :2] * size
    if ctr_clamp is not None:
        shift = np.clip(shift, -ctr_clamp, ctr_clamp)
        log_scale = np.minimum(deltas[:, 2:], limit)
    else:
        log_scale = np.clip(deltas[:, 2:], -limit, limit)
    centre = centre + shift
    half = size * np.exp(log_scale) * 0.5
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def _sample_weights(coords: np.ndarray, size: int) -> np.ndarray:
    """Bilinear weights ``[len(coords), size]`` of mmcv's RoIAlign sampling
    points along one axis (zero outside ``[-1, size]``, clamped at the
    edges)."""
    weights = np.zeros((len(coords), size), np.float32)
    inside = (coords >= -1.0) & (coords <= size)
    coords = np.maximum(coords, 0.0)
    low = coords.astype(np.int64)
    last = low >= size - 1
    low = np.where(last, size - 1, low)
    high = np.where(last, size - 1, low + 1)
    coords = np.where(last, low, coords)
    frac = coords - low
    rows = np.flatnonzero(inside)
    np.add.at(weights, (rows, low[rows]), (1.0 - frac[rows]).astype(np.float32))
    np.add.at(weights, (rows, high[rows]), frac[rows].astype(np.float32))
    return weights


def roi_align(feature: np.ndarray, rois: np.ndarray, spatial_scale: float,
              output_size: Sequence[int], sampling_ratio: int = 0,
              aligned: bool = True) -> np.ndarray:
    """mmcv's ``RoIAlign`` (average pooling) of ``rois [R, 4]`` (input
    pixels) on one feature map ``[C, H, W]``: ``[R, C, h, w]``. Each output
    cell averages bilinear samples on a grid of ``sampling_ratio`` (0: as
    many as the cell is wide and tall, rounded up) points per axis."""
    channels, height, width = feature.shape
    out_h, out_w = output_size
    pooled = np.zeros((len(rois), channels, out_h, out_w), np.float32)
    offset = 0.5 if aligned else 0.0
    for index, roi in enumerate(rois.astype(np.float32)):
        x1, y1, x2, y2 = roi * np.float32(spatial_scale) - np.float32(offset)
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        grid_h = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_h / out_h))
        grid_w = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_w / out_w))
        if grid_h <= 0 or grid_w <= 0:
            continue
        ys = y1 + (np.arange(out_h, dtype=np.float32)[:, None] * bin_h +
                   (np.arange(grid_h, dtype=np.float32)[None] + 0.5) * bin_h / grid_h)
        xs = x1 + (np.arange(out_w, dtype=np.float32)[:, None] * bin_w +
                   (np.arange(grid_w, dtype=np.float32)[None] + 0.5) * bin_w / grid_w)
        weight_y = _sample_weights(ys.reshape(-1), height).reshape(out_h, grid_h, height)
        weight_x = _sample_weights(xs.reshape(-1), width).reshape(out_w, grid_w, width)
        # Separable: the samples' sum per cell is (sum of y weights) F (sum
        # of x weights).
        pooled[index] = np.einsum('ph,chw,qw->cpq', weight_y.sum(1), feature,
                                  weight_x.sum(1), optimize=True) / (grid_h * grid_w)
    return pooled


def rpn_proposals(outputs: Dict[str, np.ndarray], settings: Dict,
                  img_shape: Sequence[float]) -> np.ndarray:
    """``RPNHead.predict``: per level the ``rpn_nms_pre`` best scores, their
    boxes clipped to the image, those wider and taller than
    ``rpn_min_bbox_size``, NMS per level, the ``rpn_max_per_img`` best:
    proposals ``[P, 4]``."""
    boxes = np.asarray(outputs['boxes'], dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(outputs['scores'], dtype=np.float32).reshape(-1, 1)
    # One score per row: a flat index is the row; the levels group the NMS.
    index, levels = per_level_top(scores, settings['level_counts'], settings['rpn_nms_pre'])
    proposals, _ = nms_detections(_clip(boxes[index], img_shape), scores[index, 0], levels,
                                  settings['rpn_iou_threshold'], settings['rpn_max_per_img'],
                                  settings.get('rpn_min_bbox_size', -1))
    return proposals[:, :4]


def roi_features(features: Sequence[np.ndarray], rois: np.ndarray, settings: Dict) -> np.ndarray:
    """``SingleRoIExtractor``: each RoI pooled from the level its scale
    maps to (``floor(log2(sqrt(w * h) / finest_scale))``, clamped):
    ``[R, C, h, w]``."""
    scale = np.sqrt((rois[:, 2] - rois[:, 0]) * (rois[:, 3] - rois[:, 1]))
    levels = np.floor(np.log2(scale / settings['finest_scale'] + 1e-6))
    levels = np.clip(levels, 0, len(features) - 1).astype(np.int64)
    channels = features[0].shape[0]
    pooled = np.zeros((len(rois), channels, *settings['roi_output_size']), np.float32)
    for level, (feature, stride) in enumerate(zip(features, settings['roi_strides'])):
        index = np.flatnonzero(levels == level)
        if len(index):
            pooled[index] = roi_align(feature, rois[index], 1.0 / stride,
                                      settings['roi_output_size'],
                                      settings['roi_sampling_ratio'], settings['roi_aligned'])
    return pooled


def two_stage_postprocess(outputs: Dict[str, np.ndarray], settings: Dict,
                          img_shape: Sequence[float], roi_head) -> Tuple[np.ndarray, np.ndarray]:
    """One image's detections of a two-stage detector: the RPN's proposals
    from the first network's ``outputs`` (``boxes``, ``scores`` and the
    feature maps ``feature0``...), their RoIAlign features, ``roi_head``
    (a function of ``[R, C * h * w]`` features that runs the second network:
    class probabilities ``[R, classes + 1]`` and box deltas), then
    class-specific boxes, ``score_thr``, NMS per class and the
    ``max_per_img`` best, as ``postprocess`` returns them."""
    proposals = rpn_proposals(outputs, settings, img_shape)
    if len(proposals) == 0:
        return np.zeros((0, 5), np.float32), np.zeros(0, np.int64)
    features = [np.asarray(outputs[f'feature{i}'], dtype=np.float32)
                for i in range(len(settings['roi_strides']))]
    pooled = roi_features(features, proposals, settings)
    probabilities, deltas = roi_head(pooled.reshape(len(proposals), -1))
    probabilities = np.asarray(probabilities, np.float32).reshape(len(proposals), -1)
    classes = probabilities.shape[1] - 1
    per_box = 1 if settings['reg_class_agnostic'] else classes
    deltas = np.asarray(deltas, np.float32).reshape(len(proposals) * per_box, 4)
    boxes = delta2bbox(np.repeat(proposals, per_box, axis=0), deltas, settings['rcnn_means'],
                       settings['rcnn_stds'], ctr_clamp=settings.get('rcnn_ctr_clamp')).reshape(len(proposals), per_box, 4)
    if settings.get('rcnn_clip', True):
        boxes = _clip(boxes.reshape(-1, 4), img_shape).reshape(len(proposals), per_box, 4)
    boxes = np.broadcast_to(boxes, (len(proposals), classes, 4)).reshape(-1, 4)
    scores = probabilities[:, :classes].reshape(-1)
    labels = np.tile(np.arange(classes), len(proposals))
    valid = np.flatnonzero(scores > settings['score_thr'])
    return nms_detections(boxes[valid], scores[valid], labels[valid], settings['iou_threshold'],
                          settings['max_per_img'])


@register_app_family
class TwoStageApp(AppFamily):
    """Faster R-CNN: :func:`two_stage_postprocess`, with the RoI head network."""
    name = 'two_stage'

    def detections(self, outputs, settings, img_shape, roi_head=None):
        if roi_head is None:
            raise ValueError('two-stage detectors run a second network: give its roi_head')
        return two_stage_postprocess(outputs, settings, img_shape, roi_head)
