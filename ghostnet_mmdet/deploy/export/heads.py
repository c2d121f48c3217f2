"""MMDetection's test-time post-processing, head family by head family, as
traceable tensor code for :class:`~ghostnet_mmdet.deploy.DetectorForExport`.

Each family reproduces its head's ``predict_by_feat`` step for step, so that
an exported detector gives ``model.predict``'s detections box for box:

- ``dense`` (RetinaNet, SSDLite, RTMDet and other heads that predict per
  prior, without score factors): per level the ``nms_pre`` best (prior,
  class) scores (sigmoid, or softmax without the background column), kept
  if above ``score_thr``; decoded with the head's own box coder (deltas from
  anchors, or distances from points); clipped to the image;
- ``gfl`` (GFLHead, LiteGFLHead): as ``dense``, each box side the integral
  of its predicted distance distribution times the stride, from the
  prior's centre;
- ``yolox``: objectness times the best class score, kept if at least
  ``score_thr``; boxes decoded from the priors (YOLOX does not clip);
- ``yolov3``: priors with objectness at least ``conf_thr`` and a class score
  above ``score_thr``, the ``nms_pre`` best class scores over all levels,
  scored by class score times objectness; YOLO box coder (no clip);
- ``two_stage`` (Faster R-CNN): the RPN as a dense head whose "classes" are
  its levels (MMDetection's RPN suppresses per level), its ``max_per_img``
  proposals, RoIAlign on the level that each proposal's scale maps to, the
  RoI head, class-specific boxes decoded from the proposals and clipped;
- then boxes no wider and taller than ``min_bbox_size`` dropped, NMS per
  class and the ``max_per_img`` best (:func:`batched_class_nms`).

Boxes are clipped at each image's own height and width (the graph's
``img_shape`` input), where MMDetection clips them, not at the padded
input. They stay in input-tensor coordinates: dividing by the resize
factor is the runner's job, as in MMDetection.
"""
import math
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Type

import torch
import torch.nn as nn
from torch import Tensor

from mmdet.models.dense_heads import AnchorHead, GFLHead, RPNHead, YOLOV3Head, YOLOXHead
from mmdet.models.roi_heads import StandardRoIHead

from ..contract import ExportError
from .nms import batched_class_nms


SUPPORTED = ('RetinaHead', 'SSDHead', 'RTMDetHead (RTMDetSepBNHead)', 'GFLHead (LiteGFLHead)',
             'YOLOXHead', 'YOLOV3Head', 'Faster R-CNN (RPNHead + StandardRoIHead)')
# How the runner takes boxes back to the original image, per head family
# (written into the file's metadata): MMDetection's heads multiply by the
# inverse scale factor, YOLOXHead divides by it (the same up to rounding).
RESCALE_RULES = ('multiply', 'divide')
# The head families, in the order they are tried (register_family).
FAMILIES: List[Type['HeadPostprocess']] = []


def register_family(family: Type['HeadPostprocess']) -> Type['HeadPostprocess']:
    """Register a post-processing class for the head classes it names in
    ``heads`` (matched with ``isinstance``, subclasses included)."""
    if family.rescale not in RESCALE_RULES:
        raise ValueError(f'{family.__name__}.rescale must be one of {RESCALE_RULES}')
    FAMILIES.append(family)
    return family


def _plain(value):
    """``value`` (nested tuples of sizes and other keys) with every size a
    Python int."""
    if isinstance(value, (tuple, list, torch.Size)):
        return tuple(_plain(item) for item in value)
    return int(value) if isinstance(value, (int, Tensor)) else value


def clip_to_image(boxes: Tensor, img_shape: Tensor) -> Tensor:
    """``boxes [B, K, 4]`` clipped at each image's ``(height, width)``
    (``img_shape [B, 2]``), as MMDetection's box coders clamp them."""
    height, width = img_shape[:, 0:1], img_shape[:, 1:2]
    limit = torch.stack([width, height, width, height], dim=-1)
    return torch.minimum(torch.maximum(boxes, boxes.new_zeros(())), limit)


def _nms_settings(cfg, what: str) -> float:
    nms = cfg.get('nms') or {}
    if nms.get('type', 'nms') != 'nms':
        raise ExportError(f"ONNX export supports {what}nms type 'nms', not {nms['type']!r}")
    return float(nms.get('iou_threshold', 0.5))


def _check_decoder(head, coders: Sequence[str]) -> None:
    name = type(head.bbox_coder).__name__
    if name not in coders:
        raise ExportError(f'ONNX export of {type(head).__name__} supports the box coders '
                          f'{", ".join(coders)}, not {name}')


