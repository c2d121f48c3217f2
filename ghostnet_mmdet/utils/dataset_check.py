"""Fail fast, and clearly, when a config points at dataset files that are
not there (COCO is 20 GB and never downloaded by this project)."""
import os.path as osp
from typing import Iterator, List

from mmengine.config import Config

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


def _join(root, path):
    if not path or osp.isabs(path) or '://' in str(path):
        return path
    return osp.join(root or '', path)


def missing_dataset_files(cfg: Config, splits=('train', 'val', 'test')) -> List[str]:
    """Paths (annotation files, image folders) that the config's dataloaders
    for ``splits`` need and that do not exist."""
    missing = []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        for dataset in _leaf_datasets(loader.get('dataset')):
            if dataset.get('generate_if_missing'):
                continue  # datasets that make their own files on first use
            root = dataset.get('data_root')
            paths = [_join(root, dataset.get('ann_file'))]
            prefix = dataset.get('data_prefix') or {}
            paths += [_join(root, p) for p in prefix.values() if isinstance(p, str)]
            for path in paths:
                if path and '://' not in str(path) and not osp.exists(path) and path not in missing:
                    missing.append(path)
    return missing


def check_dataset_files(cfg: Config, splits=('train', 'val', 'test')) -> None:
    """Raise :class:`DatasetNotFoundError` naming every missing path."""
    missing = missing_dataset_files(cfg, splits)
    if not missing:
        return
    root = cfg.get('data_root') or 'data/coco/'
    lines = '\n'.join(f'    {p}' for p in missing)
    message = f'dataset files named by the config are missing:\n{lines}\n'
    if any('coco' in str(p).lower() or 'instances_' in str(p) for p in missing):
        message += COCO_HINT.format(root=root)
    else:
        message += 'Fix the paths with --cfg-options (data_root=..., ann_file=...).'
    raise DatasetNotFoundError(message)


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
        raise ValueError(f'annotation file {ann_file} is not COCO JSON: it does not '
                         f'parse as JSON ({err})') from None
    if not isinstance(content, dict):
        raise ValueError(f'annotation file {ann_file} is not COCO JSON: expected an '
                         f'object with images, annotations and categories, got '
                         f'a {type(content).__name__}')
    missing = [key for key in ('images', 'annotations', 'categories') if key not in content]
    if missing:
        raise ValueError(f'annotation file {ann_file} is not COCO JSON: no '
                         f'{", ".join(repr(k) for k in missing)} (keys found: '
                         f'{sorted(content)[:10]})')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(content[key], list):
            raise ValueError(f'annotation file {ann_file} is not COCO JSON: '
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
