"""GhostShapes: a small synthetic COCO-format detection dataset that trains
on a laptop CPU in minutes, made on first use.

Five classes told apart by shape alone (colour is random for every object):
circle, square, triangle, star and cross, drawn upright with a random turn
of up to 20 degrees. Objects
range from 8 px to half the image side (30% are COCO-small, under 32 px),
may overlap and occlude each other (at most 40% of a shape is hidden), and sit on
textured, cluttered backgrounds with unlabelled distractors (strokes, arcs,
outlined polygons, dots). Everything is drawn from a seeded generator per
image: the same seed gives the same files.

Layout (COCO, loadable by pycocotools)::

    root/annotations/instances_train.json, instances_val.json
    root/train/000000.jpg ...   root/val/000000.jpg ...
    root/meta.json              parameters the files were made with
"""
import fcntl
import hashlib
import json
import math
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

SHAPE_CLASSES = ('circle', 'square', 'triangle', 'star', 'cross')
GENERATOR_VERSION = 4
# Shapes are drawn upright, turned by at most this many degrees either way.
MAX_ROTATION_DEGREES = 20
# Share of objects drawn COCO-small (8 to 32 px); the rest are 32 px to half
# the image side. Sizes are log-uniform within each range.
SMALL_OBJECT_SHARE = 0.3
# Occlusion stays partial: a shape that would hide more than this share of
# an earlier shape's pixels is placed elsewhere (version 3 let a large shape
# cover a small one completely, leaving boxes around nothing).
MAX_HIDDEN_SHARE = 0.4
DEFAULT_SPLITS = {'train': 2400, 'val': 200}


def _regular_polygon(center, radius, sides, angle, inner_ratio=None):
    """Vertices of a regular polygon (or a star when ``inner_ratio`` is set)."""
    points = []
    count = sides * 2 if inner_ratio else sides
    for i in range(count):
        r = radius * (inner_ratio if inner_ratio and i % 2 else 1.0)
        theta = angle + 2 * math.pi * i / count
        points.append((center[0] + r * math.cos(theta), center[1] + r * math.sin(theta)))
    return np.array(points, dtype=np.float64)


def _cross(center, radius, angle, arm=0.34):
    """A plus sign: 12 vertices, arms of width ``2 * arm * radius``."""
    a, r = arm * radius, radius
    base = [(-a, -r), (a, -r), (a, -a), (r, -a), (r, a), (a, a), (a, r), (-a, r),
            (-a, a), (-r, a), (-r, -a), (-a, -a)]
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([(center[0] + x * cos - y * sin, center[1] + x * sin + y * cos)
                     for x, y in base], dtype=np.float64)


# The angle of each class's first vertex that draws it upright (square with
# horizontal sides, triangle and star pointing up, cross as a plus).
_UPRIGHT = (0.0, math.pi / 4, -math.pi / 2, -math.pi / 2, 0.0)


def shape_outline(label: int, center, size: float, angle: float) -> Optional[np.ndarray]:
    """Polygon of a shape whose bounding extent is about ``size``; None for
    a circle (drawn with cv2.circle)."""
    radius = size / 2
    name = SHAPE_CLASSES[label]
    if name == 'circle':
        return None
    if name == 'square':
        return _regular_polygon(center, radius * math.sqrt(2) * 0.78, 4, angle)
    if name == 'triangle':
        return _regular_polygon(center, radius, 3, angle)
    if name == 'star':
        return _regular_polygon(center, radius, 5, angle, inner_ratio=0.45)
    return _cross(center, radius, angle)


