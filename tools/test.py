"""Test (and evaluate) a detector: MMDetection's tools/test.py, with the
GhostNet plugin.

Same flags as MMDetection's (--work-dir, --out, --show, --show-dir,
--wait-time, --cfg-options, --launcher, --tta). The checkpoint must fit the
detector exactly: a wrong file (ImageNet backbone weights, another width or
number of classes) is refused with what it looks like, instead of being
evaluated to mAP 0.000. Multi-process testing on CPU-only machines runs with
gloo (tools/dist_test.sh CONFIG CHECKPOINT NPROC).

    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --show-dir vis   # painted images
    python tools/test.py CONFIG model.onnx --backend onnxruntime
    python tools/test.py CONFIG model.onnx --backend openvino --num-threads 2
    python tools/test.py CONFIG ncnn_model/ --backend ncnn   # pytorch2ncnn.py's folder
    python tools/test.py CONFIG et_model/ --backend executorch   # pytorch2executorch.py's
"""
import argparse
import os
import sys

from mmengine.config import DictAction
from mmengine.runner import Runner

import torch

import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.apis import check_detector_checkpoint
from ghostnet_mmdet.apis.cli import (add_trust_argument, add_tta, missing_input,
                                     reports_user_errors, tool_config)
from ghostnet_mmdet.apis.config_check import check_detector_config
from ghostnet_mmdet.apis.distributed import prepare_cpu_distributed
from ghostnet_mmdet.deploy import RUNTIMES
from ghostnet_mmdet.utils.dataset_check import check_config_datasets, check_dataset_files
from ghostnet_mmdet.utils.safe_load import trust_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='MMDet test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (the .onnx file with '
                        '--backend onnxruntime or openvino, the folder pytorch2ncnn.py or '
                        'pytorch2executorch.py wrote with --backend ncnn or executorch)')
    parser.add_argument('--work-dir',
                        help='the directory to save the file containing evaluation metrics')
    parser.add_argument('--out', type=str,
                        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. If specified, it '
        'will be automatically saved to the work_dir/timestamp/show_dir')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true')
    parser.add_argument('--backend', choices=['pytorch', *RUNTIMES], default='pytorch',
                        help='run the PyTorch checkpoint, or a model exported by '
                        'tools/deployment/pytorch2onnx.py (or quantize.py) with onnxruntime or '
                        'OpenVINO, by pytorch2ncnn.py with ncnn, by pytorch2executorch.py with '
                        'ExecuTorch (CPU)')
    parser.add_argument('--num-threads', type=int,
                        help="the deploy runtime's threads (default: the runtime's choice)")
    add_trust_argument(parser, 'the checkpoint')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


@reports_user_errors
def main(argv=None):
    args = parse_args(argv)
    from mmdet.engine.hooks.utils import trigger_visualization_hook
    from mmdet.evaluation import DumpDetResults
    from mmdet.registry import RUNNERS
    from mmdet.utils import setup_cache_size_limit_of_dynamo
    setup_cache_size_limit_of_dynamo()

    missing = missing_input(args.config, args.checkpoint, args.backend)
    if missing:
        print(f'error: {missing[0]} file not found: {missing[1]}', file=sys.stderr)
        return 2
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        print(f'error: --out must be a .pkl or .pickle file, got {args.out}', file=sys.stderr)
        return 2
    cfg = tool_config(args)
    check_detector_config(cfg)
    check_dataset_files(cfg, ['test'])
    if args.trust_checkpoint:
        trust_checkpoint(args.checkpoint)
    deployed = args.backend != 'pytorch'
    if deployed and args.tta:
        print(f'error: --tta runs the PyTorch model; it does not combine with --backend '
              f'{args.backend}', file=sys.stderr)
        return 2
    cfg.load_from = None if deployed else args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        add_tta(cfg)

    started_group = prepare_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if deployed:
        runner.model = RUNTIMES[args.backend](
            args.checkpoint, cfg.model.data_preprocessor,
            classes=runner.test_dataloader.dataset.metainfo['classes'],
            num_threads=args.num_threads)
    else:
        detector = runner.model
        while hasattr(detector, 'module'):  # DDP and the TTA wrapper hold the detector
            detector = detector.module
        check_detector_checkpoint(detector, args.checkpoint)
    check_config_datasets(cfg, ['test'])
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.test()
    if started_group:
        torch.distributed.destroy_process_group()
    return 0


if __name__ == '__main__':
    sys.exit(main())