def dense_candidates(head, cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor],
                     img_shape: Tensor, nms_pre: int, sigmoid: bool, clip: bool,
                     priors: Optional[Sequence[Tensor]] = None):
    """``BaseDenseHead._predict_by_feat_single`` (and RPNHead's) for a batch:
    per level the ``nms_pre`` best (prior, class) scores, their boxes decoded
    by the head's coder and, with ``clip``, clipped to the image.

    Returns:
        tuple: ``boxes [B, K, 4]``, ``scores [B, K]``, ``labels [B, K]`` and
        ``levels [B, K]`` (the level of each candidate).
    """
    batch = cls_scores[0].shape[0]
    if priors is None:
        sizes = [score.shape[-2:] for score in cls_scores]
        priors = head.prior_generator.grid_priors(sizes, dtype=cls_scores[0].dtype,
                                                  device=cls_scores[0].device)
    encode_size = head.bbox_coder.encode_size
    num_classes = head.cls_out_channels if sigmoid else head.cls_out_channels - 1
    parts = []
    for level, (cls_score, bbox_pred, level_priors) in enumerate(zip(cls_scores, bbox_preds,
                                                                    priors)):
        # (prior, class) pairs in MMDetection's order: position, prior, class.
        scores = cls_score.permute(0, 2, 3, 1).reshape(batch, -1, head.cls_out_channels)
        # Softmax heads (SSD) put the background last and drop it.
        scores = scores.sigmoid() if sigmoid else scores.softmax(-1)[..., :-1]
        scores = scores.reshape(batch, -1)
        deltas = bbox_pred.permute(0, 2, 3, 1).reshape(batch, -1, encode_size)
        count = scores.shape[1]
        if 0 < nms_pre < count:
            # The best nms_pre of all, then the score threshold: the same set
            # as MMDetection's threshold first, then the best nms_pre.
            scores, index = scores.topk(nms_pre, dim=1)
        else:
            index = torch.arange(count, device=scores.device).expand(batch, count)
        # Indices are not negative: truncation is floor, and exports as one
        # integer Div (floor adds six operators of sign correction).
        prior_index = torch.div(index, num_classes, rounding_mode='trunc')
        labels = index - prior_index * num_classes
        deltas = torch.gather(deltas, 1, prior_index[..., None].expand(-1, -1, encode_size))
        # max_shape=None: MMDetection 3.3.0's coders clip through
        # mmdet.core.export (gone since 3.0) while exporting; the clip to
        # each image follows here.
        boxes = head.bbox_coder.decode(
            level_priors[prior_index].reshape(-1, level_priors.shape[-1]),
            deltas.reshape(-1, encode_size), max_shape=None).reshape(batch, -1, 4)
        if clip and getattr(head.bbox_coder, 'clip_border', True):
            boxes = clip_to_image(boxes, img_shape)
        parts.append((boxes, scores, labels, torch.full_like(labels, level)))
    return tuple(torch.cat(part, dim=1) for part in zip(*parts))


def _rows(tensor: Tensor, width: int) -> Tensor:
    """``[1, C, H, W]`` -> ``[1, H * W * C / width, width]`` in MMDetection's
    order (position, prior, then the ``width`` values)."""
    return tensor.permute(0, 2, 3, 1).reshape(1, -1, width)


WH_RATIO_CLIP = 16 / 1000


def decode_deltas(priors: Tensor, deltas: Tensor, coder) -> Tensor:
    """``DeltaXYWHBBoxCoder.decode`` (MMDetection's ``delta2bbox``) on
    ``[1, P, 4]`` tensors, in the operators every app runtime has (slices
    along the last axis, elementwise arithmetic, exp, clamp)."""
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


def dense_app_constants(head, sizes, device) -> Tuple[Dict[str, Tensor], List[int]]:
    priors = head.prior_generator.grid_priors(sizes, device=device)
    return dict(priors=torch.cat(priors)[None]), [len(level) for level in priors]


def dense_app_outputs(head, network, features) -> Tuple[Tensor, Tensor]:
    """Every prior's decoded box and scores of a dense head (RetinaNet,
    SSD, RTMDet, the RPN)."""
    cls_scores, bbox_preds = head(features)
    scores = torch.cat([_rows(s, head.cls_out_channels) for s in cls_scores], dim=1)
    # Softmax heads (SSD) put the background last and drop it.
    scores = scores.sigmoid() if head.use_sigmoid_cls else \
        scores.softmax(-1)[..., :head.num_classes]
    deltas = torch.cat([_rows(p, head.bbox_coder.encode_size) for p in bbox_preds], dim=1)
    if type(head.bbox_coder).__name__ == 'DeltaXYWHBBoxCoder':
        return decode_deltas(network.priors, deltas, head.bbox_coder), scores
    # DistancePointBBoxCoder: distances from the point.
    points = network.priors[..., :2]
    return torch.cat([points - deltas[..., :2], points + deltas[..., 2:]], dim=-1), scores


