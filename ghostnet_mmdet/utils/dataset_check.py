"""Fail fast, and clearly, when a config points at dataset files that are
not there (COCO is 20 GB and never downloaded by this project)."""
import inspect
import logging
import math
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.fileio import join_path
from mmengine.logging import print_log
from mmengine.utils import is_abs

COCO_HINT = (
    'COCO 2017 is not downloaded by ghostnet_mmdet. Get train2017.zip, '
    'val2017.zip and annotations_trainval2017.zip from https://cocodataset.org '
    'and unpack them as\n'
    '    {root}annotations/instances_train2017.json\n'
    '    {root}train2017/  {root}val2017/\n'
    "or point the config elsewhere: --cfg-options data_root=/path/to/coco/ "
    "(and train_dataloader.dataset.data_root=..., val_dataloader.dataset."
    "data_root=..., test_dataloader.dataset.data_root=...).")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file or folder named by the config does not exist."""


class DatasetError(ValueError):
    """Dataset files that exist but cannot be used as they are."""


def _leaf_datasets(dataset_cfg) -> Iterator[dict]:
    """Yield the innermost dataset configs (through wrappers such as
    RepeatDataset, ClassBalancedDataset, ConcatDataset, MultiImageMixDataset)."""
    if dataset_cfg is None:
        return
    if isinstance(dataset_cfg, (list, tuple)):
        for item in dataset_cfg:
            yield from _leaf_datasets(item)
        return
    if 'datasets' in dataset_cfg:
        yield from _leaf_datasets(dataset_cfg['datasets'])
    elif 'dataset' in dataset_cfg:
        yield from _leaf_datasets(dataset_cfg['dataset'])
    else:
        yield dataset_cfg


def _split_datasets(cfg: Config, splits) -> Iterator[Tuple[str, dict]]:
    """``(split, dataset config)`` of every leaf dataset the config's
    dataloaders for ``splits`` read."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if loader:
            for dataset in _leaf_datasets(loader.get('dataset')):
                yield split, dataset


def _dataset_classes(dataset: dict, cls) -> Sequence[str]:
    """The classes a dataset config trains on: its metainfo's, else its
    class's."""
    return (dataset.get('metainfo') or {}).get('classes') or \
        (getattr(cls, 'METAINFO', None) or {}).get('classes') or ()


def resolve_dataset_paths(dataset: dict) -> Tuple[str, Dict[str, str]]:
    """``(ann_file, data_prefix)`` of a dataset config, joined with its
    ``data_root`` exactly as MMEngine's ``BaseDataset`` joins them (a path
    that is absolute or a URL is taken as it is; an empty prefix becomes
    ``data_root`` itself). ``CocoDataset`` then reads each image at
    ``osp.join(data_prefix['img'], file_name)``."""
    root = dataset.get('data_root') or ''
    ann_file = dataset.get('ann_file') or ''
    if ann_file and root and not is_abs(ann_file):
        ann_file = join_path(root, ann_file)
    prefixes = {}
    for key, prefix in (dataset.get('data_prefix') or {}).items():
        if isinstance(prefix, str):
            prefixes[key] = join_path(root, prefix) if root and not is_abs(prefix) else prefix
    return ann_file, prefixes


def _is_remote(path) -> bool:
    return '://' in str(path)


def _dataset_class(dataset: dict):
    from mmdet.registry import DATASETS
    cls = DATASETS.get(dataset.get('type', '')) if isinstance(dataset.get('type'), str) \
        else dataset.get('type')
    return cls if isinstance(cls, type) else None


def generates_own_files(dataset: dict) -> bool:
    """Whether a dataset config draws its own files on first use (the
    dataset class takes ``generate_if_missing``, and it is on)."""
    cls = _dataset_class(dataset)
    parameter = inspect.signature(cls.__init__).parameters.get('generate_if_missing') \
        if cls is not None else None
    if parameter is None:
        return False
    return bool(dataset.get('generate_if_missing', parameter.default))


