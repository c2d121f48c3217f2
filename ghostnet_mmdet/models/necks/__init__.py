from .ghost_pan import GhostPAN

__all__ = ['GhostPAN']
