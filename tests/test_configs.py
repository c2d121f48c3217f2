"""Every detector config builds, trains one step and predicts, on CPU with
small synthetic inputs; an unmodified MMDetection config becomes a GhostNet
detector by swapping the backbone; tools/train.py fails clearly without COCO."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub

from mmdet.structures import DetDataSample
from ghostnet_mmdet.models import GhostNet

from .detection_utils import CONFIGS, build_detector, run_tool_in_process, synthetic_batch

REPO = Path(__file__).resolve().parents[1]
# Other backbones on the same data and schedule, for comparison tables.
BASELINE_CONFIGS = [p for p in CONFIGS if 'baselines' in p.parts]
CONFIGS = [p for p in CONFIGS if p not in BASELINE_CONFIGS]
COCO_CONFIGS = [p for p in CONFIGS if p.name.endswith('coco.py') or p.name == 'retinanet_ghostnet.py']


def train_step_and_predict(model, size=(96, 128), all_backbone_params=True):
    """One real SGD step and one inference; returns the losses.

    With ``all_backbone_params``, every trainable backbone parameter must get
    a gradient (no dead layers); else only some must."""
    # Batch augments such as YOLOX's BatchSyncRandomResize read the
    # iteration from the message hub, as the Runner sets it.
    MessageHub.get_current_instance().update_info('iter', 0)
    model.train()
    num_classes = model.bbox_head.num_classes if hasattr(model, 'bbox_head') else \
        model.roi_head.bbox_head.num_classes
    batch = synthetic_batch(num_images=2, size=size, num_classes=num_classes)
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    loss, log_vars = model.parse_losses(losses)
    assert torch.isfinite(loss), log_vars
    for name, value in log_vars.items():
        assert torch.isfinite(torch.as_tensor(value)), (name, value)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    optimizer.zero_grad()
    loss.backward()
    backbone_grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert backbone_grads
    if all_backbone_params:
        assert all(g is not None for g in backbone_grads)
    backbone_grads = [g for g in backbone_grads if g is not None]
    assert backbone_grads and sum(g.abs().sum() for g in backbone_grads) > 0
    optimizer.step()

    model.eval()
    batch = synthetic_batch(num_images=2, size=size, num_classes=num_classes, seed=1)
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        results = model(**data, mode='predict')
    assert len(results) == 2
    for result in results:
        assert isinstance(result, DetDataSample)
        boxes = result.pred_instances.bboxes
        assert boxes.ndim == 2 and boxes.shape[1] == 4
        assert len(result.pred_instances.scores) == len(boxes) == len(result.pred_instances.labels)
    return log_vars


def test_configs_were_found():
    names = {p.name for p in CONFIGS}
    assert 'retinanet_ghostnet.py' in names
    assert {'retinanet_ghostnet-1.1x_fpn_1x_coco.py', 'retinanet_ghostnet-1.0x_fpn_1x_coco.py',
            'faster-rcnn_ghostnet-1.1x_fpn_1x_coco.py', 'yolox_ghostnet-1.0x_8xb8-300e_coco.py',
            'yolov3_ghostnet-1.0x_8xb24-ms-416-300e_coco.py',
            'ssdlite_ghostnet-1.0x_8xb24-600e_coco.py', 'ssdlite_ghostnet-1.3x_8xb24-600e_coco.py',
            'ssdlite_ghostnetv2-1.0x_8xb24-600e_coco.py', 'ssdlite_ghostnet-1.0x_1xb8-1.5k_shapes.py',
            'rtmdet_ghostnet-1.0x_8xb32-300e_coco.py',
            'rtmdet_ghostnet-1.0x_1xb8-1.5k_shapes.py'} <= names
    assert {'ssdlite_mobilenetv2_1xb8-1.5k_shapes.py',
            'rtmdet_cspnext-tiny_1xb8-1.5k_shapes.py'} <= {p.name for p in BASELINE_CONFIGS}
    for version in ('v2', 'v3'):
        assert {f'retinanet_ghostnet{version}-1.0x_fpn_1x_coco.py',
                f'yolov3_ghostnet{version}-1.0x_8xb24-ms-416-300e_coco.py',
                f'yolov3_ghostnet{version}-1.0x_8xb24-320-300e_coco.py',
                f'retinanet_ghostnet{version}-1.0x_fpn_1xb8-1.5k_shapes.py',
                f'yolov3_ghostnet{version}-1.0x_1xb8-1.5k_shapes.py'} <= names


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.name)
def test_config_builds_trains_one_step_and_predicts(config):
    cfg = Config.fromfile(str(config))
    assert cfg.custom_imports.imports == ['ghostnet_mmdet']
    assert cfg.model.backbone.type in ('GhostNet', 'GhostNetV2', 'GhostNetV3')
    model = build_detector(cfg)
    assert type(model.backbone).__name__ == cfg.model.backbone.type
    backbone = model.backbone
    assert isinstance(backbone, GhostNet)
    # The neck is wired to the backbone's real output channels.
    assert list(cfg.model.neck.in_channels) in (backbone.out_channels,
                                                backbone.out_channels[::-1])
    train_step_and_predict(model)


@pytest.mark.parametrize('config', BASELINE_CONFIGS, ids=lambda p: p.name)
def test_baseline_config_builds_trains_one_step_and_predicts(config):
    cfg = Config.fromfile(str(config))
    assert cfg.model.backbone.type in ('ResNet', 'MobileNetV2', 'CSPNeXt', 'CSPDarknet',
                                       'mmpretrain.ShuffleNetV2')
    # MMDetection's MobileNetV2 runs (and keeps) layers after its last output.
    train_step_and_predict(build_detector(cfg), all_backbone_params=False)


@pytest.mark.parametrize('config', COCO_CONFIGS, ids=lambda p: p.name)
def test_coco_config_names_imagenet_weights_and_normalization(config):
    cfg = Config.fromfile(str(config))
    init_cfg = cfg.model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained' and init_cfg.checkpoint.startswith('checkpoints/')
    width = cfg.model.backbone.widen_factor
    assert f'{width}x' in init_cfg.checkpoint
    preprocessor = cfg.model.data_preprocessor
    assert preprocessor.mean == [123.675, 116.28, 103.53]
    assert preprocessor.std == [58.395, 57.12, 57.375]
    assert preprocessor.bgr_to_rgb is True


def test_retinanet_feeds_five_levels_from_three_taps():
    cfg = Config.fromfile(str(REPO / 'configs' / 'retinanet_ghostnet.py'))
    model = build_detector(cfg).eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, 128, 128))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2, 1]  # strides 8..128
    assert cfg.model.bbox_head.anchor_generator.strides == [8, 16, 32, 64, 128]


@pytest.mark.parametrize('base', ['atss/atss_r50_fpn_1x_coco.py', 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'])
def test_unmodified_mmdet_config_swaps_in_ghostnet(base, tmp_path):
    """Only custom_imports, model.backbone and the neck's in_channels change.
    out_indices=(2, 4, 6, 8) gives ResNet's C2-C5 strides (4-32), so the
    config's FPN start_level and head strides stay valid."""
    config = tmp_path / 'swap.py'
    config.write_text(
        f"_base_ = 'mmdet::{base}'\n"
        "custom_imports = dict(imports=['ghostnet_mmdet'], allow_failed_imports=False)\n"
        "model = dict(\n"
        "    backbone=dict(_delete_=True, type='GhostNet', out_indices=(2, 4, 6, 8)),\n"
        "    neck=dict(in_channels=[24, 40, 112, 160]))\n")
    cfg = Config.fromfile(str(config))
    model = build_detector(cfg)
    assert isinstance(model.backbone, GhostNet)
    assert cfg.model.neck.start_level == 1
    log_vars = train_step_and_predict(model, size=(128, 128))
    assert 'loss_cls' in log_vars and 'loss_bbox' in log_vars


