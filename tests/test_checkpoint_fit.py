"""A checkpoint that does not fit the detector is refused by test.py and
demo.py with what it looks like (not evaluated to mAP 0.000); load_from in
training takes a partial match and says what it did not load; truncated and
non-checkpoint files are named by every tool."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.evaluation import get_classes
from mmdet.registry import MODELS
from ghostnet_mmdet.apis import check_detector_checkpoint, identify_ghostnet
from ghostnet_mmdet.datasets import SHAPE_CLASSES
from ghostnet_mmdet.models import GhostNet
from ghostnet_mmdet.utils import mmdet_to_official
from ghostnet_mmdet.utils.safe_load import CheckpointMismatchError

from .detection_utils import REPO, run_tool_in_process

TOOLS = REPO / 'tools'


def imagenet_checkpoint(path, widen_factor):
    """An official-layout ImageNet GhostNet, classifier included."""
    backbone = GhostNet(widen_factor=widen_factor, out_indices=(2, 4, 6, 8, 9))
    state = mmdet_to_official(backbone.state_dict())
    final = backbone.stage_channels[-1]
    state.update({'conv_head.weight': torch.zeros(1280, final, 1, 1),
                  'conv_head.bias': torch.zeros(1280), 'classifier.weight': torch.zeros(1000, 1280),
                  'classifier.bias': torch.zeros(1000)})
    torch.save(state, path)
    return path


def detector_checkpoint(path, config, classes, **model):
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({f'model.{k}': v for k, v in model.items()})
    cfg.model.bbox_head.num_classes = len(classes)
    init_default_scope('mmdet')
    detector = MODELS.build(cfg.model)
    torch.save(dict(state_dict=detector.state_dict(),
                    meta=dict(dataset_meta=dict(classes=tuple(classes)))), path)
    return path


@pytest.fixture(scope='module')
def wrong(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp('wrong')
    config = trained[1]
    good = trained[3] / 'iter_6.pth'
    truncated = folder / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:100000])
    text = folder / 'readme.pth'
    text.write_text('download the weights from the project page\n')
    return dict(
        imagenet=imagenet_checkpoint(folder / 'ghostnet_130_imagenet.pth', 1.3),
        width=detector_checkpoint(folder / 'wide.pth', config, SHAPE_CLASSES,
                                  **{'backbone.widen_factor': 1.3,
                                     'neck.in_channels': [52, 144, 208]}),
        classes=detector_checkpoint(folder / 'coco80.pth', config, get_classes('coco')),
        truncated=truncated, text=text)


EXPECTED = dict(
    imagenet=('it is a GhostNet-1.3x backbone (ImageNet-style weights, no neck or head), not '
              "a detector: use it as the backbone's pretrained weights, "
              "model.backbone.init_cfg=dict(type='Pretrained'"),
    width="its backbone is a GhostNet-1.3x, this config's is GhostNet-1.0x",
    classes=('it is a detector for 80 classes (person, bicycle, car, motorcycle, ...), this '
             'config has 5'),
    truncated='is a truncated or damaged checkpoint',
    text="is not a PyTorch checkpoint: a file starting with b'down'")


@pytest.mark.parametrize('case', sorted(EXPECTED))
def test_test_and_demo_refuse_what_does_not_fit(case, wrong, trained, capsys, monkeypatch):
    folder, config, data_root = trained[:3]
    monkeypatch.chdir(folder)
    checkpoint = wrong[case]
    for command in ((TOOLS / 'test.py', config, checkpoint, '--work-dir', folder / f'x_{case}'),
                    (TOOLS / 'demo.py', data_root / 'val' / '000000.jpg', config, checkpoint,
                     '--out-dir', folder / f'demo_{case}')):
        status, stdout, stderr = run_tool_in_process(*command, capsys=capsys)
        assert status == 2, stderr[-3000:]
        # (A warning of MMEngine's may come first: a visualizer already made
        # by another tool run in this process.)
        errors = [line for line in stderr.splitlines() if line.startswith('error: ')]
        assert errors and (errors[0].startswith(f'error: {checkpoint}') or
                           errors[0].startswith('error: refusing')), stderr[-3000:]
        assert 'Traceback' not in stderr and 'bbox_mAP' not in stdout
        assert str(checkpoint) in stderr and EXPECTED[case] in stderr, stderr[-3000:]
        if case in ('imagenet', 'width', 'classes'):
            assert 'tensor(s) of another shape' in stderr or 'tensor(s) not in the checkpoint' in stderr
    assert not (folder / f'demo_{case}').exists()  # nothing drawn


def test_load_from_takes_a_partial_match_and_says_so(wrong, trained, tmp_path, capsys,
                                                    monkeypatch):
    folder, config = trained[:2]
    monkeypatch.chdir(folder)
    status, out, err = run_tool_in_process(
        TOOLS / 'train.py', config, '--work-dir', tmp_path / 'finetune', '--cfg-options',
        f'load_from={wrong["classes"]}', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        capsys=capsys)
    assert status == 0, err[-3000:]
    log = out + err
    assert f'load_from {wrong["classes"]}: a partial match, tensors loaded per module: ' in log
    assert 'backbone 423/423, neck 16/16, bbox_head 14/16' in log and 'bbox_head.retina_cls.weight' in log
    assert (tmp_path / 'finetune' / 'iter_2.pth').is_file()


@pytest.mark.parametrize('case', ['imagenet', 'truncated'])
def test_load_from_refuses_what_fits_nothing(case, wrong, trained, tmp_path, capsys, monkeypatch):
    folder, config = trained[:2]
    monkeypatch.chdir(folder)
    status, _, stderr = run_tool_in_process(TOOLS / 'train.py', config, '--work-dir', tmp_path / 'w',
                                            '--cfg-options', f'load_from={wrong[case]}',
                                            capsys=capsys)
    assert status == 2 and str(wrong[case]) in stderr
    assert EXPECTED[case] in stderr
    if case == 'imagenet':
        assert 'fits nothing of this detector' in stderr


def test_the_trained_checkpoint_fits(trained):
    config, work_dir = trained[1], trained[3]
    init_default_scope('mmdet')
    detector = MODELS.build(Config.fromfile(config).model)
    comparison = check_detector_checkpoint(detector, str(work_dir / 'iter_6.pth'))
    assert comparison.fits and not comparison.unexpected
    assert len(comparison.loaded) == len(detector.state_dict())


def test_widths_are_named():
    for width in (0.5, 1.0, 1.3):
        state = GhostNet(widen_factor=width, out_indices=(4, 6, 8)).state_dict()
        assert identify_ghostnet(state) == f'a GhostNet-{width:.1f}x'
        assert identify_ghostnet(mmdet_to_official(state)) == f'a GhostNet-{width:.1f}x'
    resnet_like = {'conv1.weight': torch.zeros(64, 3, 7, 7),
                   'layer1.0.conv1.weight': torch.zeros(64, 64, 1, 1)}
    assert identify_ghostnet(resnet_like) is None


def test_mismatch_error_lists_the_first_keys(wrong, trained):
    config = trained[1]
    init_default_scope('mmdet')
    detector = MODELS.build(Config.fromfile(config).model)
    with pytest.raises(CheckpointMismatchError) as info:
        check_detector_checkpoint(detector, str(wrong['width']))
    message = str(info.value)
    assert 'tensors loaded per module: backbone' in message
    assert 'backbone.stem.conv.weight: checkpoint (16, 3, 3, 3), model (16, 3, 3, 3)' not in message
    assert 'of another shape' in message and 'checkpoint (' in message
