from .ghost_blocks import (DFCAttention, GhostBottleneck, GhostModule, RepConvModule,
                           SqueezeExcite)

__all__ = ['DFCAttention', 'GhostBottleneck', 'GhostModule', 'RepConvModule', 'SqueezeExcite']
