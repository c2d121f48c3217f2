"""GhostPAN and LiteGFLHead (the NanoDet-Plus-class detector): the neck's
shapes for every GhostNet width and tap set, bad arguments named, the
head learning a tiny set, and its INT8 files evaluating in both runtimes.
(Box-for-box export in both runtimes: tests/test_export_configs.py's
PARITY_CONFIGS.)"""
import onnx
import pytest
import torch
from mmcv.cnn import DepthwiseSeparableConvModule
from mmengine.config import Config

from ghostnet_mmdet.deploy import BACKENDS, export_onnx, prepare_for_export
from ghostnet_mmdet.deploy.compare import lost_detections
from ghostnet_mmdet.deploy.quantize import quantize_onnx
from ghostnet_mmdet.deploy.contract import model_feeds
from ghostnet_mmdet.models import GhostBottleneck, GhostNet, GhostPAN, LiteGFLHead

from .detection_utils import (REPO, build_detector, overfit_detector, predict_both,
                              samples_for, shapes_scenes)

CONFIG = REPO / 'configs' / 'ghostnet' / 'litegfl_ghostnet-1.0x_ghostpan_1xb8-1.5k_shapes.py'


@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.1, 1.3])
@pytest.mark.parametrize('out_indices', [(4, 6, 8), (2, 4, 6, 8), (6, 9)])
def test_neck_shapes_for_every_width_and_tap_set(widen_factor, out_indices):
    """GhostNet's feature maps at each width and tap set (channels and
    strides as the backbone gives them, for a 128x128 input) in, one
    ``out_channels`` map per level out, plus the extra level."""
    channels = GhostNet.get_out_channels(widen_factor, out_indices)
    strides = GhostNet.get_out_strides(out_indices)
    features = [torch.rand(1, c, 128 // s, 128 // s) for c, s in zip(channels, strides)]
    neck = GhostPAN(channels, out_channels=64, num_extra_levels=1).eval()
    with torch.no_grad():
        outs = neck(features)
    assert len(outs) == len(out_indices) + 1
    for feature, out in zip(features, outs):
        assert out.shape == (1, 64) + tuple(feature.shape[2:])
    assert outs[-1].shape[2:] == tuple((s + 1) // 2 for s in outs[-2].shape[2:])
    # The package's own ghost bottlenecks fuse, depthwise-separable convs
    # downsample.
    assert all(isinstance(block[0], GhostBottleneck) for block in neck.top_down_blocks)
    assert isinstance(neck.downsamples[0], DepthwiseSeparableConvModule)


def test_neck_blocks_expansion_and_extra_levels():
    neck = GhostPAN([16, 32], out_channels=32, num_extra_levels=2, expand=2, num_blocks=2)
    block = neck.bottom_up_blocks[0]
    assert len(block) == 2 and block[0].ghost1.out_channels == 64
    outs = neck([torch.rand(2, 16, 32, 32), torch.rand(2, 32, 16, 16)])
    assert [tuple(o.shape[2:]) for o in outs] == [(32, 32), (16, 16), (8, 8), (4, 4)]


@pytest.mark.parametrize('kwargs, message', [
    (dict(in_channels=[]), 'in_channels must be a non-empty list'),
    (dict(in_channels='40'), "in_channels must be a non-empty list .* got '40'"),
    (dict(in_channels=[40, 0]), 'every in_channels entry must be an integer >= 1, but got 0'),
    (dict(out_channels=0), 'out_channels must be an integer >= 1, but got 0'),
    (dict(kernel_size=4), 'kernel_size must be odd'),
    (dict(num_blocks=0), 'num_blocks must be an integer >= 1, but got 0'),
    (dict(num_extra_levels=-1), 'num_extra_levels must be an integer >= 0, but got -1'),
    (dict(expand=0), 'expand must be a number > 0, but got 0'),
])
def test_neck_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GhostPAN(**{**dict(in_channels=[40, 112, 160]), **kwargs})


def test_neck_and_head_refuse_the_wrong_number_of_levels():
    neck = GhostPAN([8, 16])
    with pytest.raises(ValueError, match=r'built for 2 input levels \(in_channels=\[8, 16\]\), '
                                         r'but got 3'):
        neck([torch.rand(1, 8, 8, 8)] * 3)
    head = LiteGFLHead(num_classes=3, in_channels=96)
    with pytest.raises(ValueError, match=r'has 4 levels \(strides \[8, 16, 32, 64\]\), but got 3'):
        head([torch.rand(1, 96, 4, 4)] * 3)


@pytest.mark.parametrize('kwargs, message', [
    (dict(kernel_size=4), 'kernel_size must be odd'),
    (dict(reg_max=0), 'reg_max must be an integer >= 1, but got 0'),
    (dict(stacked_convs=0), 'stacked_convs must be an integer >= 1, but got 0'),
])
def test_head_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LiteGFLHead(num_classes=3, in_channels=96, **kwargs)


@pytest.fixture(scope='module')
def learnt(tmp_path_factory):
    """The GhostShapes config's detector with the COCO configs' dynamic
    soft-label assigner (the head's own assignment code; with ATSS, the
    GhostShapes default, it runs GFLHead's) trained on four 128x128 scenes:
    its losses per step, the detector, the scenes."""
    torch.manual_seed(0)  # module fixtures come before the per-test seed
    cfg = Config.fromfile(CONFIG)
    cfg.model.train_cfg.assigner = dict(type='DynamicSoftLabelAssigner', topk=13)
    model = build_detector(cfg)
    images, samples = shapes_scenes(4)
    losses = []
    overfit_detector(model, images, samples, steps=120, losses=losses)
    return cfg, model, images, samples, losses


def test_head_learns_a_tiny_set(learnt):
    """QFL + DFL + GIoU with dynamic soft-label assignment: the loss falls
    to a third, and every object of the scenes of at least 24 px is found
    (same label, IoU >= 0.5, score >= 0.3). Objects of 15-20 px are not yet
    found after 120 steps: the assigner gives each of them a single positive
    prior while its predicted boxes overlap it little (docs/en/lite_detector.md)."""
    from mmdet.structures.bbox import bbox_overlaps
    cfg, model, images, samples, losses = learnt
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 / 3, losses
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=images, data_samples=samples), False)
        results = model.predict(data['inputs'], data['data_samples'])
    missed = []
    for result, sample in zip(results, samples):
        found, truth = result.pred_instances, sample.gt_instances
        for box, label in zip(truth.bboxes, truth.labels):
            if min(box[2] - box[0], box[3] - box[1]) < 24:
                continue
            same = (found.labels == label) & (found.scores >= 0.3)
            if not (same.any() and bbox_overlaps(box[None], found.bboxes[same]).max() >= 0.5):
                missed.append((box.tolist(), int(label)))
    assert not missed, missed


@pytest.mark.parametrize('backend', list(BACKENDS))
def test_int8_file_evaluates_and_keeps_the_objects(backend, learnt, tmp_path):
    """Fused, exported for ``backend`` and quantized for it (calibrated on
    the four scenes), the learnt detector's INT8 file runs through the
    runtime detector and keeps float32's confident detections: same label,
    IoU >= 0.5, score within 0.25 (its quality-focal scores move more than
    RetinaNet's: OpenVINO's INT8 took one from 0.88 to 0.67 on a 2-core
    AVX-512 + VNNI EPYC, its box kept at IoU 0.91)."""
    import copy
    cfg, model, images, _, _ = learnt
    model = prepare_for_export(copy.deepcopy(model), fuse=True)
    fp32, int8 = tmp_path / 'fp32.onnx', tmp_path / 'int8.onnx'
    export_onnx(model, str(fp32), (128, 128), backend=backend,
                classes=[f'c{i}' for i in range(5)])
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=images, data_samples=samples_for(images)),
                                       False)
    feeds = [model_feeds(['input', 'img_shape'], data['inputs'][i:i + 1].numpy())
             for i in range(len(images))]
    record = quantize_onnx(str(fp32), str(int8), feeds, backend=backend)
    assert record['int8_convs'] > 0
    assert any(node.op_type in ('QLinearConv', 'FakeQuantize', 'QuantizeLinear')
               for node in onnx.load(str(int8)).graph.node)
    _, float32 = predict_both(cfg, model, fp32, images, backend)
    _, quantized = predict_both(cfg, model, int8, images, backend)
    for exp, act in zip(float32, quantized):
        assert int((exp.scores >= 0.5).sum()) >= 2, exp.scores[:10]
        assert lost_detections(exp, act, 0.5, 0.25) == []