def _background(rng: np.random.RandomState, size: int) -> np.ndarray:
    """Textured background: a colour gradient, low-frequency blotches,
    stripes or a grid, and pixel noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    c0, c1 = rng.uniform(20, 200, 3), rng.uniform(20, 200, 3)
    direction = rng.uniform(0, 2 * math.pi)
    t = (xx * math.cos(direction) + yy * math.sin(direction) + 1.5) / 3
    image = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    blotches = rng.uniform(-45, 45, (rng.randint(3, 7), rng.randint(3, 7), 3)).astype(np.float32)
    image += cv2.resize(blotches, (size, size), interpolation=cv2.INTER_CUBIC)
    if rng.rand() < 0.6:
        period = rng.uniform(6, 24)
        phase = rng.uniform(0, 2 * math.pi)
        angle = rng.uniform(0, math.pi)
        wave = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * size * 2 * math.pi / period + phase)
        image += (wave * rng.uniform(5, 18))[..., None]
    image += rng.normal(0, rng.uniform(3, 10), image.shape)
    return image


def _draw_distractors(rng, image, size, count):
    """Unlabelled clutter: strokes, polylines, arcs, outlined polygons, dots."""
    for _ in range(count):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        kind = rng.randint(5)
        thickness = int(rng.randint(1, 3))
        if kind == 0:  # straight stroke
            p, q = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
            cv2.line(image, tuple(int(v) for v in p), tuple(int(v) for v in q), color, thickness, cv2.LINE_AA)
        elif kind == 1:  # zig-zag polyline
            points = np.cumsum(rng.uniform(-size / 6, size / 6, (rng.randint(3, 7), 2)), axis=0)
            points += rng.uniform(0, size, 2)
            cv2.polylines(image, [points.astype(np.int32)], False, color, thickness, cv2.LINE_AA)
        elif kind == 2:  # arc of an ellipse
            center = tuple(int(v) for v in rng.uniform(0, size, 2))
            axes = tuple(int(v) for v in rng.uniform(6, size / 4, 2))
            start = rng.uniform(0, 360)
            cv2.ellipse(image, center, axes, rng.uniform(0, 180), start, start + rng.uniform(60, 250),
                        color, thickness, cv2.LINE_AA)
        elif kind == 3:  # outlined polygon (outline only: objects are filled)
            points = rng.uniform(0, size / 5, (rng.randint(4, 7), 2)) + rng.uniform(0, size, 2)
            cv2.polylines(image, [points.astype(np.int32)], True, color, 1, cv2.LINE_AA)
        else:  # small dots
            for _ in range(rng.randint(3, 10)):
                center = tuple(int(v) for v in rng.uniform(0, size, 2))
                cv2.circle(image, center, int(rng.randint(1, 3)), color, -1, cv2.LINE_AA)


def _box_iou(box, boxes):
    if not boxes:
        return 0.0
    boxes = np.asarray(boxes)
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return float(np.max(inter / (area + areas - inter)))


_SUBPIXEL_SHIFT = 4  # sub-pixel precision for small shapes


def _fill_shape(canvas: np.ndarray, center, extent: float, polygon: Optional[np.ndarray],
                color, line_type: int) -> None:
    """Fill a shape (a circle when ``polygon`` is None) into ``canvas``."""
    scale = 2**_SUBPIXEL_SHIFT
    if polygon is None:
        cv2.circle(canvas, (int(round(center[0] * scale)), int(round(center[1] * scale))),
                   int(round(extent / 2 * scale)), color, -1, line_type, _SUBPIXEL_SHIFT)
    else:
        cv2.fillPoly(canvas, [np.round(polygon * scale).astype(np.int32)], color, line_type,
                     _SUBPIXEL_SHIFT)


def _shape_mask(size: int, center, extent: float, polygon: Optional[np.ndarray]) -> np.ndarray:
    """Boolean mask of the pixels a shape covers."""
    mask = np.zeros((size, size), dtype=np.uint8)
    _fill_shape(mask, center, extent, polygon, 1, cv2.LINE_8)
    return mask.astype(bool)


def _hides_too_much(owner: np.ndarray, pixel_counts: List[int], mask: np.ndarray) -> bool:
    """Whether drawing ``mask`` on top would leave an earlier shape with less
    than ``1 - MAX_HIDDEN_SHARE`` of its pixels showing."""
    covered = owner[mask]
    covered = covered[covered >= 0]
    if covered.size == 0:
        return False
    visible = np.bincount(owner[owner >= 0], minlength=len(pixel_counts))
    lost = np.bincount(covered, minlength=len(pixel_counts))
    counts = np.maximum(np.asarray(pixel_counts), 1)
    return bool(np.any((visible - lost) / counts < 1 - MAX_HIDDEN_SHARE))


def draw_image(rng: np.random.RandomState, size: int = 256,
               min_object: float = 8, max_objects: int = 10,
               max_overlap_iou: float = 0.3) -> Tuple[np.ndarray, List[Dict]]:
    """Draw one image; return it (BGR uint8) and its objects in drawing
    order as ``dict(label, bbox=[x1, y1, x2, y2], center, extent, angle)``,
    boxes tight around each whole shape (``shape_outline`` redraws one)."""
    image = _background(rng, size)
    _draw_distractors(rng, image, size, rng.randint(2, 9))
    objects = []
    boxes = []
    # Index of the shape on top at each pixel (-1: background), and each
    # shape's pixel count, to keep occlusion partial.
    owner = np.full((size, size), -1, dtype=np.int32)
    pixel_counts: List[int] = []
    max_size = size / 2
    for _ in range(rng.randint(3, max_objects + 1)):
        for _attempt in range(20):
            if rng.rand() < SMALL_OBJECT_SHARE:
                low, high = min_object, min(32, max_size)
            else:
                low, high = min(32, max_size), max_size
            extent = math.exp(rng.uniform(math.log(low), math.log(high)))
            label = rng.randint(len(SHAPE_CLASSES))
            angle = _UPRIGHT[label] + math.radians(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
            center = rng.uniform(extent / 2 + 1, size - extent / 2 - 1, 2)
            polygon = shape_outline(label, center, extent, angle)
            if polygon is None:
                radius = extent / 2
                box = [center[0] - radius, center[1] - radius, center[0] + radius, center[1] + radius]
            else:
                box = [*polygon.min(axis=0), *polygon.max(axis=0)]
            box = [float(np.clip(v, 0, size)) for v in box]
            # Overlap is allowed (later shapes occlude earlier ones), but
            # never so much that an object would be hidden.
            if _box_iou(box, boxes) > max_overlap_iou:
                continue
            mask = _shape_mask(size, center, extent, polygon)
            if not _hides_too_much(owner, pixel_counts, mask):
                break
        else:
            continue
        owner[mask] = len(objects)
        pixel_counts.append(int(mask.sum()))
        color = rng.uniform(0, 255, 3)
        # Keep the object visible against its local background.
        x1, y1, x2, y2 = (int(v) for v in box)
        local = image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)].reshape(-1, 3).mean(axis=0)
        if np.abs(color - local).sum() < 120:
            color = np.where(local > 127, rng.uniform(0, 70, 3), rng.uniform(185, 255, 3))
        color = tuple(float(c) for c in color)
        _fill_shape(image, center, extent, polygon, color, cv2.LINE_AA)
        objects.append(dict(label=label, bbox=box, center=(float(center[0]), float(center[1])),
                            extent=extent, angle=angle))
        boxes.append(box)
    # Light noise over everything, so shapes are not perfectly flat.
    image += rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), objects


def _split_seed(seed: int, split: str, index: int) -> int:
    return (seed * 1_000_003 + {'train': 1, 'val': 2, 'test': 3}.get(split, 4) * 100_003 + index) % 2**31


def generate_split(root: str, split: str, num_images: int, image_size: int = 256,
                   seed: int = 0, jpeg_quality: int = 92) -> str:
    """Write one split's images and COCO annotation file; return its path."""
    image_dir = osp.join(root, split)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.RandomState(_split_seed(seed, split, index))
        image, objects = draw_image(rng, image_size)
        file_name = f'{index:06d}.jpg'
        cv2.imwrite(osp.join(image_dir, file_name), image,
                    [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        images.append(dict(id=index + 1, file_name=file_name, width=image_size, height=image_size))
        for obj in objects:
            x1, y1, x2, y2 = obj['bbox']
            w, h = x2 - x1, y2 - y1
            annotations.append(dict(
                id=len(annotations) + 1, image_id=index + 1, category_id=obj['label'] + 1,
                bbox=[round(x1, 2), round(y1, 2), round(w, 2), round(h, 2)],
                area=round(w * h, 2), iscrowd=0))
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(SHAPE_CLASSES)]
    ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(info=dict(description='GhostShapes synthetic detection dataset',
                                 version=GENERATOR_VERSION),
                       images=images, annotations=annotations, categories=categories), f)
    return ann_file


