"""The installed stack and the run-time fixes of ghostnet_mmdet.compat."""
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config


def test_mmcv_compiled_ops_run_on_cpu():
    from mmcv.ops import batched_nms, nms, roi_align
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.],
                          [0., 0., 10., 10.]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    # The fourth box overlaps the first, but is of another class.
    _, keep = batched_nms(boxes, scores, torch.tensor([0, 0, 0, 1]),
                          dict(type='nms', iou_threshold=0.5))
    assert sorted(keep.tolist()) == [0, 2, 3]
    _, keep = nms(boxes[:3], scores[:3], 0.5)
    assert keep.tolist() == [0, 2]
    # RoIAlign against torchvision's (the same definition, another code).
    from torchvision.ops import roi_align as reference
    feats = torch.arange(64.).view(1, 1, 8, 8)
    rois = torch.tensor([[0., 0., 0., 4., 4.], [0., 1.5, 2., 7., 6.5]])
    pooled = roi_align(feats, rois, (2, 2), 1.0, 2, 'avg', True)
    torch.testing.assert_close(pooled, reference(feats, rois, (2, 2), 1.0, 2, aligned=True))
    assert pooled[0, 0].tolist() == [[4.5, 6.5], [20.5, 22.5]]  # means of 2x2 pixels


USER_CONFIG = (
    "_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'\n"
    "custom_imports = dict(imports=['ghostnet_mmdet'], allow_failed_imports=False)\n"
    "model = dict(backbone=dict(_delete_=True, type='GhostNet'),\n"
    "             neck=dict(in_channels=[40, 112, 160], start_level=0))\n")


def write_user_config(folder):
    """A user's config: MMDetection's RetinaNet with the backbone swapped."""
    path = Path(folder) / 'my_retinanet.py'
    path.write_text(USER_CONFIG)
    return path


def test_custom_imports_config_with_mmdet_base_builds_a_ghostnet_detector(tmp_path):
    """In a fresh interpreter that only knows the config, as tools/train.py
    would: GhostNet is not registered until custom_imports imports the
    package, and then MMDetection's RetinaNet builds with it."""
    config = write_user_config(tmp_path)
    code = (
        'import sys; from mmengine.config import Config; '
        'from mmengine.utils import import_modules_from_strings; '
        'from mmdet.utils import register_all_modules; '
        'from mmdet.registry import MODELS; assert MODELS.get("GhostNet") is None; '
        'cfg = Config.fromfile(sys.argv[1]); '
        'import_modules_from_strings(**cfg.custom_imports); register_all_modules(); '
        'cls = MODELS.get("GhostNet"); print(cls.__module__, cls.__name__); '
        'model = MODELS.build(cfg.model); '
        'print(type(model).__name__, type(model.backbone).__name__)')
    result = subprocess.run([sys.executable, '-c', code, str(config)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-2:] == [
        'ghostnet_mmdet.models.backbones.ghostnet GhostNet', 'RetinaNet GhostNet']


def test_pkg_resources_is_available_for_mmdet_bases(tmp_path):
    pkg_resources = importlib.import_module('pkg_resources')
    assert pkg_resources.get_distribution('mmdet').version == '3.3.0'
    cfg = Config.fromfile(str(write_user_config(tmp_path)))
    assert cfg.model.type == 'RetinaNet'  # from the mmdet:: base
    assert cfg.model.backbone.type == 'GhostNet'


def test_plain_torch_load_rejects_mmengine_checkpoints(tmp_path):
    """The failure that compat fixes: torch >= 2.6 defaults to weights_only."""
    from mmengine.logging import HistoryBuffer
    path = tmp_path / 'ckpt.pth'
    torch.save({'message_hub': {'log_scalars': {'loss': HistoryBuffer([1.0, 2.0], [1, 1])}}}, path)
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path)
    # MMEngine's loader, as re-registered by ghostnet_mmdet.compat, reads it.
    from mmengine.runner.checkpoint import CheckpointLoader
    loaded = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert loaded['message_hub']['log_scalars']['loss'].mean() == 1.5
