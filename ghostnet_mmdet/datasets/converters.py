"""Labels of other formats to COCO JSON, the format MMDetection's
``CocoDataset`` reads: Pascal VOC XML and YOLO txt.

Each converter returns a COCO dict whose ``file_name`` entries are relative to
``root`` (sub-folders kept), so that the JSON written into ``root`` is read
with ``data_root=root`` and ``data_prefix=dict(img='')``. Bad input raises
:class:`~ghostnet_mmdet.utils.dataset_check.DatasetError` naming the file
and the line or object.
"""
import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Sequence, Tuple

from ..utils.dataset_check import DatasetError, DatasetNotFoundError

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def _image_size(path: str) -> Tuple[int, int]:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as err:
        raise DatasetError(f'{path}: not a readable image ({err})') from None


def _coco(images: List[dict], annotations: List[dict], classes: Sequence[str]) -> dict:
    return dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=name) for i, name in enumerate(classes)])


def _annotation(index: int, image_id: int, category_id: int, x1: float, y1: float, x2: float,
                y2: float, iscrowd: int = 0) -> dict:
    w, h = x2 - x1, y2 - y1
    return dict(id=index, image_id=image_id, category_id=category_id,
                bbox=[round(x1, 3), round(y1, 3), round(w, 3), round(h, 3)],
                area=round(w * h, 3), iscrowd=iscrowd)


def _relative(path: str, root: str) -> str:
    return osp.relpath(path, root).replace(os.sep, '/')


def _find_image(folder: str, stem: str) -> Optional[str]:
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
        candidate = osp.join(folder, stem + suffix)
        if osp.isfile(candidate):
            return candidate
    return None


def _require_dir(path: str, what: str) -> None:
    if not osp.isdir(path):
        raise DatasetNotFoundError(f'{what} folder not found: {path}')


def voc_to_coco(root: str, ann_dir: str = 'Annotations', img_dir: str = 'JPEGImages',
                split_file: Optional[str] = None,
                classes: Optional[Sequence[str]] = None) -> dict:
    """Pascal VOC XML files to a COCO dict.

    VOC corners are 1-based and inclusive: ``<xmin>1</xmin><xmax>10</xmax>``
    covers 10 pixels, which is COCO's ``[0, y, 10, h]``. Objects marked
    ``difficult`` become ``iscrowd=1`` (ignored in training and evaluation,
    as MMDetection's ``VOCDataset`` ignores them).

    Args:
        root (str): The dataset folder; paths below are relative to it.
        ann_dir (str): Folder of the XML files. Defaults to 'Annotations'.
        img_dir (str): Folder of the images. Defaults to 'JPEGImages'.
        split_file (str, optional): A text file of image stems (VOC's
            ``ImageSets/Main/train.txt``); all XML files when None.
        classes (Sequence[str], optional): Class names in label order;
            objects of other names are refused. When None, the names found,
            sorted.
    """
    ann_path, img_path = osp.join(root, ann_dir), osp.join(root, img_dir)
    _require_dir(ann_path, 'annotation')
    _require_dir(img_path, 'image')
    if split_file is not None:
        list_path = osp.join(root, split_file)
        if not osp.isfile(list_path):
            raise DatasetNotFoundError(f'split file not found: {list_path}')
        with open(list_path) as f:
            stems = [line.split()[0] for line in f if line.strip()]
    else:
        stems = sorted(osp.splitext(n)[0] for n in os.listdir(ann_path) if n.endswith('.xml'))
    if not stems:
        raise DatasetError(f'no annotations to convert in {ann_path}')
    parsed = []
    for stem in stems:
        xml_file = osp.join(ann_path, stem + '.xml')
        if not osp.isfile(xml_file):
            raise DatasetNotFoundError(f'annotation file not found: {xml_file}')
        try:
            tree = ET.parse(xml_file).getroot()
        except ET.ParseError as err:
            raise DatasetError(f'{xml_file}: not VOC XML ({err})') from None
        name = tree.findtext('filename')
        image_file = osp.join(img_path, name) if name and osp.isfile(osp.join(img_path, name)) \
            else _find_image(img_path, stem)
        if image_file is None:
            raise DatasetNotFoundError(f'{xml_file}: its image ({name or stem}) is not in '
                                       f'{img_path}')
        objects = []
        for obj in tree.iter('object'):
            label = (obj.findtext('name') or '').strip()
            box = obj.find('bndbox')
            try:
                corners = [float(box.findtext(k)) for k in ('xmin', 'ymin', 'xmax', 'ymax')]
            except (AttributeError, TypeError, ValueError):
                raise DatasetError(f'{xml_file}: object {label!r} needs a bndbox with numeric '
                                   'xmin, ymin, xmax and ymax') from None
            objects.append((label, corners, int(obj.findtext('difficult') or 0)))
        parsed.append((xml_file, image_file, objects))
    names = list(classes) if classes else sorted({o[0] for p in parsed for o in p[2]})
    label_of = {name: i + 1 for i, name in enumerate(names)}
    images, annotations = [], []
    for image_id, (xml_file, image_file, objects) in enumerate(parsed, 1):
        width, height = _image_size(image_file)
        images.append(dict(id=image_id, file_name=_relative(image_file, root), width=width,
                           height=height))
        for label, (xmin, ymin, xmax, ymax), difficult in objects:
            if label not in label_of:
                raise DatasetError(f'{xml_file}: class {label!r} is not among the classes '
                                   f'given ({", ".join(names)})')
            if xmax < xmin or ymax < ymin:
                raise DatasetError(f'{xml_file}: object {label!r} has xmax < xmin or ymax < '
                                   f'ymin ({xmin}, {ymin}, {xmax}, {ymax})')
            annotations.append(_annotation(len(annotations) + 1, image_id, label_of[label],
                                           xmin - 1, ymin - 1, xmax, ymax, difficult))
    return _coco(images, annotations, names)


