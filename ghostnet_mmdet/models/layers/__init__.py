from .ghost_blocks import (ChannelLayout, DFCAttention, GhostBottleneck, GhostModule,
                           RepConvModule, SqueezeExcite, pad_conv)

__all__ = ['ChannelLayout', 'DFCAttention', 'GhostBottleneck', 'GhostModule', 'RepConvModule',
           'SqueezeExcite', 'pad_conv']
