"""The built-in GhostShapes dataset: generation, COCO format, and clear
errors for broken dataset input."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from pycocotools.coco import COCO

from mmdet.registry import DATASETS
from ghostnet_mmdet.datasets import SHAPE_CLASSES, generate_shapes_dataset
from ghostnet_mmdet.datasets.shapes import content_digest
from ghostnet_mmdet.utils.dataset_check import DatasetNotFoundError


def digest(root):
    sha = hashlib.sha256()
    for path in sorted(Path(root).rglob('*')):
        if path.is_file():
            sha.update(path.relative_to(root).as_posix().encode())
            sha.update(path.read_bytes())
    return sha.hexdigest()


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes') / 'shapes'
    assert generate_shapes_dataset(str(root), dict(train=80, val=20), verbose=False)
    return root


def test_layout_and_coco_format(sample):
    for split, count in (('train', 80), ('val', 20)):
        coco = COCO(str(sample / 'annotations' / f'instances_{split}.json'))
        assert len(coco.getImgIds()) == count
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(SHAPE_CLASSES)
        for image in coco.loadImgs(coco.getImgIds()):
            assert (sample / split / image['file_name']).is_file()
            assert image['width'] == image['height'] == 256
    meta = json.loads((sample / 'meta.json').read_text())
    assert meta['splits'] == {'train': 80, 'val': 20}


def test_objects_are_not_trivial(sample):
    coco = COCO(str(sample / 'annotations' / 'instances_train.json'))
    annotations = coco.loadAnns(coco.getAnnIds())
    labels = {a['category_id'] for a in annotations}
    assert len(labels) == 5  # all five classes
    sides = np.array([max(a['bbox'][2], a['bbox'][3]) for a in annotations])
    assert sides.min() <= 11 and sides.max() >= 100  # about 8 px to half of 256
    assert (sides < 32).mean() > 0.25  # COCO-small objects are common
    # Objects overlap in some images (partial occlusion).
    overlaps = 0
    for image_id in coco.getImgIds():
        boxes = [a['bbox'] for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id))]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                (x1, y1, w1, h1), (x2, y2, w2, h2) = boxes[i], boxes[j]
                if min(x1 + w1, x2 + w2) > max(x1, x2) and min(y1 + h1, y2 + h2) > max(y1, y2):
                    overlaps += 1
    assert overlaps >= 10
    # Every box lies inside its image.
    for a in annotations:
        x, y, w, h = a['bbox']
        assert x >= 0 and y >= 0 and x + w <= 256 and y + h <= 256 and w > 0 and h > 0


def test_colour_does_not_tell_the_class(sample):
    import cv2
    coco = COCO(str(sample / 'annotations' / 'instances_train.json'))
    means = {c: [] for c in range(1, 6)}
    for image in coco.loadImgs(coco.getImgIds()[:40]):
        pixels = cv2.imread(str(sample / 'train' / image['file_name']))
        for a in coco.loadAnns(coco.getAnnIds(imgIds=image['id'])):
            x, y, w, h = (int(v) for v in a['bbox'])
            if w >= 12 and h >= 12:  # the centre of a shape is the shape's colour
                means[a['category_id']].append(pixels[y + h // 2, x + w // 2].astype(float))
    spreads = [np.std(np.array(values), axis=0).mean() for values in means.values() if len(values) > 3]
    assert len(spreads) == 5 and min(spreads) > 30


def test_generation_is_deterministic_and_idempotent(sample, tmp_path):
    again = tmp_path / 'again'
    generate_shapes_dataset(str(again), dict(train=80, val=20), verbose=False)
    assert digest(again) == digest(sample)
    # The fingerprint that training logs, to compare machines with.
    assert content_digest(str(again)) == content_digest(str(sample))
    assert generate_shapes_dataset(str(again), dict(train=80, val=20), verbose=False) is False
    other = tmp_path / 'other'
    generate_shapes_dataset(str(other), dict(train=80, val=20), seed=1, verbose=False)
    assert digest(other) != digest(sample)
    assert content_digest(str(other)) != content_digest(str(sample))
    # Other parameters replace the files.
    assert generate_shapes_dataset(str(again), dict(train=5, val=3), verbose=False) is True
    assert len(list((again / 'train').iterdir())) == 5


def test_generator_refuses_a_foreign_folder_and_bad_sizes(tmp_path):
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'notes.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='not a GhostShapes dataset'):
        generate_shapes_dataset(str(tmp_path / 'mine'), dict(train=2, val=2), verbose=False)
    assert (tmp_path / 'mine' / 'notes.txt').exists()
    with pytest.raises(ValueError, match="split 'train' needs a positive number of images, got 0"):
        generate_shapes_dataset(str(tmp_path / 'x'), dict(train=0, val=2))
    with pytest.raises(ValueError, match='image_size must be an int >= 32, got 16'):
        generate_shapes_dataset(str(tmp_path / 'x'), dict(train=1), image_size=16)


def build_dataset(root, **kwargs):
    init_default_scope('mmdet')
    cfg = dict(type='GhostShapesDataset', data_root=str(root) + '/',
               ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
               test_mode=True, pipeline=[], splits=dict(train=4, val=3), image_size=64)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_dataset_generates_on_first_use_and_loads(tmp_path):
    dataset = build_dataset(tmp_path / 'fresh')
    assert len(dataset) == 3
    assert dataset.metainfo['classes'] == SHAPE_CLASSES
    item = dataset[0]
    assert Path(item['img_path']).is_file() and item['instances']


def test_missing_annotation_file_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r'annotation file not found: .*nothing/annotations/instances_val.json'):
        build_dataset(tmp_path / 'nothing', generate_if_missing=False)


def test_annotation_file_that_is_not_coco_json(tmp_path):
    root = tmp_path / 'broken'
    (root / 'annotations').mkdir(parents=True)
    ann = root / 'annotations' / 'instances_val.json'
    ann.write_text('this is not json {')
    with pytest.raises(ValueError, match=r'instances_val.json is not COCO JSON: it does not parse as JSON'):
        build_dataset(root, generate_if_missing=False)
    ann.write_text(json.dumps({'images': []}))
    with pytest.raises(ValueError, match=r"is not COCO JSON: no 'annotations', 'categories'"):
        build_dataset(root, generate_if_missing=False)
    ann.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match='expected an object with images, annotations and categories, got a list'):
        build_dataset(root, generate_if_missing=False)


def test_listed_image_missing_on_disk(tmp_path):
    root = tmp_path / 'shapes'
    build_dataset(root)  # generate
    (root / 'val' / '000001.jpg').unlink()
    with pytest.raises(DatasetNotFoundError, match=r'1 image\(s\) listed in .*instances_val.json are missing on disk:\n.*val/000001.jpg'):
        build_dataset(root, generate_if_missing=False)


def test_occlusion_is_partial():
    """Later shapes may cover earlier ones, but never more than
    MAX_HIDDEN_SHARE of them: every annotated shape stays recognisable."""
    import cv2
    from ghostnet_mmdet.datasets.shapes import MAX_HIDDEN_SHARE, draw_image, shape_outline
    visible_shares = []
    for index in range(60):
        _, objects = draw_image(np.random.RandomState(index), 256)
        masks = []
        for obj in objects:
            mask = np.zeros((256, 256), np.uint8)
            outline = shape_outline(obj['label'], obj['center'], obj['extent'], obj['angle'])
            if outline is None:
                cv2.circle(mask, tuple(int(round(v)) for v in obj['center']),
                           int(round(obj['extent'] / 2)), 1, -1)
            else:
                cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 1)
            masks.append(mask.astype(bool))
        for i, mask in enumerate(masks):
            on_top = np.zeros_like(mask)
            for later in masks[i + 1:]:
                on_top |= later
            visible_shares.append((mask & ~on_top).sum() / max(mask.sum(), 1))
    visible_shares = np.array(visible_shares)
    # Rasterised here without sub-pixel precision: allow a few pixels' slack.
    assert visible_shares.min() >= 1 - MAX_HIDDEN_SHARE - 0.1
    assert (visible_shares < 0.9).sum() >= 10  # occlusion does happen