def read_class_names(path: str) -> List[str]:
    """Class names from a ``classes.txt`` (one a line) or a YOLO
    ``data.yaml`` (``names:`` as a list or an index-to-name mapping)."""
    if not osp.isfile(path):
        raise DatasetNotFoundError(f'class names file not found: {path}')
    if path.endswith(('.yaml', '.yml')):
        import yaml
        with open(path) as f:
            names = (yaml.safe_load(f) or {}).get('names')
        if isinstance(names, dict):
            names = [names[k] for k in sorted(names)]
        if not isinstance(names, list) or not names:
            raise DatasetError(f'{path}: no names: list or mapping of class names')
        return [str(n) for n in names]
    with open(path) as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise DatasetError(f'{path}: no class names (one a line)')
    return names


def yolo_to_coco(root: str, img_dir: str, classes: Sequence[str],
                 label_dir: Optional[str] = None) -> dict:
    """YOLO txt labels (one ``class cx cy w h`` line per object, normalised
    to the image size) to a COCO dict. An image without a label file is an
    image without objects, as in YOLO.

    Args:
        root (str): The dataset folder; paths below are relative to it.
        img_dir (str): Folder of the images, e.g. 'images/train'.
        classes (Sequence[str]): Class names in YOLO's index order.
        label_dir (str, optional): Folder of the txt files. Defaults to
            ``img_dir`` with its 'images' part replaced by 'labels' (YOLO's
            layout).
    """
    img_path = osp.join(root, img_dir)
    _require_dir(img_path, 'image')
    if label_dir is None:
        parts = img_dir.replace(os.sep, '/').split('/')
        if 'images' not in parts:
            raise DatasetError(f'img_dir={img_dir!r} has no images/ part to derive the label '
                               'folder from: give the label folder')
        parts[len(parts) - 1 - parts[::-1].index('images')] = 'labels'
        label_dir = '/'.join(parts)
    label_path = osp.join(root, label_dir)
    _require_dir(label_path, 'label')
    files = sorted(n for n in os.listdir(img_path) if n.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise DatasetError(f'no images in {img_path}')
    images, annotations = [], []
    for image_id, name in enumerate(files, 1):
        image_file = osp.join(img_path, name)
        width, height = _image_size(image_file)
        images.append(dict(id=image_id, file_name=_relative(image_file, root), width=width,
                           height=height))
        txt = osp.join(label_path, osp.splitext(name)[0] + '.txt')
        if not osp.isfile(txt):
            continue
        with open(txt) as f:
            lines = f.read().splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            fields = line.split()
            try:
                label, cx, cy, w, h = int(fields[0]), *map(float, fields[1:5])
                if len(fields) != 5:
                    raise ValueError
            except (ValueError, IndexError):
                raise DatasetError(f'{txt}:{number}: expected "class cx cy w h" (five numbers, '
                                   f'normalised boxes), got {line.strip()!r}') from None
            if not 0 <= label < len(classes):
                raise DatasetError(f'{txt}:{number}: class {label} is out of range: there are '
                                   f'{len(classes)} class names (0-{len(classes) - 1})')
            if not all(0 <= v <= 1 for v in (cx, cy, w, h)):
                raise DatasetError(f'{txt}:{number}: box {cx} {cy} {w} {h} is not normalised '
                                   '(values in [0, 1])')
            x1, y1 = (cx - w / 2) * width, (cy - h / 2) * height
            annotations.append(_annotation(len(annotations) + 1, image_id, label + 1, x1, y1,
                                           x1 + w * width, y1 + h * height))
    return _coco(images, annotations, classes)


def write_coco(content: dict, out_file: str) -> Dict[str, int]:
    """Write a COCO dict as JSON; returns its counts."""
    import json
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    with open(out_file, 'w') as f:
        json.dump(content, f)
    return dict(images=len(content['images']), boxes=len(content['annotations']),
                classes=len(content['categories']))
