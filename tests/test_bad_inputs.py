"""Every row of the README's table of bad inputs: what the user gets wrong,
and the clear error (or the clear handling) they see - before the first
training iteration, config and model errors before any data is read."""
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import DATASETS
from ghostnet_mmdet.apis.config_check import ConfigError, check_detector_config, check_machine
from ghostnet_mmdet.datasets import SHAPE_CLASSES, generate_shapes_dataset
from ghostnet_mmdet.utils.dataset_check import (DatasetError, DatasetNotFoundError,
                                                check_coco_dataset)

from .detection_utils import REPO, SHAPES_CONFIG, run_tool_in_process

CONFIGS = REPO / 'configs' / 'ghostnet'
YOLOV3_CONFIG = CONFIGS / 'yolov3_ghostnet-1.0x_8xb24-ms-416-300e_coco.py'


def shapes_config(**model):
    cfg = Config.fromfile(SHAPES_CONFIG)
    cfg.merge_from_dict({f'model.{k}': v for k, v in model.items()})
    return cfg


# --- config and model: refused before anything is built -------------------

def test_neck_channels_for_another_width():
    with pytest.raises(ConfigError) as info:
        check_detector_config(shapes_config(**{'backbone.widen_factor': 1.3}))
    message = str(info.value)
    assert 'model.neck.in_channels=[40, 112, 160] does not fit the backbone' in message
    assert 'GhostNet(widen_factor=1.3, out_indices=(4, 6, 8)) outputs [52, 144, 208]' in message
    assert 'Set model.neck.in_channels=[52, 144, 208]' in message


def test_neck_with_fewer_inputs_than_backbone_outputs():
    with pytest.raises(ConfigError, match=r'3 inputs, but the backbone has 4 outputs.*'
                       r'in_channels=\[24, 40, 112, 160\]'):
        check_detector_config(shapes_config(**{'backbone.out_indices': (2, 4, 6, 8)}))


def test_yolov3_neck_takes_channels_deepest_first():
    cfg = Config.fromfile(YOLOV3_CONFIG)
    check_detector_config(cfg)  # the shipped config is right
    cfg.model.neck.in_channels = [40, 112, 160]
    with pytest.raises(ConfigError, match=r'outputs \[160, 112, 40\] channels \(deepest first'):
        check_detector_config(cfg)


def test_fpn_levels_that_do_not_add_up():
    with pytest.raises(ConfigError, match=r'start_level=3 must be in range\(0, 3\)'):
        check_detector_config(shapes_config(**{'neck.start_level': 3}))
    with pytest.raises(ConfigError, match=r'num_outs=2 is less than the 3 inputs'):
        check_detector_config(shapes_config(**{'neck.num_outs': 2}))


def test_anchor_strides_that_are_not_the_feature_strides():
    with pytest.raises(ConfigError) as info:
        check_detector_config(shapes_config(
            **{'bbox_head.anchor_generator.strides': [4, 8, 16, 32, 64]}))
    assert ('model.bbox_head.anchor_generator.strides=[4, 8, 16, 32, 64] does not match the '
            'feature maps the head gets: strides [8, 16, 32, 64, 128]') in str(info.value)


def test_bad_backbone_arguments_name_the_key():
    with pytest.raises(ConfigError, match=r'model.backbone: widen_factor must be a positive'):
        check_detector_config(shapes_config(**{'backbone.widen_factor': -1.0}))
    with pytest.raises(ConfigError, match=r'model.backbone: out_indices must be in range\(0, 10\)'):
        check_detector_config(shapes_config(**{'backbone.out_indices': (4, 6, 10)}))


def test_every_shipped_config_passes():
    for path in sorted((REPO / 'configs').rglob('*.py')):
        if '_base_' not in path.parts:
            check_detector_config(Config.fromfile(path))


