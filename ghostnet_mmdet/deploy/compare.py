"""Detections of two backends, compared box for box."""
from typing import Optional

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
