"""GhostNet (CVPR 2020), GhostNetV2 and GhostNetV3 as MMDetection 3.x
backbones.

Importing this package (``custom_imports=dict(imports=['ghostnet_mmdet'])``)
registers ``GhostNet``, ``GhostNetV2``, ``GhostNetV3``, ``OnnxRuntimeDetector``
and ``OpenVINODetector`` in MMDetection's ``MODELS`` registry and
``GhostShapesDataset`` in its ``DATASETS`` registry, and applies the
run-time fixes in :mod:`ghostnet_mmdet.compat`.
"""
from . import compat  # noqa: F401  (applied on import)
from .datasets import GhostShapesDataset
from .deploy import OnnxRuntimeDetector, OpenVINODetector
from .models import GhostNet, GhostNetV2, GhostNetV3, ghostnet_channels
from .version import __version__

__all__ = ['GhostNet', 'GhostNetV2', 'GhostNetV3', 'GhostShapesDataset', 'OnnxRuntimeDetector',
           'OpenVINODetector', 'ghostnet_channels', '__version__']