def test_amp_and_sync_bn_without_a_gpu():
    cfg = Config.fromfile(SHAPES_CONFIG)
    with pytest.raises(ConfigError, match='--amp needs a CUDA GPU'):
        check_machine(cfg, amp=True)
    cfg.launcher = 'pytorch'
    cfg.model.backbone.norm_cfg = dict(type='SyncBN')
    with pytest.raises(ConfigError, match='SyncBN needs GPUs'):
        check_machine(cfg)


def test_train_tool_reports_config_errors_before_reading_data(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run_tool_in_process(
        REPO / 'tools' / 'train.py', SHAPES_CONFIG, '--work-dir', tmp_path / 'w', '--cfg-options',
        'model.backbone.widen_factor=1.3', f'train_dataloader.dataset.data_root={tmp_path}/data/',
        capsys=capsys)
    assert status == 2
    assert 'error: model.neck.in_channels=[40, 112, 160] does not fit' in err
    assert not (tmp_path / 'data').exists()  # no data was made or read
    status, _, err = run_tool_in_process(REPO / 'tools' / 'train.py', SHAPES_CONFIG, '--amp',
                                         '--work-dir', tmp_path / 'w', capsys=capsys)
    assert status == 2 and 'error: --amp needs a CUDA GPU' in err


# --- datasets: refused clearly, or read correctly and counted --------------

@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco') / 'shapes'
    generate_shapes_dataset(str(root), dict(train=6, val=3), image_size=64, verbose=False)
    return root


@pytest.fixture
def copy_of(coco_root, tmp_path):
    root = tmp_path / 'data'
    shutil.copytree(coco_root, root)
    return root


def annotations(root):
    return json.loads((root / 'annotations' / 'instances_train.json').read_text())


def write_annotations(root, content):
    (root / 'annotations' / 'instances_train.json').write_text(json.dumps(content))


def check(root, classes=SHAPE_CLASSES, **kwargs):
    return check_coco_dataset(str(root / 'annotations' / 'instances_train.json'),
                              str(root / 'train'), classes, **kwargs)


def test_annotation_file_missing_not_json_or_not_coco(copy_of):
    ann = copy_of / 'annotations' / 'instances_train.json'
    ann.unlink()
    with pytest.raises(DatasetNotFoundError, match='annotation file not found'):
        check(copy_of)
    ann.write_text('{"images": [')
    with pytest.raises(DatasetError, match='is not COCO JSON: it does not parse as JSON'):
        check(copy_of)
    ann.write_text(json.dumps(dict(images=[], annotations={})))
    with pytest.raises(DatasetError, match="is not COCO JSON: no 'categories'"):
        check(copy_of)


def test_classes_that_are_not_categories_of_the_file(copy_of):
    with pytest.raises(DatasetError) as info:
        check(copy_of, classes=('circle', 'hexagon'))
    assert "the config's classes hexagon are not categories of" in str(info.value)
    assert 'which has 5: circle, square, triangle, star, cross' in str(info.value)
    assert check(copy_of, classes=('circle', 'star'))['other_classes'] > 0  # a subset is fine


def test_listed_image_missing_corrupt_or_of_another_size(copy_of):
    content = annotations(copy_of)
    first, second, third = (copy_of / 'train' / im['file_name'] for im in content['images'][:3])
    first.write_bytes(b'not a jpeg at all')
    with pytest.raises(DatasetError, match=rf'{first}: not a readable image'):
        check(copy_of)
    first.unlink()
    with pytest.raises(DatasetNotFoundError, match=r'1 image\(s\) listed in .* are missing'):
        check(copy_of)
    content['images'] = content['images'][1:]  # its boxes stay: counted, not refused
    write_annotations(copy_of, content)
    assert check(copy_of, check_images=False)['unknown_image'] > 0
    cv2.imwrite(str(second), np.zeros((32, 48, 3), np.uint8))
    with pytest.raises(DatasetError, match=r'48x32 on disk, but the annotation file says 64x64'):
        check(copy_of)
    assert third.is_file()


def test_grayscale_rgba_and_16_bit_images_load_as_8_bit_bgr(copy_of):
    content = annotations(copy_of)
    colour = cv2.imread(str(copy_of / 'train' / content['images'][0]['file_name']))
    gray = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    variants = {'gray.png': gray,
                'rgba.png': cv2.cvtColor(colour, cv2.COLOR_BGR2BGRA),
                'deep.png': gray.astype(np.uint16) * 257}
    for name, pixels in variants.items():
        cv2.imwrite(str(copy_of / 'train' / name), pixels)
    content['images'] = [dict(content['images'][0], id=100 + i, file_name=name)
                         for i, name in enumerate(variants)]
    content['annotations'] = [dict(a, id=1000 + i, image_id=100 + i)
                              for i, a in enumerate(content['annotations'][:3])]
    write_annotations(copy_of, content)
    assert check(copy_of)['boxes'] == 3
    init_default_scope('mmdet')
    dataset = DATASETS.build(dict(
        type='CocoDataset', data_root=str(copy_of) + '/', metainfo=dict(classes=SHAPE_CLASSES),
        ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)]))
    loaded = {Path(item['img_path']).name: item['img'] for item in dataset}
    for name in variants:
        assert loaded[name].shape == (64, 64, 3) and loaded[name].dtype == np.uint8
    expected_gray = np.repeat(gray[..., None], 3, axis=2)
    assert np.array_equal(loaded['gray.png'], expected_gray)
    assert np.array_equal(loaded['deep.png'], expected_gray)  # 16 bit scaled to 8
    assert np.array_equal(loaded['rgba.png'], colour)


