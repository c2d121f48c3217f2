from .shapes import SHAPE_CLASSES, generate_shapes_dataset
from .shapes_dataset import GhostShapesDataset

__all__ = ['GhostShapesDataset', 'SHAPE_CLASSES', 'generate_shapes_dataset']