def check_generated_dataset_root(root: str, split: str = 'train') -> None:
    """Refuse a GhostShapes ``data_root`` that holds something else (a
    user's own data, most often): one line that says how to train on it."""
    if root and osp.isdir(root) and os.listdir(root) and \
            not osp.isfile(osp.join(root, 'meta.json')):
        raise DatasetError(
            f"{split}_dataloader.dataset: data_root={root!r} is not a GhostShapes folder (no "
            "meta.json), but the dataset's type is GhostShapesDataset, which draws GhostShapes "
            "there. For your own COCO-format data set type='CocoDataset' in the train, val and "
            "test dataloaders' dataset (see docs/en/user_guides/custom_dataset.md)")


def missing_dataset_files(cfg: Config, splits=('train', 'val', 'test')) -> List[str]:
    """Paths (annotation files, image folders) that the config's dataloaders
    for ``splits`` need and that do not exist. A GhostShapes ``data_root``
    that holds other files is refused (:func:`check_generated_dataset_root`)."""
    missing = []
    for split, dataset in _split_datasets(cfg, splits):
        if generates_own_files(dataset):
            check_generated_dataset_root(dataset.get('data_root'), split)
            continue  # the files are made on first use
        ann_file, prefixes = resolve_dataset_paths(dataset)
        # An empty path is the current folder: MMDetection reads
        # osp.join('', file_name).
        for path in [ann_file, *prefixes.values()]:
            if path and not _is_remote(path) and not osp.exists(path) and path not in missing:
                missing.append(path)
    return missing


def check_dataset_files(cfg: Config, splits=('train', 'val', 'test')) -> None:
    """Before anything is built: raise :class:`DatasetNotFoundError` naming
    every missing path, and :class:`DatasetError` for a config that would
    train or evaluate wrongly without an error (see
    :func:`check_dataset_config`)."""
    missing = missing_dataset_files(cfg, splits)
    if missing:
        root = cfg.get('data_root') or 'data/coco/'
        lines = '\n'.join(f'    {p}' for p in missing)
        message = f'dataset files named by the config are missing:\n{lines}\n'
        if any('coco' in str(p).lower() or 'instances_' in str(p) for p in missing):
            message += COCO_HINT.format(root=root)
        else:
            message += 'Fix the paths with --cfg-options (data_root=..., ann_file=...).'
        raise DatasetNotFoundError(message)
    check_dataset_config(cfg, splits)


def _head_class_counts(model: dict) -> List[Tuple[str, int]]:
    """``(key, num_classes)`` of the heads that classify objects."""
    found = []
    heads = [('model.bbox_head', model.get('bbox_head'))]
    roi_heads = (model.get('roi_head') or {}).get('bbox_head')
    heads += [(f'model.roi_head.bbox_head[{i}]', h) for i, h in enumerate(roi_heads)] \
        if isinstance(roi_heads, (list, tuple)) else [('model.roi_head.bbox_head', roi_heads)]
    for key, head in heads:
        if isinstance(head, dict) and isinstance(head.get('num_classes'), int):
            found.append((f'{key}.num_classes', head['num_classes']))
    return found


def check_dataset_config(cfg: Config, splits=('train', 'val', 'test')) -> None:
    """Raise :class:`DatasetError` for what MMDetection would run without a
    word and get wrong: a head with fewer classes than the dataset (labels
    past ``num_classes`` train as background), and a ``CocoMetric`` whose
    ``ann_file`` is not the file its dataloader reads (predictions scored
    against other images' boxes)."""
    model = cfg.get('model') or {}
    for split, dataset in _split_datasets(cfg, splits):
        classes = _dataset_classes(dataset, _dataset_class(dataset))
        for key, count in _head_class_counts(model) if classes else ():
            if count > len(classes) and split == splits[0]:
                print_log(f'{key}={count} for the {len(classes)} classes of '
                          f'{split}_dataloader.dataset: the extra outputs never learn an '
                          'object', logger='current', level=logging.WARNING)
            elif count < len(classes):
                raise DatasetError(
                    f'{key}={count}, but {split}_dataloader.dataset has {len(classes)} '
                    f'classes ({_show(classes)}): set {key}={len(classes)} (labels past '
                    'num_classes would train as background)')
    for split in splits:
        evaluator = cfg.get(f'{split}_evaluator')
        datasets = [dataset for _, dataset in _split_datasets(cfg, [split])]
        if split == 'train' or not isinstance(evaluator, dict) or len(datasets) != 1 or \
                evaluator.get('type') != 'CocoMetric' or not evaluator.get('ann_file'):
            continue
        read, _ = resolve_dataset_paths(datasets[0])
        scored = evaluator['ann_file']
        if read and not _is_remote(read) and not _is_remote(scored) and \
                osp.realpath(read) != osp.realpath(scored):
            raise DatasetError(
                f'{split}_evaluator.ann_file={scored!r} is not the file {split}_dataloader reads '
                f'({read!r}): CocoMetric would score the predictions against other boxes. Set '
                f'{split}_evaluator = dict(ann_file={read!r})')


