"""GhostNet (CVPR 2020) as an MMDetection 3.x backbone.

Importing this package (``custom_imports=dict(imports=['ghostnet_mmdet'])``)
registers ``GhostNet`` in MMDetection's ``MODELS`` registry and
``GhostShapesDataset`` in its ``DATASETS`` registry, and applies the
run-time fixes in :mod:`ghostnet_mmdet.compat`.
"""
from . import compat  # noqa: F401  (applied on import)
from .datasets import GhostShapesDataset
from .models import GhostNet, ghostnet_channels
from .version import __version__

__all__ = ['GhostNet', 'GhostShapesDataset', 'ghostnet_channels', '__version__']