def content_digest(root: str) -> str:
    """sha256 of every file of a generated dataset (paths and bytes, in
    order), without meta.json: the same parameters give the same digest
    wherever the same numpy and OpenCV (JPEG encoder) made the files."""
    sha = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            path = osp.join(folder, name)
            relative = osp.relpath(path, root)
            if relative == 'meta.json':
                continue
            sha.update(relative.encode())
            with open(path, 'rb') as f:
                sha.update(f.read())
    return sha.hexdigest()


def dataset_meta(splits: Dict[str, int], image_size: int, seed: int) -> Dict:
    return dict(generator_version=GENERATOR_VERSION, splits=dict(splits),
                image_size=image_size, seed=seed, classes=list(SHAPE_CLASSES))


def generate_shapes_dataset(root: str, splits: Optional[Dict[str, int]] = None,
                            image_size: int = 256, seed: int = 0,
                            force: bool = False, verbose: bool = True) -> bool:
    """Make the dataset under ``root`` unless it is already there with the
    same parameters. Writes to a temporary folder beside ``root`` and moves
    it into place, so an interrupted run never leaves half a dataset.

    Returns:
        bool: True if files were generated, False if they already existed.
    """
    splits = dict(splits or DEFAULT_SPLITS)
    for split, count in splits.items():
        if not isinstance(count, int) or count < 1:
            raise ValueError(f'split {split!r} needs a positive number of images, got {count!r}')
    if not isinstance(image_size, int) or image_size < 32:
        raise ValueError(f'image_size must be an int >= 32, got {image_size!r}')
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    # One generator at a time (several dataloaders or ranks may ask at once).
    with open(osp.abspath(root).rstrip('/') + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _generate_locked(root, parent, splits, image_size, seed, force, verbose)


def _generate_locked(root, parent, splits, image_size, seed, force, verbose) -> bool:
    meta = dataset_meta(splits, image_size, seed)
    meta_file = osp.join(root, 'meta.json')
    if not force and osp.isfile(meta_file):
        with open(meta_file) as f:
            try:
                if json.load(f) == meta:
                    return False
            except json.JSONDecodeError:
                pass
    if osp.exists(root) and not osp.isfile(meta_file) and os.listdir(root):
        raise FileExistsError(
            f'{root} exists and is not a GhostShapes dataset (no meta.json); '
            'choose another data_root or remove it')
    staging = tempfile.mkdtemp(prefix='.shapes-', dir=parent)
    try:
        for split, count in splits.items():
            if verbose:
                print(f'GhostShapes: drawing {count} {split} images '
                      f'({image_size}x{image_size}) into {root}', flush=True)
            generate_split(staging, split, count, image_size, seed)
        with open(osp.join(staging, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=1)
        if osp.exists(root):
            shutil.rmtree(root)
        os.replace(staging, root)
    finally:
        if osp.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return True


def main(argv: Optional[Sequence[str]] = None) -> None:
    import argparse
    parser = argparse.ArgumentParser(description='Generate the GhostShapes dataset')
    parser.add_argument('root', nargs='?', default='data/shapes')
    parser.add_argument('--train', type=int, default=DEFAULT_SPLITS['train'])
    parser.add_argument('--val', type=int, default=DEFAULT_SPLITS['val'])
    parser.add_argument('--image-size', type=int, default=256)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true')
    args = parser.parse_args(argv)
    made = generate_shapes_dataset(args.root, dict(train=args.train, val=args.val),
                                   args.image_size, args.seed, args.force)
    print(('generated' if made else 'already present:') + f' {args.root}')


if __name__ == '__main__':
    main()
