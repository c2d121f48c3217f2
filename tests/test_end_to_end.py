"""The main job in miniature: generate a tiny GhostShapes set, train a few
iterations with tools/train.py, evaluate with CocoMetric (pycocotools),
reload the checkpoint with tools/test.py (--show-dir), and draw a demo
picture with tools/demo.py."""
import glob
import json

import cv2

from ghostnet_mmdet.utils.safe_load import safe_torch_load

from .detection_utils import (METRIC_KEYS, REPO, SHAPES_CONFIG, read_metrics, run_tool,
                              run_tool_in_process)


def test_data_was_generated_as_coco(trained):
    _, _, data_root, _, log = trained
    assert 'GhostShapes: drawing 12 train images' in log
    assert 'generator v4, splits' in log and 'content sha256' in log  # the fingerprint
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
    state = safe_torch_load(str(checkpoint))  # weights-only, with the allowlist
    assert state['meta']['iter'] == 6 and 'backbone.stem.conv.weight' in state['state_dict']
    assert state['meta']['dataset_meta']['classes'] == ['circle', 'square', 'triangle', 'star', 'cross'] or \
        tuple(state['meta']['dataset_meta']['classes']) == ('circle', 'square', 'triangle', 'star', 'cross')
    test_dir = folder / 'test'
    run_tool(REPO / 'tools' / 'test.py', config, checkpoint, '--work-dir', test_dir,
             '--show-dir', 'painted', cwd=folder)
    metrics = read_metrics(test_dir)
    trained_metrics = read_metrics(work_dir)  # the evaluation at the end of training
    for key in METRIC_KEYS:
        assert 0.0 <= metrics[key] <= 1.0
        # The deploy and ncnn tests compare their runtimes with these.
        assert metrics[key] == trained_metrics[key], key
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


def test_demo_with_missing_input_fails_clearly(tmp_path, capsys):
    status, _, err = run_tool_in_process(REPO / 'tools' / 'demo.py', tmp_path / 'nope.jpg',
                                         SHAPES_CONFIG, tmp_path / 'x.pth', capsys=capsys)
    assert status == 2
    assert f'input not found: {tmp_path}/nope.jpg' in err
