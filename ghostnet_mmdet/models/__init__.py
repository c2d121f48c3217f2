from .backbones import GhostNet, ghostnet_channels
from .layers import GhostBottleneck, GhostModule, SqueezeExcite, make_divisible

__all__ = [
    'GhostNet', 'ghostnet_channels', 'GhostBottleneck', 'GhostModule',
    'SqueezeExcite', 'make_divisible'
]