def keep_large_enough(boxes: Tensor, valid: Tensor, min_bbox_size) -> Tensor:
    """``_bbox_post_process``'s filter: boxes wider and taller than
    ``min_bbox_size`` (when it is set, i.e. at least 0)."""
    if min_bbox_size is None or min_bbox_size < 0:
        return valid
    return valid & (boxes[..., 2] - boxes[..., 0] > min_bbox_size) & \
        (boxes[..., 3] - boxes[..., 1] > min_bbox_size)


class HeadPostprocess:
    """The post-processing of one head family, from the neck's features to
    ``dets [B, M, 5]`` and ``labels [B, M]``; not an ``nn.Module``, so that
    the detector's parameters keep their names in the exported graph.

    A family names the head classes it exports (``heads``), whether its
    boxes are clipped at each image (``clip``) and how the runner scales
    them back to the original image (``rescale``); :meth:`handles` may
    look closer.
    """
    family = ''
    heads: Tuple[type, ...] = ()
    clip = True
    rescale = 'multiply'

    @classmethod
    def handles(cls, detector: nn.Module) -> bool:
        return isinstance(getattr(detector, 'bbox_head', None), cls.heads)

    def __init__(self, detector: nn.Module, max_per_img: Optional[int]) -> None:
        self.head = detector.bbox_head
        cfg = self.head.test_cfg
        self.score_thr = float(cfg.get('score_thr', 0.0))
        self.nms_pre = int(cfg.get('nms_pre', -1))
        self.min_bbox_size = cfg.get('min_bbox_size', -1)
        self.iou_threshold = _nms_settings(cfg, 'test_cfg.')
        self.max_per_img = int(max_per_img or cfg.get('max_per_img') or 1000)
        self.num_classes = self.head.num_classes

    def settings(self) -> dict:
        return dict(head=type(self.head).__name__, family=self.family, clip=self.clip,
                    rescale=self.rescale, score_thr=self.score_thr,
                    nms_pre=self.nms_pre, min_bbox_size=self.min_bbox_size,
                    iou_threshold=self.iou_threshold, max_per_img=self.max_per_img)

    def candidates(self, features, img_shape: Tensor):
        """``boxes [B, K, 4]``, ``scores [B, K]``, ``labels [B, K]`` and
        ``valid [B, K]`` (which take part in NMS)."""
        raise NotImplementedError

    def constant(self, key, make):
        """``make()`` (tensors that depend on the feature map sizes alone,
        e.g. the priors), kept from the first call for ``key``: the exporter
        calls the detector once before tracing (:func:`export_onnx`), so that
        the graph holds them as constants instead of the operators that make
        them (grids, tiles, centres: about 15 per level)."""
        cache = self.__dict__.setdefault('_constants', {})
        with warnings.catch_warnings():
            # While tracing, sizes are traced values: as plain ints they key
            # the cache (the graph does not depend on them).
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            key = _plain(key)
        if key not in cache:
            cache[key] = make()
        return cache[key]

    # What an app runtime's network (export.app_network) gives: it stops at
    # every prior's decoded box and scores, in operators every runtime has;
    # the app's NumPy post-processing (deploy.app_postprocess) does the rest.
    app_outputs: Tuple[str, ...] = ('boxes', 'scores')

    @property
    def app_head(self) -> nn.Module:
        """The head whose outputs the app network decodes."""
        return self.head

    def app_constants(self, sizes, device) -> Tuple[Dict[str, Tensor], List[int]]:
        """The app network's constants for feature maps of ``sizes`` (kept
        as buffers: the runtimes' files hold them as constants) and each
        level's number of rows."""
        raise NotImplementedError

    def app_forward(self, network: nn.Module, features) -> Tuple[Tensor, ...]:
        """The app network's outputs (:attr:`app_outputs`, batch 1) from
        the neck's features; ``network`` holds the constants."""
        raise NotImplementedError

    def app_output_names(self) -> Tuple[str, ...]:
        return self.app_outputs

    def app_settings(self) -> dict:
        """The settings the app's post-processing reads (``meta.json``'s
        ``postprocess``, without the level counts)."""
        settings = self.settings()
        # A box coder that does not clip (clip_border=False) is followed.
        settings['clip'] = bool(settings['clip'] and
                                getattr(self.app_head.bbox_coder, 'clip_border', True))
        return settings

    def __call__(self, features, img_shape: Tensor):
        boxes, scores, labels, valid = self.candidates(features, img_shape)
        valid = keep_large_enough(boxes, valid, self.min_bbox_size)
        return batched_class_nms(boxes, scores, labels, valid, self.num_classes,
                                 self.iou_threshold, self.max_per_img)


