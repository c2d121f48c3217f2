from .ghost_blocks import GhostBottleneck, GhostModule, SqueezeExcite, make_divisible

__all__ = ['GhostBottleneck', 'GhostModule', 'SqueezeExcite', 'make_divisible']