def test_train_tool_without_coco_fails_clearly(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / 'no_coco'
    status, _, err = run_tool_in_process(
        REPO / 'tools' / 'train.py', REPO / 'configs' / 'retinanet_ghostnet.py', '--work-dir',
        tmp_path / 'work', '--cfg-options', f'train_dataloader.dataset.data_root={missing}/',
        f'val_dataloader.dataset.data_root={missing}/', capsys=capsys)
    assert status == 2
    assert f'{missing}/annotations/instances_train2017.json' in err
    assert f'{missing}/train2017/' in err
    assert 'https://cocodataset.org' in err


@pytest.mark.parametrize('config, base, neck, head, strides', [
    ('ssdlite_ghostnet-1.0x_8xb24-600e_coco.py', 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py',
     'SSDNeck', 'SSDHead', [16, 32, 64, 128, 256, 512]),
    ('ssdlite_ghostnet-1.3x_8xb24-600e_coco.py', None, 'SSDNeck', 'SSDHead', [16, 32, 64, 128, 256, 512]),
    ('ssdlite_ghostnetv2-1.0x_8xb24-600e_coco.py', None, 'SSDNeck', 'SSDHead', [16, 32, 64, 128, 256, 512]),
    ('rtmdet_ghostnet-1.0x_8xb32-300e_coco.py', 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
     'CSPNeXtPAFPN', 'RTMDetSepBNHead', [8, 16, 32])])
def test_mobile_detectors_stand_on_mmdetection_configs(config, base, neck, head, strides):
    """SSDLite and RTMDet configs inherit MMDetection's own (no copies of
    them here) and feed its neck and head from GhostNet's taps: SSDLite the
    last block at stride 16 and the final conv (as MobileNetV2 there),
    RTMDet strides 8, 16, 32."""
    path = REPO / 'configs' / 'ghostnet' / config
    cfg = Config.fromfile(str(path))
    if base is not None:
        assert f"_base_ = '{base}'" in path.read_text()
    assert cfg.model.neck.type == neck and cfg.model.bbox_head.type == head
    model = build_detector(cfg).eval()
    with torch.no_grad():
        features = model.extract_feat(torch.randn(1, 3, 512, 512))
    assert [512 // f.shape[-1] for f in features] == strides
    taps = cfg.model.backbone.out_indices
    assert tuple(taps) == ((6, 9) if head == 'SSDHead' else (4, 6, 8))