@register_family
class DensePostprocess(HeadPostprocess):
    """RetinaHead, SSDHead, RTMDetHead (anchor heads that predict with
    BaseDenseHead's own post-processing)."""
    family = 'dense'
    heads = (AnchorHead, )

    @classmethod
    def handles(cls, detector):
        return super().handles(detector) and _base_dense_post_processing(detector.bbox_head)
    CODERS = ('DeltaXYWHBBoxCoder', 'DistancePointBBoxCoder')

    def __init__(self, detector, max_per_img):
        super().__init__(detector, max_per_img)
        _check_decoder(self.head, self.CODERS)
        if getattr(self.head.loss_cls, 'custom_cls_channels', False):
            raise ExportError(f'ONNX export does not support {type(self.head.loss_cls).__name__}'
                              "'s own score activation")

    def candidates(self, features, img_shape):
        outputs = self.head(features)
        if len(outputs) != 2:
            raise ExportError(f'ONNX export of dense heads supports classification and box '
                              f'outputs alone; {type(self.head).__name__} also predicts score '
                              'factors (centerness or objectness)')
        cls_scores, bbox_preds = outputs
        sizes = tuple(tuple(score.shape[-2:]) for score in cls_scores)
        priors = self.constant((sizes, cls_scores[0].dtype),
                               lambda: self.head.prior_generator.grid_priors(
                                   sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device))
        boxes, scores, labels, _ = dense_candidates(
            self.head, cls_scores, bbox_preds, img_shape, self.nms_pre,
            sigmoid=self.head.use_sigmoid_cls, clip=True, priors=priors)
        return boxes, scores, labels, scores > self.score_thr

    def app_constants(self, sizes, device):
        return dense_app_constants(self.head, sizes, device)

    def app_forward(self, network, features):
        return dense_app_outputs(self.head, network, features)


@register_family
class GFLPostprocess(HeadPostprocess):
    """GFLHead and its subclasses (LiteGFLHead): as ``dense``, but each box
    side is the integral of its predicted distribution over ``0..reg_max``
    strides, measured from the prior's centre; clipped to the image."""
    family = 'gfl'
    heads = (GFLHead, )

    @classmethod
    def handles(cls, detector):
        head = getattr(detector, 'bbox_head', None)
        return isinstance(head, cls.heads) and \
            type(head)._predict_by_feat_single is GFLHead._predict_by_feat_single and \
            _base_dense_post_processing(head, ('predict_by_feat', '_bbox_post_process'))

    def __init__(self, detector, max_per_img):
        super().__init__(detector, max_per_img)
        _check_decoder(self.head, ('DistancePointBBoxCoder', ))

    def candidates(self, features, img_shape):
        # Every prior's box first, in one pass over all levels (the integral
        # of each side's distribution times its level's stride, from the
        # prior's centre, clipped: as GFLHead._predict_by_feat_single does per
        # level), then per level the nms_pre best (prior, class) scores pick
        # theirs. The same boxes as decoding after the pick, in a graph with
        # one decode instead of one per level.
        head = self.head
        cls_scores, bbox_preds = head(features)
        batch, classes = cls_scores[0].shape[0], head.cls_out_channels
        sizes = tuple(tuple(score.shape[-2:]) for score in cls_scores)

        centres, strides, counts = self.constant(
            (sizes, cls_scores[0].dtype),
            lambda: self.centres_and_strides(sizes, cls_scores[0].dtype, cls_scores[0].device))
        bins = 4 * (head.reg_max + 1)
        distributions = torch.cat([pred.permute(0, 2, 3, 1).reshape(batch, -1, bins)
                                   for pred in bbox_preds], dim=1)
        distances = head.integral(distributions.reshape(-1, bins)).reshape(batch, -1, 4) * strides
        boxes = clip_to_image(torch.cat([centres - distances[..., :2],
                                         centres + distances[..., 2:]], dim=-1), img_shape)
        parts, offset = [], 0
        for cls_score, level_count in zip(cls_scores, counts):
            scores = cls_score.permute(0, 2, 3, 1).reshape(batch, -1).sigmoid()
            count = scores.shape[1]
            if 0 < self.nms_pre < count:
                scores, index = scores.topk(self.nms_pre, dim=1)
            else:
                index = torch.arange(count, device=scores.device).expand(batch, count)
            prior_index = torch.div(index, classes, rounding_mode='trunc')
            parts.append((scores, index - prior_index * classes,
                          prior_index + offset if offset else prior_index))
            offset += level_count
        scores, labels, prior_index = (torch.cat(part, dim=1) for part in zip(*parts))
        boxes = torch.gather(boxes, 1, prior_index[..., None].expand(-1, -1, 4))
        return boxes, scores, labels, scores > self.score_thr

    def centres_and_strides(self, sizes, dtype=torch.float32, device=None):
        """Every prior's centre ``[P, 2]`` and stride ``[P, 1]`` over all
        levels, and each level's number of priors."""
        head = self.head
        priors = head.prior_generator.grid_priors(sizes, dtype=dtype, device=device)
        strides = [level.new_full((len(level), 1), stride[0])
                   for level, stride in zip(priors, head.prior_generator.strides)]
        return (torch.cat([head.anchor_center(level) for level in priors]),
                torch.cat(strides), [len(level) for level in priors])

    def app_constants(self, sizes, device):
        centres, strides, counts = self.centres_and_strides(sizes, device=device)
        return dict(centres=centres.repeat(1, 2)[None], strides=strides[None],
                    signs=torch.tensor([-1.0, -1.0, 1.0, 1.0]).reshape(1, 1, 4),
                    project=self.head.integral.project.reshape(1, 1, 1, -1).clone()), counts

    def app_forward(self, network, features):
        # The integral as a softmax and a weighted sum over the last axis:
        # operators every app runtime has.
        head = self.head
        cls_scores, bbox_preds = head(features)
        bins = head.reg_max + 1
        scores = torch.cat([_rows(s, head.cls_out_channels) for s in cls_scores],
                           dim=1).sigmoid()
        distributions = torch.cat([_rows(p, 4 * bins) for p in bbox_preds], dim=1)
        distributions = distributions.reshape(1, -1, 4, bins).softmax(-1)
        distances = (distributions * network.project).sum(-1) * network.strides
        return network.centres + distances * network.signs, scores


