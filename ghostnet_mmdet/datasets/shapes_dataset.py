"""GhostShapesDataset: MMDetection's CocoDataset over the GhostShapes files,
made on first use, with clear errors for broken dataset input."""
import os.path as osp
from typing import Dict, List, Optional

from mmengine.dist import get_dist_info
from mmengine.logging import print_log

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from ..utils.dataset_check import check_coco_dataset, check_generated_dataset_root
from .shapes import (DEFAULT_SPLITS, GENERATOR_VERSION, SHAPE_CLASSES, content_digest,
                     generate_shapes_dataset)


@DATASETS.register_module()
class GhostShapesDataset(CocoDataset):
    """The GhostShapes synthetic dataset (see :mod:`ghostnet_mmdet.datasets.shapes`).

    Args:
        generate_if_missing (bool): Draw the dataset under ``data_root`` when
            it is not there (or was made with other parameters). Defaults to
            True.
        splits (dict): Images per split to generate, e.g.
            ``dict(train=2400, val=200)``. Use the same value for every
            dataloader of a config. Defaults to that.
        image_size (int): Side of the square images. Defaults to 256.
        seed (int): Seed of the generator. Defaults to 0.
        **kwargs: CocoDataset arguments (``data_root``, ``ann_file``,
            ``data_prefix``, ``pipeline``, ...).
    """

    METAINFO = {
        'classes': SHAPE_CLASSES,
        'palette': [(220, 20, 60), (0, 130, 230), (250, 170, 30), (0, 190, 90), (160, 60, 220)],
    }

    def __init__(self,
                 *args,
                 generate_if_missing: bool = True,
                 splits: Optional[Dict[str, int]] = None,
                 image_size: int = 256,
                 seed: int = 0,
                 **kwargs) -> None:
        self.generate_if_missing = generate_if_missing
        self.splits = dict(splits or DEFAULT_SPLITS)
        self.image_size = image_size
        self.seed = seed
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        if self.generate_if_missing:
            check_generated_dataset_root(self.data_root, 'val' if self.test_mode else 'train')
            generate_shapes_dataset(self.data_root, self.splits, self.image_size, self.seed,
                                    verbose=get_dist_info()[0] == 0)
            if self.ann_file.endswith('_train.json') and get_dist_info()[0] == 0:
                # A fingerprint to compare runs on different machines with;
                # only rank 0 logs, so only rank 0 reads the files for it.
                print_log(f'GhostShapes {self.data_root}: generator v{GENERATOR_VERSION}, '
                          f'splits {self.splits}, seed {self.seed}, content sha256 '
                          f'{content_digest(self.data_root)[:16]}', logger='current')
        # Clear errors before pycocotools sees the files.
        filter_empty = bool((self.filter_cfg or {}).get('filter_empty_gt')) and not self.test_mode
        check_coco_dataset(self.ann_file, self.data_prefix.get('img', ''),
                           self.metainfo['classes'], filter_empty_gt=filter_empty)
        return super().load_data_list()
