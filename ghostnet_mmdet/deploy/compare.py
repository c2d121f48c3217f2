"""Detections of two backends, compared box for box (the same precision)
or as sets (another precision: INT8 against float32)."""
from typing import List, Optional

import torch


def match_detections(expected, actual, score_atol: float = 1e-5, box_rtol: float = 1e-5,
                     box_atol: float = 1e-4) -> Optional[str]:
    """A one-to-one matching of two ``InstanceData`` of detections: every
    pair has the same label, scores within ``score_atol`` and boxes within
    ``box_rtol``/``box_atol`` (pixels). Scores that differ by less than float
    rounding (boxes over the same padding, say) may come in either order, so
    pairs are not taken by position.

    Returns:
        str or None: What does not match, or None when all do.
    """
    if len(expected) != len(actual):
        return f'{len(expected)} detections against {len(actual)}'
    unused = list(range(len(expected)))
    for index, (box, score, label) in enumerate(zip(actual.bboxes, actual.scores, actual.labels)):
        match = next((j for j in unused
                      if expected.labels[j] == label
                      and abs(float(expected.scores[j] - score)) <= score_atol
                      and torch.allclose(expected.bboxes[j], box, rtol=box_rtol, atol=box_atol)),
                     None)
        if match is None:
            return (f'detection {index} (label {int(label)}, score {float(score):.6f}, box '
                    f'{[round(float(v), 2) for v in box]}) has no counterpart')
        unused.remove(match)
    return None


def lost_detections(expected, actual, score_thr: float, score_atol: float = 0.1,
                    iou_thr: float = 0.5) -> List[str]:
    """The detections of ``expected`` (e.g. float32) with a score of at
    least ``score_thr`` that ``actual`` (e.g. INT8) does not keep: kept
    means an ``actual`` detection of the same label whose box overlaps by
    IoU >= ``iou_thr`` and whose score is within ``score_atol``. A set
    comparison, for detections that are only close (quantized, or another
    precision): one-to-one order and near-equal scores do not matter.

    Returns:
        list[str]: One line per lost detection (empty: none lost).
    """
    from mmdet.structures.bbox import bbox_overlaps
    lost = []
    chosen = expected.scores >= score_thr
    for box, score, label in zip(expected.bboxes[chosen], expected.scores[chosen],
                                 expected.labels[chosen]):
        same = actual.labels == label
        if same.any():
            overlaps = bbox_overlaps(box[None], actual.bboxes[same])[0]
            close = (actual.scores[same] - score).abs() <= score_atol
            if (close & (overlaps >= iou_thr)).any():
                continue
            best = int(overlaps.argmax())
            nearest = (f'best overlap {float(overlaps[best]):.2f} with score '
                       f'{float(actual.scores[same][best]):.3f}')
        else:
            nearest = 'no detection of that label'
        lost.append(f'label {int(label)}, score {float(score):.3f}, box '
                    f'{[round(float(v), 1) for v in box]}: {nearest}')
    return lost
