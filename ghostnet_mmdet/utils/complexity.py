"""Multiply-accumulates of convolutions and linear layers: the "FLOPs" of
the GhostNet paper (141M for 1.0x at 224x224, ImageNet head included).

MMEngine's ``get_model_complexity_info`` counts more (norms, activations,
pooling, element-wise ops), so it reports larger numbers for the same
network; tools/analysis_tools/get_flops.py prints both.
"""
import logging
from typing import Dict

import torch
import torch.nn as nn
from mmengine.analysis import get_model_complexity_info
from mmengine.logging import MMLogger

# The ImageNet head of the reference network: global pool -> 1x1 conv to
# 1280 (with bias) -> ReLU -> linear to 1000 classes.
IMAGENET_HEAD_CHANNELS = 1280
IMAGENET_CLASSES = 1000


def conv_linear_macs(model: nn.Module, inputs: torch.Tensor) -> Dict[str, int]:
    """Count the multiply-accumulates of every ``Conv2d`` and ``Linear`` in
    one forward pass of ``model`` on ``inputs``, per image.

    Returns:
        dict: ``{'conv': ..., 'linear': ..., 'total': ...}``.
    """
    counts = {'conv': 0, 'linear': 0}
    batch = inputs.shape[0]

    def conv_hook(module, args, output):
        kernel = module.kernel_size[0] * module.kernel_size[1]
        per_output = module.in_channels // module.groups * kernel
        counts['conv'] += output.numel() // batch * per_output

    def linear_hook(module, args, output):
        counts['linear'] += output.numel() // batch * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    counts['total'] = counts['conv'] + counts['linear']
    return counts


def imagenet_head_macs(final_channels: int) -> int:
    """MACs of the reference ImageNet head on the pooled ``final_channels``
    features: 1x1 conv to 1280 plus the 1280x1000 classifier."""
    return final_channels * IMAGENET_HEAD_CHANNELS + IMAGENET_HEAD_CHANNELS * IMAGENET_CLASSES


def count_params(module: nn.Module) -> int:
    """The number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def mmengine_flops(model: nn.Module, shape) -> int:
    """MMEngine's FLOP count of ``model`` on one zero image of ``shape``
    (what MMDetection's get_flops.py reports), without the flop counter's
    per-operator warnings."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        result = get_model_complexity_info(model, inputs=(torch.zeros(1, 3, *shape), ),
                                           show_table=False, show_arch=False)
    finally:
        logger.setLevel(level)
    return result['flops']
