"""load_detector: the one loader of the demo, the exporter and the benchmarks."""
from ghostnet_mmdet.apis import load_detector
from ghostnet_mmdet.datasets import SHAPE_CLASSES

from .detection_utils import SHAPES_CONFIG


def test_takes_a_config_of_an_installed_package():
    """The benchmarks compare with MMDetection's own configs by their
    'mmdet::' names, as configs inherit them."""
    model = load_detector('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py')
    assert type(model.backbone).__name__ == 'ResNet'
    assert len(model.dataset_meta['classes']) == 80
    assert not model.training
    # No ImageNet weights are fetched for an untrained detector.
    assert model.cfg.model.backbone.init_cfg is None


def test_takes_our_config_with_its_classes():
    model = load_detector(str(SHAPES_CONFIG))
    assert type(model.backbone).__name__ == 'GhostNet'
    assert tuple(model.dataset_meta['classes']) == SHAPE_CLASSES
