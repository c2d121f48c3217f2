"""Your own dataset, as docs/en/user_guides/custom_dataset.md tells it: the
guide's config, word for word, trains and evaluates on a COCO-format folder
that is not GhostShapes (its own classes, images of other sizes, JSON at the
root, file names with their sub-folder); the pre-flight check resolves paths
as CocoDataset does; MMDetection's override on a GhostShapes config stops
with one line; VOC and YOLO labels convert to the same COCO boxes."""
import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image, ImageDraw

from ghostnet_mmdet.datasets.converters import read_class_names, voc_to_coco, yolo_to_coco
from ghostnet_mmdet.utils.dataset_check import (DatasetError, check_config_datasets,
                                                check_dataset_files, resolve_dataset_paths)

from .detection_utils import REPO, point_loggers_at_stdout, run_tool_in_process

GUIDE = REPO / 'docs' / 'en' / 'user_guides' / 'custom_dataset.md'
CLASSES = ('balloon', 'kite')
SIZES = [(320, 240), (200, 300), (256, 256), (400, 200)]


def draw_dataset(root: Path, counts=(('train', 8), ('val', 4)), layout='root'):
    """A two-class COCO folder: balloons (ellipses) and kites (triangles) on
    noisy backgrounds of several sizes. ``layout='root'``: one JSON per split
    at the root, file names with their sub-folder; ``'annotations'``:
    annotations/<split>.json and bare file names."""
    rng = np.random.RandomState(0)
    for split, count in counts:
        (root / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            width, height = SIZES[index % len(SIZES)]
            pixels = rng.randint(60, 120, (height, width, 3)).astype(np.uint8)
            image = Image.fromarray(pixels)
            draw = ImageDraw.Draw(image)
            name = f'{split}_{index:03d}.png'
            for _ in range(2):
                label = int(rng.randint(2))
                side = int(rng.randint(30, 70))
                x, y = int(rng.randint(0, width - side)), int(rng.randint(0, height - side))
                color = tuple(int(c) for c in rng.randint(150, 255, 3))
                if label == 0:
                    draw.ellipse([x, y, x + side, y + side], fill=color)
                else:
                    draw.polygon([(x + side / 2, y), (x + side, y + side), (x, y + side)],
                                 fill=color)
                annotations.append(dict(id=len(annotations) + 1, image_id=index + 1,
                                        category_id=label + 1, bbox=[x, y, side, side],
                                        area=side * side, iscrowd=0))
            image.save(root / split / name)
            file_name = f'{split}/{name}' if layout == 'root' else name
            images.append(dict(id=index + 1, file_name=file_name, width=width, height=height))
        content = dict(images=images, annotations=annotations,
                       categories=[dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)])
        ann_file = root / f'{split}.json' if layout == 'root' else \
            root / 'annotations' / f'{split}.json'
        ann_file.parent.mkdir(exist_ok=True)
        ann_file.write_text(json.dumps(content))
    return root


def guide_config() -> str:
    """The guide's config: the first Python block after '## 2. The config'."""
    text = GUIDE.read_text()
    section = text[text.index('## 2. The config'):]
    return re.search(r'```python\n(.*?)```', section, re.S).group(1)


@pytest.fixture(scope='module')
def user_folder(tmp_path_factory):
    """A user's working copy: configs/ as shipped (linked) plus the guide's
    config in configs/my_dataset/, and data/my_dataset/ drawn."""
    folder = tmp_path_factory.mktemp('user')
    (folder / 'configs').mkdir()
    for part in ('_base_', 'ghostnet', 'baselines'):
        os.symlink(REPO / 'configs' / part, folder / 'configs' / part)
    (folder / 'configs' / 'my_dataset').mkdir()
    config = folder / 'configs' / 'my_dataset' / 'litegfl_ghostnet-1.0x_ghostpan_my-dataset.py'
    config.write_text(guide_config())
    draw_dataset(folder / 'data' / 'my_dataset')
    return folder, config


