"""The post-processing that an app runs after a mobile runtime (ncnn), in
NumPy alone: what a phone app ports to C++, Kotlin or Swift.

Mobile runtimes have no ONNX ``NonMaxSuppression``, ``TopK`` or dynamic
shapes to speak of, so the exported network (:mod:`ghostnet_mmdet.deploy.
ncnn_export`) stops at every prior's decoded box and scores, and the rest
happens here, one image at a time, step for step as MMDetection's heads do
it (and as the ONNX graph does it, :mod:`ghostnet_mmdet.deploy.postprocess`):

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
``max_per_img`` best. Boxes stay in network-input pixels: dividing by the
resize factor is the caller's (as in MMDetection).

The network's outputs (``boxes [P, 4]`` x1 y1 x2 y2, ``scores [P, C]``,
and for YOLO heads ``objectness [P]``) and the settings (the file's
``meta.json``: ``postprocess`` with ``level_counts``, the number of
(prior) rows per level, in order) are all this needs.
"""
from typing import Dict, Sequence, Tuple

import numpy as np

APP_FAMILIES = ('dense', 'gfl', 'yolox', 'yolov3')


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


def candidates(outputs: Dict[str, np.ndarray], settings: Dict,
               img_shape: Sequence[float]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The family's candidates before NMS: ``boxes [K, 4]``, ``scores [K]``,
    ``labels [K]``."""
    family = settings['family']
    boxes = np.asarray(outputs['boxes'], dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(outputs['scores'], dtype=np.float32)
    scores = scores.reshape(boxes.shape[0], -1)
    classes = scores.shape[1]
    score_thr, nms_pre = settings['score_thr'], settings['nms_pre']
    if family in ('dense', 'gfl'):
        picked, offset = [], 0
        for count in settings['level_counts']:
            level = scores[offset:offset + count].reshape(-1)
            index = _top(level, nms_pre)
            index = index[level[index] > score_thr]
            picked.append(index + offset * classes)
            offset += count
        index = np.concatenate(picked)
        rows, labels = index // classes, index % classes
        chosen = _clip(boxes[rows], img_shape) if settings.get('clip', True) else boxes[rows]
        return chosen, scores.reshape(-1)[index], labels
    objectness = np.asarray(outputs['objectness'], dtype=np.float32).reshape(-1)
    if family == 'yolox':
        labels = scores.argmax(axis=1)
        best = scores[np.arange(len(labels)), labels] * objectness
        keep = np.flatnonzero(best >= score_thr)
        return boxes[keep], best[keep], labels[keep]
    if family == 'yolov3':
        chosen = scores > score_thr
        if settings.get('conf_thr', -1) > 0:
            chosen &= (objectness >= settings['conf_thr'])[:, None]
        masked = np.where(chosen, scores, -1.0).reshape(-1)
        index = _top(masked, nms_pre)
        index = index[masked[index] >= 0]
        rows = index // classes
        return boxes[rows], masked[index] * objectness[rows], index % classes
    raise ValueError(f'post-processing family must be one of {APP_FAMILIES}, got {family!r}')


def postprocess(outputs: Dict[str, np.ndarray], settings: Dict, img_shape: Sequence[float]
                ) -> Tuple[np.ndarray, np.ndarray]:
    """One image's detections from the network's outputs.

    Args:
        outputs (dict): ``boxes [P, 4]``, ``scores [P, C]`` (and
            ``objectness [P]`` for the YOLO families), as the runtime gave
            them.
        settings (dict): The file's ``postprocess`` metadata.
        img_shape (sequence): The image's ``(height, width)`` inside the
            network input (boxes are clipped there).

    Returns:
        tuple: ``dets [M, 5]`` (x1, y1, x2, y2, score), best first, and
        ``labels [M]``.
    """
    boxes, scores, labels = candidates(outputs, settings, img_shape)
    min_size = settings.get('min_bbox_size', -1)
    if min_size is not None and min_size >= 0:
        large = (boxes[:, 2] - boxes[:, 0] > min_size) & (boxes[:, 3] - boxes[:, 1] > min_size)
        boxes, scores, labels = boxes[large], scores[large], labels[large]
    keep = class_nms(boxes, scores, labels, settings['iou_threshold'], settings['max_per_img'])
    dets = np.concatenate([boxes[keep], scores[keep, None]], axis=1).astype(np.float32)
    return dets, labels[keep].astype(np.int64)