@register_family
class YOLOXPostprocess(HeadPostprocess):
    """YOLOXHead: objectness times the best class score, no clip."""
    family = 'yolox'
    heads = (YOLOXHead, )
    clip = False
    rescale = 'divide'

    def candidates(self, features, img_shape):
        cls_scores, bbox_preds, objectnesses = self.head(features)
        head, batch = self.head, cls_scores[0].shape[0]
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
        return boxes, best * objectness, labels, objectness * best >= self.score_thr

    app_outputs = ('boxes', 'scores', 'objectness')

    def app_constants(self, sizes, device):
        priors = self.head.prior_generator.grid_priors(sizes, device=device, with_stride=True)
        counts = [len(level) for level in priors]
        priors = torch.cat(priors)
        return dict(centres=priors[None, :, :2], strides=priors[None, :, 2:]), counts

    def app_forward(self, network, features):
        head = self.head
        cls_scores, bbox_preds, objectnesses = head(features)
        scores = torch.cat([_rows(s, head.num_classes) for s in cls_scores], dim=1).sigmoid()
        deltas = torch.cat([_rows(p, 4) for p in bbox_preds], dim=1)
        objectness = torch.cat([_rows(o, 1) for o in objectnesses], dim=1).sigmoid()
        centres = deltas[..., :2] * network.strides + network.centres
        half = deltas[..., 2:].exp() * network.strides * 0.5
        return torch.cat([centres - half, centres + half], dim=-1), scores, objectness