def test_head_with_a_prior_based_assigner_takes_gflheads_own_loss():
    """With GFL's ATSSAssigner (which looks at the priors alone) the head
    computes GFLHead's own loss; with the dynamic soft-label assigner its
    own: both give finite losses with gradients for the same predictions."""
    from mmengine.structures import InstanceData
    torch.manual_seed(0)
    feats = [torch.rand(2, 32, 64 // s, 64 // s) for s in (8, 16, 32, 64)]
    truth = [InstanceData(bboxes=torch.tensor([[4.0, 6.0, 30.0, 40.0]]),
                          labels=torch.tensor([1])) for _ in range(2)]
    metas = [dict(img_shape=(64, 64), pad_shape=(64, 64))] * 2
    for assigner, own in ((dict(type='ATSSAssigner', topk=9), False),
                          (dict(type='DynamicSoftLabelAssigner', topk=13), True)):
        head = LiteGFLHead(num_classes=3, in_channels=32, feat_channels=32, train_cfg=Config(
            dict(assigner=assigner, allowed_border=-1, pos_weight=-1, debug=False)))
        assert head.assigns_from_predictions is own
        losses = head.loss_by_feat(*head(feats), truth, metas)
        total = sum(sum(v) for v in losses.values())
        assert torch.isfinite(total) and total > 0
        total.backward()
        assert head.gfl_reg[0].weight.grad.abs().sum() > 0
