from .ghostnet import GHOSTNET_ARCH, GhostNet, ghostnet_channels

__all__ = ['GHOSTNET_ARCH', 'GhostNet', 'ghostnet_channels']
