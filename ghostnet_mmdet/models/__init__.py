from .backbones import (GHOSTNET_VERSIONS, GhostNet, GhostNetV2, GhostNetV3, ghostnet_channels,
                        ghostnet_plan)
from .dense_heads import LiteGFLHead
from .layers import DFCAttention, GhostBottleneck, GhostModule, RepConvModule, SqueezeExcite
from .necks import GhostPAN

__all__ = [
    'GHOSTNET_VERSIONS', 'GhostNet', 'GhostNetV2', 'GhostNetV3', 'ghostnet_channels', 'ghostnet_plan',
    'DFCAttention', 'GhostBottleneck', 'GhostModule', 'RepConvModule', 'SqueezeExcite',
    'GhostPAN', 'LiteGFLHead'
]
