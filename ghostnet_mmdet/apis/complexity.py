"""Parameters, FLOPs and MACs of a detector config and of the GhostNet
family in the paper's setting (tools/analysis_tools/get_flops.py prints
them)."""
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ..models import GHOSTNET_VERSIONS
from ..utils.complexity import (conv_linear_macs, count_params, imagenet_head_macs,
                                mmengine_flops)


class TensorForward(torch.nn.Module):
    """A detector's tensor-mode forward with fixed image metas, so that the
    flop tracer sees one tensor in (two-stage detectors need the metas)."""

    def __init__(self, detector, shape):
        super().__init__()
        from mmdet.structures import DetDataSample
        self.detector = detector
        self.data_samples = [DetDataSample(metainfo=dict(
            img_shape=tuple(shape), ori_shape=tuple(shape), pad_shape=tuple(shape),
            batch_input_shape=tuple(shape), scale_factor=(1.0, 1.0)))]

    def forward(self, x):
        return self.detector._forward(x, self.data_samples)


def detector_complexity(config, shape, cfg_options=None):
    """Params and FLOPs of a detector config and of its backbone."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import MODELS
    cfg.model.backbone.init_cfg = None
    # Pad as the data preprocessor would (YOLO necks need it).
    divisor = cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1) or 1
    shape = tuple(-(-side // divisor) * divisor for side in shape)
    model = MODELS.build(cfg.model).eval()
    x = torch.zeros(1, 3, *shape)
    return dict(
        shape=shape,
        width=getattr(model.backbone, 'widen_factor', None),
        params=count_params(model),
        flops=mmengine_flops(TensorForward(model, shape), shape),
        backbone_params=count_params(model.backbone),
        backbone_macs=conv_linear_macs(model.backbone, x)['total'],
        backbone_flops=mmengine_flops(model.backbone, shape),
    )


def backbone_complexity(widen_factor, shape=(224, 224), version='v1', deploy=False):
    """The paper's setting: the whole network with its ImageNet head."""
    model = GHOSTNET_VERSIONS[version](widen_factor=widen_factor, out_indices=(9, )).eval()
    if deploy:
        model.switch_to_deploy()
    head = imagenet_head_macs(model.out_channels[-1])
    head_params = model.out_channels[-1] * 1280 + 1280 + 1280 * 1000 + 1000
    body_macs = conv_linear_macs(model, torch.zeros(1, 3, *shape))['total']
    return dict(params=count_params(model) + head_params, macs=body_macs + head,
                flops=mmengine_flops(model, shape) + head)