@register_family
class YOLOV3Postprocess(HeadPostprocess):
    """YOLOV3Head.predict_by_feat: ``conf_thr`` on objectness, ``score_thr``
    and ``nms_pre`` on class scores over all levels, then class score times
    objectness; YOLO box coder, no clip."""
    family = 'yolov3'
    heads = (YOLOV3Head, )
    clip = False

    def __init__(self, detector, max_per_img):
        super().__init__(detector, max_per_img)
        _check_decoder(self.head, ('YOLOBBoxCoder', ))
        self.conf_thr = float(self.head.test_cfg.get('conf_thr', -1))

    def settings(self) -> dict:
        return dict(super().settings(), conf_thr=self.conf_thr)

    def candidates(self, features, img_shape):
        (pred_maps, ) = self.head(features)
        head, batch = self.head, pred_maps[0].shape[0]
        sizes = [pred.shape[-2:] for pred in pred_maps]
        anchors = torch.cat(head.prior_generator.grid_priors(sizes, device=pred_maps[0].device))
        preds = torch.cat([pred.permute(0, 2, 3, 1).reshape(batch, -1, head.num_attrib)
                           for pred in pred_maps], dim=1)
        strides = torch.cat([preds.new_full((size[0] * size[1] * head.num_base_priors, ), stride)
                             for size, stride in zip(sizes, head.featmap_strides)])
        offsets = torch.cat([preds[..., :2].sigmoid(), preds[..., 2:4]], dim=-1)
        boxes = head.bbox_coder.decode(anchors, offsets, strides[:, None])
        objectness = preds[..., 4].sigmoid()
        class_scores = preds[..., 5:].sigmoid()
        chosen = class_scores > self.score_thr
        if self.conf_thr > 0:
            chosen = chosen & (objectness >= self.conf_thr)[..., None]
        masked = torch.where(chosen, class_scores, -1.0).reshape(batch, -1)
        count = masked.shape[1]
        if 0 < self.nms_pre < count:
            masked, index = masked.topk(self.nms_pre, dim=1)
        else:
            index = torch.arange(count, device=masked.device).expand(batch, count)
        prior_index = torch.div(index, self.num_classes, rounding_mode='trunc')
        labels = index - prior_index * self.num_classes
        boxes = torch.gather(boxes, 1, prior_index[..., None].expand(-1, -1, 4))
        scores = masked * torch.gather(objectness, 1, prior_index)
        return boxes, scores, labels, masked >= 0

    app_outputs = ('boxes', 'scores', 'objectness')

    def app_constants(self, sizes, device):
        head = self.head
        priors = head.prior_generator.grid_priors(sizes, device=device)
        counts = [len(level) for level in priors]
        strides = [level.new_full((len(level), 1), float(stride))
                   for level, stride in zip(priors, head.featmap_strides)]
        priors = torch.cat(priors)
        return dict(centres=((priors[:, :2] + priors[:, 2:]) * 0.5)[None],
                    sizes=(priors[:, 2:] - priors[:, :2])[None],
                    strides=torch.cat(strides)[None]), counts

    def app_forward(self, network, features):
        head = self.head
        (pred_maps, ) = head(features)
        preds = torch.cat([_rows(p, head.num_attrib) for p in pred_maps], dim=1)
        # YOLOBBoxCoder: the centre moves within its cell, the size scales
        # the anchor.
        centres = network.centres + (preds[..., :2].sigmoid() - 0.5) * network.strides
        half = network.sizes * preds[..., 2:4].exp() * 0.5
        boxes = torch.cat([centres - half, centres + half], dim=-1)
        return boxes, preds[..., 5:].sigmoid(), preds[..., 4:5].sigmoid()


class OnnxRoiAlign(torch.autograd.Function):
    """ONNX ``RoiAlign`` (opset 16) for the TorchScript exporter. While
    exporting only the output's shape matters; :func:`roi_align` computes
    the values with mmcv's op otherwise (an autograd function that calls
    another inside its forward breaks the exporter's graph passes)."""

    @staticmethod
    def forward(ctx, features: Tensor, boxes: Tensor, batch_indices: Tensor, height: int,
                width: int, sampling_ratio: int, spatial_scale: float, aligned: bool) -> Tensor:
        return features.new_zeros(boxes.shape[0], features.shape[1], height, width)

    @staticmethod
    def symbolic(g, features, boxes, batch_indices, height, width, sampling_ratio,
                 spatial_scale, aligned):
        # mmcv's aligned=True is ONNX's half_pixel mode (no 1x1 minimum
        # size); sampling_ratio 0 is adaptive in both.
        return g.op('RoiAlign', features, boxes, batch_indices, mode_s='avg',
                    output_height_i=height, output_width_i=width,
                    sampling_ratio_i=max(0, sampling_ratio), spatial_scale_f=spatial_scale,
                    coordinate_transformation_mode_s='half_pixel' if aligned else
                    'output_half_pixel')


def roi_align(features: Tensor, boxes: Tensor, batch_indices: Tensor, layer) -> Tensor:
    """``layer`` (the RoI extractor's mmcv ``RoIAlign``) on ``boxes [R, 4]``
    of the images ``batch_indices [R]``; ONNX ``RoiAlign`` when exporting."""
    if layer.pool_mode != 'avg':
        raise ExportError(f"ONNX export supports RoIAlign pool_mode 'avg', not {layer.pool_mode!r}")
    if torch.onnx.is_in_onnx_export():
        height, width = layer.output_size
        return OnnxRoiAlign.apply(features, boxes, batch_indices, int(height), int(width),
                                  int(layer.sampling_ratio), float(layer.spatial_scale),
                                  bool(layer.aligned))
    return layer(features, torch.cat([batch_indices[:, None].to(boxes.dtype), boxes], dim=1))