def test_images_without_boxes_and_unusable_boxes_are_counted(copy_of):
    content = annotations(copy_of)
    kept_image = content['images'][0]['id']
    boxes = [a for a in content['annotations'] if a['image_id'] == kept_image]
    extra = [dict(boxes[0], id=900, bbox=[10, 10, 0, 5], area=0),         # zero size
             dict(boxes[0], id=901, bbox=[70, 70, 10, 10], area=100),     # outside 64x64
             dict(boxes[0], id=902, bbox=[-5, 10, 20, 20], area=400)]     # crosses the border
    content['annotations'] = boxes + extra
    write_annotations(copy_of, content)
    counts = check(copy_of, filter_empty_gt=True)
    assert counts['empty_images'] == len(content['images']) - 1
    assert counts['zero_size'] == 1 and counts['outside'] == 1 and counts['crossing_border'] == 1
    assert counts['boxes'] == len(boxes) + 1


def test_malformed_boxes_are_refused(copy_of):
    content = annotations(copy_of)
    content['annotations'][0]['bbox'] = [1, 2, 3]
    write_annotations(copy_of, content)
    with pytest.raises(DatasetError, match=r'a box must be \[x, y, width, height\] of four finite '
                       r'numbers, but annotation .* has bbox=\[1, 2, 3\]'):
        check(copy_of)


def test_train_tool_reports_dataset_errors(copy_of, tmp_path, capsys, monkeypatch):
    content = annotations(copy_of)
    content['categories'][0]['name'] = 'ellipse'
    write_annotations(copy_of, content)
    config = tmp_path / 'coco_style.py'
    config.write_text(f"""
_base_ = '{SHAPES_CONFIG}'
train_dataloader = dict(dataset=dict(type='CocoDataset', _delete_=True, data_root='{copy_of}/',
    metainfo=dict(classes={SHAPE_CLASSES!r}), ann_file='annotations/instances_train.json',
    data_prefix=dict(img='train/'), pipeline={{{{_base_.train_pipeline}}}}))
val_cfg = None
val_dataloader = None
val_evaluator = None
""")
    monkeypatch.chdir(tmp_path)
    status, _, err = run_tool_in_process(REPO / 'tools' / 'train.py', config, '--work-dir',
                                         tmp_path / 'w', capsys=capsys)
    assert status == 2, err[-2000:]
    assert "error: the config's classes circle are not categories of" in err
