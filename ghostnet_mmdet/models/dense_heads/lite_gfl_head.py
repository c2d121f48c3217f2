"""A light GFL head: NanoDet-Plus's head (RangiLyu 2021) on MMDetection's
:class:`~mmdet.models.dense_heads.GFLHead`.

Per level (not shared), ``stacked_convs`` depthwise-separable
``kernel_size`` convs and two 1x1 outputs: class scores that are also the
localisation quality (quality focal loss) and, per box side, a distribution
over ``reg_max + 1`` distances (distribution focal loss, decoded by its
integral). Priors are points at the grid corners, as in NanoDet-Plus and
RTMDet; positives are chosen by the dynamic soft-label assigner from the
head's own decoded boxes and scores.

Why GFLHead: its losses (QFL with IoU targets, DFL, GIoU weighted by the
predicted quality), its ``Integral`` and its box decoding at prediction are
NanoDet-Plus's; what differs is the layers and the assignment (GFLHead's
ATSS assigner looks at priors alone), which is what this class replaces.
RTMDetSepBNHead has the per-level layout but regresses distances directly,
without DFL.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.dense_heads import GFLHead
from mmdet.models.task_modules.assigners import DynamicSoftLabelAssigner
from mmdet.models.task_modules.prior_generators import anchor_inside_flags
from mmdet.models.utils import images_to_levels, multi_apply, unmap
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, OptConfigType, OptInstanceList, reduce_mean

from ..utils import check_int, check_odd_kernel


@MODELS.register_module()
class LiteGFLHead(GFLHead):
    """NanoDet-Plus's head: depthwise-separable convs per level, GFL outputs,
    dynamic soft-label assignment.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of every input level.
        feat_channels (int): Channels of the stacked convs. Defaults to 96.
        stacked_convs (int): Convs per level before the outputs. Defaults to 2.
        kernel_size (int): Kernel of the stacked convs. Defaults to 5.
        use_depthwise (bool): Depthwise-separable stacked convs (else plain
            convs). Defaults to True.
        conv_cfg, norm_cfg, act_cfg (dict): Of the stacked convs; BN and
            LeakyReLU(0.1) by default, NanoDet-Plus's.
        reg_max (int): Distances are distributions over ``0..reg_max``
            strides. Defaults to 7.
        anchor_generator (dict): One square prior per position; only its
            centres (the grid corners) and strides are used. Defaults to
            strides 8, 16, 32 and 64.
        Other arguments are :class:`~mmdet.models.dense_heads.GFLHead`'s.
        ``train_cfg.assigner``: a ``DynamicSoftLabelAssigner`` (NanoDet-Plus's,
        assigning from the decoded predictions), or a prior-based one such
        as GFL's ``ATSSAssigner`` (then the anchors' size matters).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 feat_channels: int = 96,
                 stacked_convs: int = 2,
                 kernel_size: int = 5,
                 use_depthwise: bool = True,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 act_cfg: ConfigType = dict(type='LeakyReLU', negative_slope=0.1),
                 reg_max: int = 7,
                 anchor_generator: ConfigType = dict(
                     type='AnchorGenerator', ratios=[1.0], octave_base_scale=5,
                     scales_per_octave=1, strides=[8, 16, 32, 64]),
                 loss_cls: ConfigType = dict(
                     type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
                 loss_bbox: ConfigType = dict(type='GIoULoss', loss_weight=2.0),
                 loss_dfl: ConfigType = dict(type='DistributionFocalLoss', loss_weight=0.25),
                 **kwargs) -> None:
        for name, value in (('feat_channels', feat_channels), ('stacked_convs', stacked_convs),
                            ('reg_max', reg_max)):
            check_int(name, value)
        check_odd_kernel(kernel_size)
        self.kernel_size = kernel_size
        self.use_depthwise = use_depthwise
        self.act_cfg = act_cfg
        super().__init__(
            num_classes=num_classes, in_channels=in_channels, feat_channels=feat_channels,
            stacked_convs=stacked_convs, conv_cfg=conv_cfg, norm_cfg=norm_cfg, reg_max=reg_max,
            anchor_generator=anchor_generator, loss_cls=loss_cls, loss_bbox=loss_bbox,
            loss_dfl=loss_dfl, reg_decoded_bbox=True, **kwargs)

    @property
    def assigns_from_predictions(self) -> bool:
        """NanoDet-Plus's assigner looks at the predictions; GFLHead's own
        (ATSS) at the priors alone, through GFLHead's loss."""
        return isinstance(getattr(self, 'assigner', None), DynamicSoftLabelAssigner)

    def _init_layers(self) -> None:
        conv = DepthwiseSeparableConvModule if self.use_depthwise else ConvModule
        self.cls_convs = nn.ModuleList()
        self.gfl_cls = nn.ModuleList()
        self.gfl_reg = nn.ModuleList()
        for _ in self.prior_generator.strides:
            self.cls_convs.append(nn.Sequential(*[
                conv(self.in_channels if i == 0 else self.feat_channels, self.feat_channels,
                     self.kernel_size, padding=self.kernel_size // 2, conv_cfg=self.conv_cfg,
                     norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
                for i in range(self.stacked_convs)]))
            self.gfl_cls.append(nn.Conv2d(self.feat_channels, self.cls_out_channels, 1))
            self.gfl_reg.append(nn.Conv2d(self.feat_channels, 4 * (self.reg_max + 1), 1))

    def forward(self, x: Tuple[Tensor]) -> Tuple[List[Tensor]]:
        """Class-and-quality scores ``[N, num_classes, H, W]`` and distance
        distributions ``[N, 4 * (reg_max + 1), H, W]`` per level."""
        if len(x) != len(self.cls_convs):
            raise ValueError(f'{type(self).__name__} has {len(self.cls_convs)} levels '
                             f'(strides {[s[0] for s in self.prior_generator.strides]}), but '
                             f'got {len(x)} feature maps')
        return multi_apply(self.forward_single, x, self.cls_convs, self.gfl_cls, self.gfl_reg)

    def forward_single(self, x: Tensor, convs: nn.Module, cls_out: nn.Module,
                       reg_out: nn.Module) -> Tuple[Tensor, Tensor]:
        feat = convs(x)
        return cls_out(feat), reg_out(feat)

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None) -> dict:
        """GFLHead's losses, with targets assigned from the decoded
        predictions (a DynamicSoftLabelAssigner), or GFLHead's own way
        (prior-based assigners such as ATSS)."""
        if not self.assigns_from_predictions:
            return super().loss_by_feat(cls_scores, bbox_preds, batch_gt_instances,
                                        batch_img_metas, batch_gt_instances_ignore)
        num_imgs = len(batch_img_metas)
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        device = cls_scores[0].device
        anchor_list, valid_flag_list = self.get_anchors(featmap_sizes, batch_img_metas,
                                                        device=device)
        num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
        anchors = torch.cat(anchor_list[0])
        centers = self.anchor_center(anchors)
        strides = torch.cat([anchors.new_full((count, ), stride[0]) for count, stride in
                             zip(num_level_anchors, self.prior_generator.strides)])
        # What the assigner looks at: every prior's decoded box and scores.
        with torch.no_grad():
            flat_scores = torch.cat([score.permute(0, 2, 3, 1).reshape(
                num_imgs, -1, self.cls_out_channels) for score in cls_scores], dim=1)
            flat_dist = torch.cat([pred.permute(0, 2, 3, 1).reshape(
                num_imgs, -1, 4 * (self.reg_max + 1)) for pred in bbox_preds], dim=1)
            distances = self.integral(flat_dist.reshape(-1, 4 * (self.reg_max + 1)))
            distances = distances.reshape(num_imgs, -1, 4) * strides[None, :, None]
            flat_boxes = torch.cat([centers - distances[..., :2], centers + distances[..., 2:]],
                                   dim=-1)
        priors = torch.cat([centers, strides[:, None], strides[:, None]], dim=1)
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * num_imgs
        (all_labels, all_label_weights, all_bbox_targets, sampling_results) = multi_apply(
            self._assign_single, [torch.cat(flags) for flags in valid_flag_list],
            list(flat_scores), list(flat_boxes), batch_gt_instances, batch_img_metas,
            batch_gt_instances_ignore, anchors=anchors, priors=priors)
        avg_factor = sum(result.avg_factor for result in sampling_results)
        avg_factor = reduce_mean(torch.tensor(avg_factor, dtype=torch.float,
                                              device=device)).item()
        anchors_list = images_to_levels([anchors] * num_imgs, num_level_anchors)
        labels_list = images_to_levels(all_labels, num_level_anchors)
        label_weights_list = images_to_levels(all_label_weights, num_level_anchors)
        bbox_targets_list = images_to_levels(all_bbox_targets, num_level_anchors)
        losses_cls, losses_bbox, losses_dfl, weight_sums = multi_apply(
            self.loss_by_feat_single, anchors_list, cls_scores, bbox_preds, labels_list,
            label_weights_list, bbox_targets_list, self.prior_generator.strides,
            avg_factor=avg_factor)
        weight_sum = reduce_mean(sum(weight_sums)).clamp_(min=1).item()
        return dict(loss_cls=losses_cls,
                    loss_bbox=[loss / weight_sum for loss in losses_bbox],
                    loss_dfl=[loss / weight_sum for loss in losses_dfl])

    def _assign_single(self, valid_flags: Tensor, scores: Tensor, boxes: Tensor,
                       gt_instances: InstanceData, img_meta: dict,
                       gt_instances_ignore: Optional[InstanceData], anchors: Tensor,
                       priors: Tensor) -> tuple:
        """Labels, label weights and box targets of one image's priors."""
        inside = anchor_inside_flags(anchors, valid_flags, img_meta['img_shape'][:2],
                                     self.train_cfg['allowed_border'])
        pred_instances = InstanceData(priors=priors[inside], bboxes=boxes[inside],
                                      scores=scores[inside])
        assign_result = self.assigner.assign(pred_instances, gt_instances, gt_instances_ignore)
        sampling_result = self.sampler.sample(assign_result, pred_instances, gt_instances)
        count = int(inside.sum())
        labels = boxes.new_full((count, ), self.num_classes, dtype=torch.long)
        label_weights = boxes.new_ones(count)
        bbox_targets = boxes.new_zeros(count, 4)
        pos_inds = sampling_result.pos_inds
        if len(pos_inds) > 0:
            bbox_targets[pos_inds] = sampling_result.pos_gt_bboxes
            labels[pos_inds] = sampling_result.pos_gt_labels
            if self.train_cfg['pos_weight'] > 0:
                label_weights[pos_inds] = self.train_cfg['pos_weight']
        total = anchors.size(0)
        return (unmap(labels, total, inside, fill=self.num_classes),
                unmap(label_weights, total, inside), unmap(bbox_targets, total, inside),
                sampling_result)
