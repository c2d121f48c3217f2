"""Train a detector: MMDetection's tools/train.py, with the GhostNet plugin.

Same flags as MMDetection's (--work-dir, --amp, --auto-scale-lr, --resume,
--cfg-options, --launcher), plus checks that fail early and clearly, before
the first iteration: the config (neck channels and head strides against the
backbone), the machine (--amp or SyncBN without a GPU), the checkpoint
(load_from / --resume against the model), then the dataset files and their
contents. Multi-process training on CPU-only machines runs with gloo
(tools/dist_train.sh CONFIG NPROC).

    python tools/train.py configs/retinanet_ghostnet.py
    python tools/train.py CONFIG --resume                # latest complete checkpoint
    python tools/train.py CONFIG --cfg-options train_dataloader.batch_size=4
"""
import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.apis import check_detector_checkpoint, find_resumable_checkpoint
from ghostnet_mmdet.apis.cli import add_trust_argument, reports_user_errors, tool_config
from ghostnet_mmdet.apis.config_check import check_detector_config, check_machine
from ghostnet_mmdet.apis.distributed import prepare_cpu_distributed
from ghostnet_mmdet.utils.dataset_check import check_config_datasets, check_dataset_files
from ghostnet_mmdet.utils.safe_load import trust_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    add_trust_argument(parser, 'the --resume or load_from checkpoint')
    # torch.distributed launchers pass --local-rank (>= 2.0) or --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args) -> Config:
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = tool_config(args)
    check_machine(cfg, amp=args.amp)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr and \
                'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or '
                               '"auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in your'
                               ' configuration file.')
    # resume: an explicit checkpoint > the latest complete one in work_dir
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = find_resumable_checkpoint(cfg.work_dir)
        if cfg.load_from is None:
            cfg.resume = False
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.trust_checkpoint and cfg.get('load_from'):
        trust_checkpoint(cfg.load_from)
    return cfg


@reports_user_errors
def main(argv=None):
    args = parse_args(argv)
    from mmdet.utils import setup_cache_size_limit_of_dynamo
    setup_cache_size_limit_of_dynamo()
    cfg = build_config(args)
    # Config and model first, then data: each error before any slow work.
    check_detector_config(cfg)
    splits = ['train'] + (['val'] if cfg.get('val_cfg') else [])
    check_dataset_files(cfg, splits)
    started_group = prepare_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if cfg.get('load_from'):
        # --resume needs the exact model; load_from may fine-tune a part.
        check_detector_checkpoint(runner.model, cfg.load_from, partial=not cfg.get('resume'))
    check_config_datasets(cfg, splits)
    runner.train()
    if started_group:
        torch.distributed.destroy_process_group()
    return 0


if __name__ == '__main__':
    sys.exit(main())
