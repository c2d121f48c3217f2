"""Class-aware non-maximum suppression as the ONNX ``NonMaxSuppression``
operator, so that an exported detector keeps NMS inside its graph."""
import torch
from torchvision.ops import nms as torchvision_nms


class OnnxNonMaxSuppression(torch.autograd.Function):
    """``NonMaxSuppression`` (opset >= 10) for ``torch.onnx.export``'s
    TorchScript exporter; in eager mode the same selection with torchvision.

    Inputs are ONNX's: boxes ``[B, K, 4]`` (x1, y1, x2, y2; IoU does not care
    about the axis order), scores ``[B, C, K]``. Per image and class, boxes
    scoring above ``score_threshold`` are kept greedily in score order unless
    their IoU with a kept box exceeds ``iou_threshold``, at most
    ``max_per_class`` of them. Returns ``[S, 3]`` int64 rows ``(image,
    class, box)``, per image and class in descending score order.
    """

    @staticmethod
    def forward(ctx, boxes: torch.Tensor, scores: torch.Tensor, max_per_class: int,
                iou_threshold: float, score_threshold: float) -> torch.Tensor:
        selected = []
        for image in range(scores.shape[0]):
            for label in range(scores.shape[1]):
                candidates = torch.nonzero(scores[image, label] > score_threshold).flatten()
                keep = torchvision_nms(boxes[image, candidates], scores[image, label, candidates],
                                       iou_threshold)[:max_per_class]
                rows = torch.stack([torch.full_like(keep, image), torch.full_like(keep, label),
                                    candidates[keep]], dim=1)
                selected.append(rows)
        return torch.cat(selected) if selected else boxes.new_zeros((0, 3), dtype=torch.long)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou_threshold, score_threshold):
        def constant(value, dtype):
            return g.op('Constant', value_t=torch.tensor([value], dtype=dtype))

        return g.op('NonMaxSuppression', boxes, scores, constant(max_per_class, torch.long),
                    constant(iou_threshold, torch.float), constant(score_threshold, torch.float),
                    center_point_box_i=0)


def batched_class_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                      valid: torch.Tensor, num_classes: int, iou_threshold: float,
                      max_per_img: int):
    """NMS per image and class, then the ``max_per_img`` best detections.

    Args:
        boxes (Tensor): ``[B, K, 4]`` candidate boxes.
        scores (Tensor): ``[B, K]`` their scores (>= 0).
        labels (Tensor): ``[B, K]`` their classes.
        valid (Tensor): ``[B, K]`` which candidates take part.

    Returns:
        tuple: ``dets [B, M, 5]`` (x1, y1, x2, y2, score) and ``labels
        [B, M]`` with ``M = min(max_per_img, K)``, best first; rows past the
        detections of an image have score 0 and label -1.
    """
    # A Python int: the exporter takes a traced size here for a tensor.
    count = int(scores.shape[1])
    masked = torch.where(valid, scores, -1.0)
    classes = torch.arange(num_classes, device=labels.device)
    per_class = torch.where(labels[:, None, :] == classes[None, :, None], masked[:, None, :], -1.0)
    # At most max_per_img kept per class: greedy NMS keeps a class's boxes in
    # descending score order, and the max_per_img best over all classes
    # cannot take more than that class's first max_per_img, so the result is
    # the same; the runtime's NMS stops a class there instead of scanning on.
    selected = OnnxNonMaxSuppression.apply(boxes, per_class, min(count, max_per_img),
                                           iou_threshold, -0.5)
    image, box = selected[:, 0], selected[:, 2]
    kept = (scores * 0 - 1).index_put((image, box), masked[image, box])
    top_scores, top = kept.topk(min(max_per_img, count), dim=1)
    padding = top_scores < 0
    top_boxes = torch.gather(boxes, 1, top[..., None].expand(-1, -1, 4))
    dets = torch.cat([top_boxes, top_scores[..., None]], dim=2)
    dets = torch.where(padding[..., None], 0.0, dets)
    top_labels = torch.where(padding, -1, torch.gather(labels, 1, top))
    return dets, top_labels
