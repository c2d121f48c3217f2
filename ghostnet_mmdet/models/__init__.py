from .backbones import GhostNet, GhostNetV2, GhostNetV3, ghostnet_channels, ghostnet_plan
from .layers import DFCAttention, GhostBottleneck, GhostModule, RepConvModule, SqueezeExcite

__all__ = [
    'GhostNet', 'GhostNetV2', 'GhostNetV3', 'ghostnet_channels', 'ghostnet_plan',
    'DFCAttention', 'GhostBottleneck', 'GhostModule', 'RepConvModule', 'SqueezeExcite'
]