def test_the_guides_config_trains_and_evaluates(user_folder, capsys, monkeypatch):
    folder, config = user_folder
    monkeypatch.chdir(folder)
    work_dir = folder / 'work'
    short = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
             'default_hooks.checkpoint.interval=2', 'train_dataloader.batch_size=4']
    status, out, err = run_tool_in_process(REPO / 'tools' / 'train.py', config, '--work-dir',
                                           work_dir, '--cfg-options', *short, capsys=capsys)
    assert status == 0, (out + err)[-3000:]
    log = out + err
    # The pre-flight check read the guide's layout as CocoDataset does.
    assert re.search(r'data/my_dataset/train\.json: 8 images, 16 boxes of 2 classes', log), log
    assert 'Iter(train) [2/2]' in log
    checkpoint = work_dir / 'iter_2.pth'
    assert checkpoint.is_file()
    results = folder / 'results.pkl'
    status, out, err = run_tool_in_process(REPO / 'tools' / 'test.py', config, checkpoint,
                                           '--out', results, '--work-dir', folder / 'test',
                                           capsys=capsys)
    assert status == 0, (out + err)[-3000:]
    with open(results, 'rb') as f:
        predictions = pickle.load(f)
    # Every validation image, read from its sub-folder, at its own size.
    assert sorted(Path(p['img_path']).name for p in predictions) == \
        [f'val_{i:03d}.png' for i in range(4)]
    assert {tuple(p['ori_shape']) for p in predictions} == \
        {(h, w) for w, h in SIZES}
    cfg = Config.fromfile(str(config))
    assert cfg.model.bbox_head.num_classes == 2
    assert cfg.train_dataloader.dataset.type == 'CocoDataset'


@pytest.mark.parametrize('base', ['retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py',
                                  'yolov3_ghostnet-1.0x_1xb8-1.5k_shapes.py'])
def test_the_guides_config_fits_other_bases(user_folder, base, monkeypatch):
    """The first line changed, the rest of the guide's config holds: the
    pre-flight check passes and the datasets load the user's images."""
    folder, _ = user_folder
    monkeypatch.chdir(folder)
    text = re.sub(r"_base_ = '[^']*'", f"_base_ = '../ghostnet/{base}'", guide_config())
    config = folder / 'configs' / 'my_dataset' / f'other_{base}'
    config.write_text(text)
    cfg = Config.fromfile(str(config))
    check_dataset_files(cfg)
    check_config_datasets(cfg)
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(dataset) == 4 and dataset.metainfo['classes'] == CLASSES


