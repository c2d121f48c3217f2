"""The main job in miniature: generate a tiny GhostShapes set, train a few
iterations with tools/train.py, evaluate with CocoMetric (pycocotools),
reload the checkpoint with tools/test.py (--show-dir), and draw a demo
picture with tools/demo.py."""
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHAPES_CONFIG = REPO / 'configs' / 'ghostnet' / 'retinanet_ghostnet-1.0x_fpn_shapes.py'
METRIC_KEYS = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75', 'coco/bbox_mAP_s',
               'coco/bbox_mAP_m', 'coco/bbox_mAP_l')


def run_tool(*args, cwd):
    result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                            cwd=cwd, env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def write_tiny_config(folder):
    """A user's config on top of the shapes config: tiny data, 6 iterations."""
    data_root = f'{folder}/shapes/'
    config = Path(folder) / 'tiny_shapes.py'
    config.write_text(f"""
_base_ = '{SHAPES_CONFIG}'
data_root = '{data_root}'
shapes = dict(splits=dict(train=12, val=6), image_size=256, seed=3, generate_if_missing=True)
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root, **shapes))
val_dataloader = dict(batch_size=3, dataset=dict(data_root=data_root, **shapes))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_iters=6, val_interval=6)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)]
default_hooks = dict(checkpoint=dict(interval=6), logger=dict(interval=2))
# An untrained model scores low; keep its boxes so that every metric exists.
model = dict(test_cfg=dict(score_thr=0.0))
""")
    return config, Path(data_root)


def read_metrics(work_dir):
    """The metrics MMEngine wrote for the last evaluation in work_dir."""
    files = sorted(glob.glob(f'{work_dir}/*/vis_data/scalars.json')) + \
        sorted(glob.glob(f'{work_dir}/*/*.json'))
    assert files, f'no metrics written under {work_dir}'
    metrics = {}
    for path in files:
        for line in Path(path).read_text().splitlines():
            record = json.loads(line)
            if any(k in record for k in METRIC_KEYS):
                metrics = record
    return metrics


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp('e2e')
    config, data_root = write_tiny_config(folder)
    work_dir = folder / 'work'
    result = run_tool(REPO / 'tools' / 'train.py', config, '--work-dir', work_dir, cwd=folder)
    return folder, config, data_root, work_dir, result.stdout + result.stderr


def test_data_was_generated_as_coco(trained):
    _, _, data_root, _, log = trained
    assert 'GhostShapes: drawing 12 train images' in log
    for split, count in (('train', 12), ('val', 6)):
        content = json.loads((data_root / 'annotations' / f'instances_{split}.json').read_text())
        assert len(content['images']) == count
        assert len(content['categories']) == 5
        assert all((data_root / split / im['file_name']).is_file() for im in content['images'])


def test_training_logs_progress_and_evaluates_with_coco_metric(trained):
    _, _, _, work_dir, log = trained
    assert 'Iter(train) [6/6]' in log  # progress lines from MMEngine's logger
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all' in log  # pycocotools
    metrics = read_metrics(work_dir)
    for key in METRIC_KEYS:
        assert key in metrics and 0.0 <= metrics[key] <= 1.0, (key, metrics)


def test_checkpoint_reloads_with_test_tool_and_paints_the_split(trained):
    folder, config, _, work_dir, _ = trained
    checkpoint = work_dir / 'iter_6.pth'
    state = torch.load(checkpoint, weights_only=False)
    assert state['meta']['iter'] == 6 and 'backbone.stem.conv.weight' in state['state_dict']
    assert state['meta']['dataset_meta']['classes'] == ['circle', 'square', 'triangle', 'star', 'cross'] or \
        tuple(state['meta']['dataset_meta']['classes']) == ('circle', 'square', 'triangle', 'star', 'cross')
    test_dir = folder / 'test'
    run_tool(REPO / 'tools' / 'test.py', config, checkpoint, '--work-dir', test_dir,
             '--show-dir', 'painted', cwd=folder)
    metrics = read_metrics(test_dir)
    for key in METRIC_KEYS:
        assert 0.0 <= metrics[key] <= 1.0
    painted = glob.glob(f'{test_dir}/*/painted/*.jpg')
    assert len(painted) == 6
    image = cv2.imread(painted[0])
    # Ground truth and prediction side by side, each at the image's size.
    assert image.shape == (256, 512, 3)


def test_demo_draws_a_picture(trained):
    folder, config, data_root, work_dir, _ = trained
    out_dir = folder / 'demo'
    result = run_tool(REPO / 'tools' / 'demo.py', data_root / 'val' / '000000.jpg',
                      data_root / 'val' / '000001.jpg', config, work_dir / 'iter_6.pth',
                      '--out-dir', out_dir, '--score-thr', '0.0', cwd=folder)
    assert 'wrote 2 picture(s)' in result.stdout
    picture = cv2.imread(str(out_dir / '000000.png'))
    assert picture is not None and picture.shape == (256, 256, 3)
    original = cv2.imread(str(data_root / 'val' / '000000.jpg'))
    # Boxes were drawn: the picture differs from the image it was made from.
    assert (cv2.absdiff(picture, original) > 40).mean() > 0.001


def test_demo_with_missing_input_fails_clearly(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / 'tools' / 'demo.py'), str(tmp_path / 'nope.jpg'),
                             str(SHAPES_CONFIG), str(tmp_path / 'x.pth')],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert f'input not found: {tmp_path}/nope.jpg' in result.stderr