def check_coco_annotation_file(ann_file: str) -> dict:
    """Read a COCO annotation file, or raise an error that names the file
    and what is wrong with it (missing, not JSON, not COCO)."""
    if not osp.isfile(ann_file):
        raise DatasetNotFoundError(f'annotation file not found: {ann_file}')
    import json
    try:
        with open(ann_file) as f:
            content = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f'annotation file {ann_file} is not COCO JSON: it does not '
                         f'parse as JSON ({err})') from None
    if not isinstance(content, dict):
        raise DatasetError(f'annotation file {ann_file} is not COCO JSON: expected an '
                         f'object with images, annotations and categories, got '
                         f'a {type(content).__name__}')
    missing = [key for key in ('images', 'annotations', 'categories') if key not in content]
    if missing:
        raise DatasetError(f'annotation file {ann_file} is not COCO JSON: no '
                         f'{", ".join(repr(k) for k in missing)} (keys found: '
                         f'{sorted(content)[:10]})')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(content[key], list):
            raise DatasetError(f'annotation file {ann_file} is not COCO JSON: '
                             f'{key!r} must be a list, got {type(content[key]).__name__}')
    return content


def check_images_exist(image_paths, ann_file: str, limit: int = 5) -> None:
    """Raise naming the images that an annotation file lists but that are
    not on disk."""
    missing = [p for p in image_paths if not osp.isfile(p)]
    if missing:
        shown = '\n'.join(f'    {p}' for p in missing[:limit])
        more = f'\n    ... and {len(missing) - limit} more' if len(missing) > limit else ''
        raise DatasetNotFoundError(
            f'{len(missing)} image(s) listed in {ann_file} are missing on disk:\n{shown}{more}')


def _show(items, limit: int = 5) -> str:
    items = list(items)
    return ', '.join(map(str, items[:limit])) + (f', ... ({len(items) - limit} more)'
                                                 if len(items) > limit else '')


