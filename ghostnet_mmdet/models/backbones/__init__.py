from .ghostnet import (GHOSTNET_ARCH, GHOSTNET_VERSIONS, GhostNet, GhostNetV2, GhostNetV3,
                       ghostnet_channels, ghostnet_plan)

__all__ = ['GHOSTNET_ARCH', 'GHOSTNET_VERSIONS', 'GhostNet', 'GhostNetV2', 'GhostNetV3', 'ghostnet_channels',
           'ghostnet_plan']