def test_mmdetections_override_on_a_shapes_config_stops_in_one_line(user_folder, capsys,
                                                                      monkeypatch):
    """MMDetection's balloon-guide override (no dataset type) on a
    GhostShapes config: one line naming the change, before anything is
    built, and the user's folder untouched."""
    folder, _ = user_folder
    monkeypatch.chdir(folder)
    config = folder / 'configs' / 'my_dataset' / 'balloon_style.py'
    config.write_text(re.sub(r"type='CocoDataset', ", '', guide_config()))
    before = sorted(p.name for p in (folder / 'data' / 'my_dataset').iterdir())
    status, _, err = run_tool_in_process(REPO / 'tools' / 'train.py', config, '--work-dir',
                                         folder / 'w', capsys=capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err
    assert "data_root='data/my_dataset/' is not a GhostShapes folder" in lines[0]
    assert "set type='CocoDataset'" in lines[0]
    assert sorted(p.name for p in (folder / 'data' / 'my_dataset').iterdir()) == before
    assert not (folder / 'w').exists()


# --- the pre-flight check resolves paths as MMEngine and CocoDataset do -----

LAYOUTS = {
    # name: (layout drawn, data_root, ann_file, img prefix), relative to tmp_path
    'empty prefix': ('root', 'data/', 'train.json', ''),
    'dot prefix': ('root', 'data/', 'train.json', './'),
    'root without slash': ('root', 'data', 'train.json', ''),
    'no data_root': ('root', None, 'data/train.json', 'data/'),
    'folder prefix': ('annotations', 'data/', 'annotations/train.json', 'train/'),
    'absolute paths': ('annotations', 'data/', '{abs}/data/annotations/train.json',
                       '{abs}/data/train/'),
    'absolute, no data_root': ('annotations', None, '{abs}/data/annotations/train.json',
                               '{abs}/data/train/'),
}


@pytest.mark.parametrize('name', LAYOUTS)
def test_the_check_reads_the_paths_coco_dataset_reads(name, tmp_path, monkeypatch):
    layout, data_root, ann_file, prefix = LAYOUTS[name]
    monkeypatch.chdir(tmp_path)
    point_loggers_at_stdout()
    draw_dataset(tmp_path / 'data', counts=(('train', 3),), layout=layout)
    dataset_cfg = dict(type='CocoDataset', data_root=data_root,
                       ann_file=ann_file.format(abs=tmp_path), metainfo=dict(classes=CLASSES),
                       data_prefix=dict(img=prefix.format(abs=tmp_path)), pipeline=[])
    cfg = Config(dict(train_dataloader=dict(dataset=dataset_cfg),
                      model=dict(bbox_head=dict(num_classes=2))))
    check_dataset_files(cfg, ['train'])
    check_config_datasets(cfg, ['train'])
    from mmdet.datasets import CocoDataset
    loaded = CocoDataset(**{k: v for k, v in dataset_cfg.items() if k != 'type'})
    assert len(loaded) == 3
    resolved_ann, prefixes = resolve_dataset_paths(dataset_cfg)
    assert resolved_ann == loaded.ann_file
    assert prefixes['img'] == loaded.data_prefix['img']
    paths = [loaded.get_data_info(i)['img_path'] for i in range(len(loaded))]
    assert all(os.path.isfile(p) for p in paths)
    # An image gone from that layout is named, at the path CocoDataset reads.
    gone = paths[1]
    os.remove(gone)
    with pytest.raises(Exception, match=re.escape(gone)):
        check_config_datasets(cfg, ['train'])


def test_the_check_refuses_what_mmdetection_gets_wrong_silently(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    point_loggers_at_stdout()
    draw_dataset(tmp_path / 'data')
    dataset = dict(type='CocoDataset', data_root='data/', metainfo=dict(classes=CLASSES),
                   ann_file='val.json', data_prefix=dict(img=''))
    cfg = Config(dict(val_dataloader=dict(dataset=dataset), model=dict(
        bbox_head=dict(num_classes=2)), val_evaluator=dict(
            type='CocoMetric', ann_file='data/shapes/annotations/instances_val.json')))
    with pytest.raises(DatasetError, match=r"val_evaluator.ann_file='data/shapes/annotations/"
                       r"instances_val.json' is not the file val_dataloader reads "
                       r"\('data/val.json'\)"):
        check_dataset_files(cfg, ['val'])
    cfg.val_evaluator.ann_file = './data/val.json'  # the same file, written another way
    cfg.model.bbox_head.num_classes = 1
    with pytest.raises(DatasetError, match=r'model.bbox_head.num_classes=1, but val_dataloader.'
                       r'dataset has 2 classes \(balloon, kite\): set model.bbox_head.'
                       r'num_classes=2'):
        check_dataset_files(cfg, ['val'])
    cfg.model.bbox_head.num_classes = 2
    check_dataset_files(cfg, ['val'])


# --- label converters --------------------------------------------------------

def boxes_by_file(content):
    names = {c['id']: c['name'] for c in content['categories']}
    files = {im['id']: im['file_name'] for im in content['images']}
    found = {}
    for ann in content['annotations']:
        found.setdefault(files[ann['image_id']], []).append(
            (names[ann['category_id']], *[round(v, 2) for v in ann['bbox']], ann['iscrowd']))
    return {k: sorted(v) for k, v in found.items()}


@pytest.fixture(scope='module')
def drawn(tmp_path_factory):
    root = draw_dataset(tmp_path_factory.mktemp('labels') / 'coco', counts=(('train', 4),))
    return root, json.loads((root / 'train.json').read_text())


def test_voc_xml_converts_to_the_same_coco_boxes(drawn, tmp_path, capsys):
    root, coco = drawn
    voc = tmp_path / 'voc'
    (voc / 'Annotations').mkdir(parents=True)
    (voc / 'JPEGImages').mkdir()
    (voc / 'ImageSets' / 'Main').mkdir(parents=True)
    names = {c['id']: c['name'] for c in coco['categories']}
    stems = []
    for image in coco['images']:
        stem = Path(image['file_name']).stem
        stems.append(stem)
        os.symlink(root / image['file_name'], voc / 'JPEGImages' / f'{stem}.png')
        objects = ''.join(
            f"<object><name>{names[a['category_id']]}</name><difficult>0</difficult><bndbox>"
            f"<xmin>{a['bbox'][0] + 1}</xmin><ymin>{a['bbox'][1] + 1}</ymin>"
            f"<xmax>{a['bbox'][0] + a['bbox'][2]}</xmax><ymax>{a['bbox'][1] + a['bbox'][3]}</ymax>"
            '</bndbox></object>'
            for a in coco['annotations'] if a['image_id'] == image['id'])
        (voc / 'Annotations' / f'{stem}.xml').write_text(
            f"<annotation><filename>{stem}.png</filename>{objects}</annotation>")
    (voc / 'ImageSets' / 'Main' / 'train.txt').write_text('\n'.join(stems[:3]) + '\n')
    out = voc / 'train.json'
    status, printed, err = run_tool_in_process(
        REPO / 'tools' / 'dataset_converters' / 'voc2coco.py', voc, '--split-file',
        'ImageSets/Main/train.txt', '--out', out, capsys=capsys)
    assert status == 0, err
    assert '3 images, 6 boxes, 2 classes (balloon, kite)' in printed
    converted = json.loads(out.read_text())
    expected = {f'JPEGImages/{Path(k).name}': v for k, v in boxes_by_file(coco).items()
                if Path(k).stem in stems[:3]}
    assert boxes_by_file(converted) == expected
    assert [im['width'] for im in converted['images']] == [w for w, _ in SIZES[:3]]
    # An object of a class not given is refused, naming the file.
    with pytest.raises(DatasetError, match=r"train_000.xml: class 'kite' is not among"):
        voc_to_coco(str(voc), classes=['balloon'])


def test_yolo_txt_converts_to_the_same_coco_boxes(drawn, tmp_path, capsys):
    root, coco = drawn
    yolo = tmp_path / 'yolo'
    (yolo / 'images' / 'train').mkdir(parents=True)
    (yolo / 'labels' / 'train').mkdir(parents=True)
    (yolo / 'data.yaml').write_text('names:\n  0: balloon\n  1: kite\n')
    for image in coco['images']:
        name = Path(image['file_name']).name
        os.symlink(root / image['file_name'], yolo / 'images' / 'train' / name)
        w, h = image['width'], image['height']
        lines = [f"{a['category_id'] - 1} {(a['bbox'][0] + a['bbox'][2] / 2) / w:.6f} "
                 f"{(a['bbox'][1] + a['bbox'][3] / 2) / h:.6f} {a['bbox'][2] / w:.6f} "
                 f"{a['bbox'][3] / h:.6f}"
                 for a in coco['annotations'] if a['image_id'] == image['id']]
        if image['id'] != 4:  # an image without a label file: no objects
            (yolo / 'labels' / 'train' / f'{Path(name).stem}.txt').write_text('\n'.join(lines))
    out = yolo / 'train.json'
    status, printed, err = run_tool_in_process(
        REPO / 'tools' / 'dataset_converters' / 'yolo2coco.py', yolo, '--img-dir',
        'images/train', '--names', yolo / 'data.yaml', '--out', out, capsys=capsys)
    assert status == 0, err
    assert '4 images, 6 boxes, 2 classes (balloon, kite)' in printed
    converted = json.loads(out.read_text())
    expected = {f'images/{k}': v for k, v in boxes_by_file(coco).items() if 'train_003' not in k}
    assert boxes_by_file(converted) == expected
    assert read_class_names(str(yolo / 'data.yaml')) == list(CLASSES)
    # Bad lines are refused with the file, the line number and the rule.
    (yolo / 'labels' / 'train' / 'train_000.txt').write_text('0 0.5 0.5 0.2 0.2\n5 0.5 0.5 0.1 0.1')
    with pytest.raises(DatasetError, match=r'train_000.txt:2: class 5 is out of range: there '
                       r'are 2 class names \(0-1\)'):
        yolo_to_coco(str(yolo), 'images/train', CLASSES)
    (yolo / 'labels' / 'train' / 'train_000.txt').write_text('0 0.5 0.5 0.2')
    status, _, err = run_tool_in_process(
        REPO / 'tools' / 'dataset_converters' / 'yolo2coco.py', yolo, '--img-dir',
        'images/train', '--classes', *CLASSES, '--out', out, capsys=capsys)
    assert status == 2
    assert err.strip().splitlines() == [
        f"error: {yolo}/labels/train/train_000.txt:1: expected \"class cx cy w h\" (five "
        "numbers, normalised boxes), got '0 0.5 0.5 0.2'"]