def _check_image_file(path: str, width, height) -> Optional[str]:
    """Why the image at ``path`` cannot be used, or None. Reads the header
    only: decoding every image up front would take longer than an epoch."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            size = image.size
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        return f'{path}: not a readable image ({err.__class__.__name__}: {err})'
    if (width, height) != size:
        return (f'{path}: {size[0]}x{size[1]} on disk, but the annotation file says '
                f'{width}x{height} (its boxes would not fit the picture)')
    return None


def check_coco_dataset(ann_file: str, image_dir: str, classes: Sequence[str],
                       filter_empty_gt: bool = False, check_images: bool = True,
                       logger: str = 'current') -> Dict[str, int]:
    """Check a COCO-style detection dataset before training on it, the way
    MMDetection's ``CocoDataset`` will read it.

    Refused (:class:`DatasetError` / :class:`DatasetNotFoundError`, naming
    the file): an annotation file that is missing, not JSON or not COCO;
    ``classes`` that are not among its categories (MMDetection would
    silently train on fewer classes with shifted labels); images listed but
    missing on disk, unreadable, or of another size than listed; boxes that
    are not four finite numbers. Grayscale, RGBA, palette and 16-bit images
    are accepted: MMDetection's ``LoadImageFromFile`` reads them as 8-bit
    BGR.

    Counted and logged (MMDetection drops them without a word): images
    without boxes (dropped from training when ``filter_empty_gt``), boxes of
    zero size, boxes entirely outside their image, boxes of images the file
    does not list; boxes that cross the border are kept and clipped by
    ``Resize``.

    Returns:
        dict: The counts.
    """
    content = check_coco_annotation_file(ann_file)
    categories = {c.get('name'): c.get('id') for c in content['categories']}
    unknown = [c for c in classes if c not in categories]
    if unknown:
        raise DatasetError(
            f'the config\'s classes {_show(unknown)} are not categories of {ann_file}, '
            f'which has {len(categories)}: {_show(categories, 10)}. Set the dataset\'s '
            'metainfo=dict(classes=(...)) to names from the file (a subset is fine)')
    wanted = {categories[c] for c in classes}
    images = {}
    for image in content['images']:
        if not isinstance(image, dict) or not {'id', 'file_name', 'width', 'height'} <= set(image):
            raise DatasetError(f'{ann_file}: image entries need id, file_name, width and '
                               f'height, but one is {str(image)[:120]}')
        images[image['id']] = image
    boxes_per_image = dict.fromkeys(images, 0)
    counts = dict(images=len(images), boxes=0, other_classes=0, zero_size=0, outside=0,
                  crossing_border=0, crowd=0, unknown_image=0)
    for ann in content['annotations']:
        bbox = ann.get('bbox') if isinstance(ann, dict) else None
        if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and
                all(isinstance(v, (int, float)) and math.isfinite(v) for v in bbox)):
            raise DatasetError(f'{ann_file}: a box must be [x, y, width, height] of four '
                               f'finite numbers, but annotation {ann.get("id") if isinstance(ann, dict) else ann!r} '
                               f'has bbox={bbox!r}')
        image = images.get(ann.get('image_id'))
        if image is None:
            counts['unknown_image'] += 1
            continue
        if ann.get('category_id') not in wanted:
            counts['other_classes'] += 1
            continue
        if ann.get('iscrowd', False):
            counts['crowd'] += 1
        x, y, w, h = bbox
        inside_w = min(x + w, image['width']) - max(x, 0)
        inside_h = min(y + h, image['height']) - max(y, 0)
        if w < 1 or h < 1 or ann.get('area', w * h) <= 0:
            counts['zero_size'] += 1
        elif inside_w <= 0 or inside_h <= 0:
            counts['outside'] += 1
        else:
            if x < 0 or y < 0 or x + w > image['width'] or y + h > image['height']:
                counts['crossing_border'] += 1
            counts['boxes'] += 1
            boxes_per_image[image['id']] += 1
    counts['empty_images'] = sum(1 for n in boxes_per_image.values() if n == 0)

    paths = [(osp.join(image_dir, im['file_name']), im['width'], im['height'])
             for im in images.values()]
    check_images_exist([p for p, _, _ in paths], ann_file)
    if check_images:
        problems = [p for p in (_check_image_file(*entry) for entry in paths) if p]
        if problems:
            raise DatasetError(f'{len(problems)} image(s) listed in {ann_file} cannot be used:\n'
                               + '\n'.join(f'    {p}' for p in problems[:5]))
    empty_fate = 'dropped from training by filter_empty_gt' if filter_empty_gt else 'kept'
    print_log(
        f'dataset {ann_file}: {counts["images"]} images, {counts["boxes"]} boxes of '
        f'{len(classes)} classes; {counts["empty_images"]} images without boxes '
        f'({empty_fate}); dropped as MMDetection does: {counts["zero_size"]} boxes of zero '
        f'size, {counts["outside"]} outside their image, {counts["other_classes"]} of other '
        f'categories, {counts["unknown_image"]} of images not in the file; '
        f'{counts["crossing_border"]} boxes cross the border (clipped)',
        logger=logger)
    return counts


def check_config_datasets(cfg: Config, splits=('train', 'val', 'test')) -> None:
    """Run :func:`check_coco_dataset` on every COCO-style dataset that the
    config's dataloaders for ``splits`` read (datasets that make their own
    files on first use check themselves when they do), with the paths
    resolved as MMEngine resolves them."""
    from mmdet.datasets import CocoDataset
    checked = set()
    for _, dataset in _split_datasets(cfg, splits):
        cls = _dataset_class(dataset)
        if generates_own_files(dataset) or not (cls and issubclass(cls, CocoDataset)):
            continue
        ann_file, prefixes = resolve_dataset_paths(dataset)
        image_dir = prefixes.get('img', '')
        if (ann_file, image_dir) in checked or _is_remote(ann_file):
            continue
        checked.add((ann_file, image_dir))
        filter_empty = bool((dataset.get('filter_cfg') or {}).get('filter_empty_gt')) and \
            not dataset.get('test_mode', False)
        check_coco_dataset(ann_file, image_dir, _dataset_classes(dataset, cls),
                           filter_empty_gt=filter_empty)