# Opset that RoiAlign's half_pixel mode needs.
ROI_ALIGN_OPSET = 16


@register_family
class TwoStagePostprocess(HeadPostprocess):
    """Faster R-CNN: RPN proposals (NMS per level), RoIAlign per mapped
    level, the RoI head, class-specific boxes clipped, NMS per class."""
    family = 'two_stage'
    heads = (RPNHead, )

    @classmethod
    def handles(cls, detector):
        return getattr(detector, 'rpn_head', None) is not None and \
            getattr(detector, 'roi_head', None) is not None

    def __init__(self, detector, max_per_img):
        self.detector = detector
        self.rpn_head, roi_head = detector.rpn_head, detector.roi_head
        if not isinstance(self.rpn_head, RPNHead) or not isinstance(roi_head, StandardRoIHead):
            raise ExportError(f'ONNX export of two-stage detectors supports RPNHead + '
                              f'StandardRoIHead, not {type(self.rpn_head).__name__} + '
                              f'{type(roi_head).__name__}')
        self.extractor, self.head = roi_head.bbox_roi_extractor, roi_head.bbox_head
        if type(self.extractor).__name__ != 'SingleRoIExtractor' or \
                type(self.extractor.roi_layers[0]).__name__ != 'RoIAlign':
            raise ExportError('ONNX export of two-stage detectors supports SingleRoIExtractor '
                              'with RoIAlign')
        _check_decoder(self.rpn_head, ('DeltaXYWHBBoxCoder', ))
        _check_decoder(self.head, ('DeltaXYWHBBoxCoder', ))
        if self.head.custom_cls_channels:
            raise ExportError('ONNX export does not support RoI heads with their own score '
                              'activation')
        rpn_cfg, rcnn_cfg = detector.test_cfg.rpn, detector.test_cfg.rcnn
        self.rpn_nms_pre = int(rpn_cfg.get('nms_pre', -1))
        self.rpn_min_bbox_size = rpn_cfg.get('min_bbox_size', -1)
        self.rpn_iou_threshold = _nms_settings(rpn_cfg, 'test_cfg.rpn.')
        self.rpn_max_per_img = int(rpn_cfg.get('max_per_img') or 1000)
        self.score_thr = float(rcnn_cfg.get('score_thr', 0.0))
        self.nms_pre, self.min_bbox_size = -1, -1
        self.iou_threshold = _nms_settings(rcnn_cfg, 'test_cfg.rcnn.')
        self.max_per_img = int(max_per_img or rcnn_cfg.get('max_per_img') or 100)
        self.num_classes = self.head.num_classes

    def settings(self) -> dict:
        return dict(super().settings(), detector=type(self.detector).__name__,
                    rpn_nms_pre=self.rpn_nms_pre, rpn_min_bbox_size=self.rpn_min_bbox_size,
                    rpn_iou_threshold=self.rpn_iou_threshold,
                    rpn_max_per_img=self.rpn_max_per_img)

    def proposals(self, features, img_shape):
        """``RPNHead.predict``: ``proposals [B, P, 4]`` and ``valid [B, P]``
        (False for the rows that pad an image's proposals to ``P``)."""
        cls_scores, bbox_preds = self.rpn_head(features)
        boxes, scores, _, levels = dense_candidates(
            self.rpn_head, cls_scores, bbox_preds, img_shape, self.rpn_nms_pre, sigmoid=True,
            clip=True)
        valid = keep_large_enough(boxes, torch.ones_like(levels, dtype=torch.bool),
                                  self.rpn_min_bbox_size)
        dets, kept_levels = batched_class_nms(boxes, scores, levels, valid, len(cls_scores),
                                              self.rpn_iou_threshold, self.rpn_max_per_img)
        return dets[..., :4], kept_levels >= 0

    def roi_features(self, features, boxes: Tensor, batch_indices: Tensor) -> Tensor:
        """SingleRoIExtractor: each RoI pooled from the level its scale
        maps to."""
        extractor = self.extractor
        features = features[:extractor.num_inputs]
        scale = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        levels = torch.floor(torch.log2(scale / extractor.finest_scale + 1e-6))
        levels = levels.clamp(min=0, max=len(features) - 1).long()
        height, width = extractor.roi_layers[0].output_size
        pooled = features[0].new_zeros(boxes.shape[0], extractor.out_channels, height, width)
        for level, (feature, layer) in enumerate(zip(features, extractor.roi_layers)):
            index = torch.nonzero(levels == level).squeeze(1)
            level_pooled = roi_align(feature, boxes[index], batch_indices[index], layer)
            pooled = pooled.index_put((index, ), level_pooled)
        return pooled

    def candidates(self, features, img_shape):
        proposals, proposal_valid = self.proposals(features, img_shape)
        batch, count = proposals.shape[:2]
        boxes = proposals.reshape(-1, 4)
        batch_indices = torch.arange(batch, device=boxes.device).repeat_interleave(count)
        pooled = self.roi_features(features, boxes, batch_indices)
        roi_head = self.detector.roi_head
        if roi_head.with_shared_head:
            pooled = roi_head.shared_head(pooled)
        cls_score, bbox_pred = self.head(pooled)
        classes = self.num_classes
        scores = cls_score.softmax(-1)[:, :-1].reshape(batch, count * classes)
        per_box = 1 if self.head.reg_class_agnostic else classes
        # (proposal, class) pairs in MMDetection's order: proposal, class.
        decoded = self.head.bbox_coder.decode(boxes.repeat_interleave(per_box, dim=0),
                                              bbox_pred.reshape(-1, 4), max_shape=None)
        decoded = decoded.reshape(batch, count, per_box, 4).expand(-1, -1, classes, -1)
        decoded = decoded.reshape(batch, count * classes, 4)
        if getattr(self.head.bbox_coder, 'clip_border', True):
            decoded = clip_to_image(decoded, img_shape)
        labels = torch.arange(classes, device=boxes.device).repeat(batch, count)
        valid = proposal_valid.repeat_interleave(classes, dim=1) & (scores > self.score_thr)
        return decoded, scores, labels, valid

    # The app network: the RPN's boxes and scores, then the feature maps
    # RoIAlign pools from (feature0, feature1 ...); the RoI head is a second
    # network (export.app_network.RoIHeadForApp).
    @property
    def app_head(self):
        return self.rpn_head

    def app_output_names(self):
        return self.app_outputs + tuple(f'feature{i}' for i in range(self.extractor.num_inputs))

    def app_constants(self, sizes, device):
        return dense_app_constants(self.rpn_head, sizes, device)

    def app_forward(self, network, features):
        boxes, scores = dense_app_outputs(self.rpn_head, network, features)
        return (boxes, scores, *features[:self.extractor.num_inputs])

    def app_settings(self):
        settings = super().app_settings()
        layer, bbox_head = self.extractor.roi_layers[0], self.head
        settings.update(
            roi_strides=[int(stride) for stride in self.extractor.featmap_strides],
            finest_scale=float(self.extractor.finest_scale),
            roi_output_size=[int(side) for side in layer.output_size],
            roi_sampling_ratio=int(layer.sampling_ratio), roi_aligned=bool(layer.aligned),
            rcnn_means=[float(v) for v in bbox_head.bbox_coder.means],
            rcnn_stds=[float(v) for v in bbox_head.bbox_coder.stds],
            rcnn_clip=bool(getattr(bbox_head.bbox_coder, 'clip_border', True)),
            rcnn_ctr_clamp=float(bbox_head.bbox_coder.ctr_clamp)
            if getattr(bbox_head.bbox_coder, 'add_ctr_clamp', False) else None,
            reg_class_agnostic=bool(bbox_head.reg_class_agnostic))
        return settings


def head_postprocess(detector: nn.Module, max_per_img: Optional[int] = None) -> HeadPostprocess:
    """The post-processing of ``detector``'s head family (the first
    registered family that handles it); refuses others."""
    for family in FAMILIES:
        if family.handles(detector):
            return family(detector, max_per_img)
    head = getattr(detector, 'bbox_head', None)
    if head is None:
        raise ExportError(f'ONNX export supports {", ".join(SUPPORTED)}; '
                          f'{type(detector).__name__} has no bbox_head')
    raise ExportError(f'ONNX export supports {", ".join(SUPPORTED)} (and other anchor heads '
                      f'with BaseDenseHead\'s post-processing), not {type(head).__name__}')


def _base_dense_post_processing(head, names: Sequence[str] = (
        'predict_by_feat', '_predict_by_feat_single', '_bbox_post_process')) -> bool:
    """Whether ``head`` predicts with BaseDenseHead's own code (its methods
    ``names``)."""
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
    return all(getattr(type(head), name) is getattr(BaseDenseHead, name) for name in names)
