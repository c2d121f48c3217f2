"""Where a training iteration's time goes: data loading, preprocessing,
backbone, neck and head forward, the loss (anchor generation, assignment and
target building, classification and box losses), backward, optimizer step,
as medians over iterations after a warm-up, with each part's share.

    python tools/analysis_tools/profile_train.py \\
        configs/ghostnet/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py --iters 30 --ops 5

The model, optimizer and data are the config's, built as tools/train.py
builds them; each part is timed with the wall clock around the call (the
parts of the loss nest inside "loss"). CPU only; threads as torch sets them
(``--threads``).
"""
import argparse
import statistics
import tempfile
import time
from collections import defaultdict

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.utils.benchmark import processor_name


class Timings:
    """Wall-clock milliseconds of named calls, per iteration."""

    def __init__(self):
        self.current = defaultdict(float)
        self.iterations = []

    def wrap(self, owner, attribute, name):
        function = getattr(owner, attribute)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.current[name] += (time.perf_counter() - start) * 1000

        setattr(owner, attribute, timed)

    def module(self, module, name):
        starts = []
        module.register_forward_pre_hook(lambda *_: starts.append(time.perf_counter()))

        def after(*_):
            self.current[name] += (time.perf_counter() - starts.pop()) * 1000

        module.register_forward_hook(after)

    def next_iteration(self, keep):
        if keep:
            self.iterations.append(dict(self.current))
        self.current = defaultdict(float)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--iters', type=int, default=30, help='iterations timed (default 30)')
    parser.add_argument('--warmup', type=int, default=5, help='iterations first (default 5)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--ops', type=int, default=0, metavar='N',
                        help="then N more iterations under torch.profiler: the operators "
                        "(forward and backward) with the most time of their own")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config entries, as tools/train.py does (to time '
                        'an A/B: e.g. optim_wrapper.optimizer.fused=False)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = tempfile.mkdtemp(prefix='profile_train_')
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)  # the model, as tools/train.py builds it
    model = runner.model
    model.init_weights()
    model.train()
    optim_wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    loader = runner.build_dataloader(cfg.train_dataloader)

    timings = Timings()
    head = model.bbox_head
    timings.module(model.backbone, 'backbone forward')
    timings.module(model.neck, 'neck forward')
    timings.module(head, 'head forward')
    timings.module(model.data_preprocessor, 'preprocess')
    timings.wrap(head, 'loss_by_feat', 'loss (all of it)')
    timings.wrap(head.prior_generator, 'grid_priors', 'loss: anchors')
    if hasattr(head, 'assigner'):
        timings.wrap(head.assigner, 'assign', 'loss: assignment')
    if hasattr(head, 'sampler'):
        timings.wrap(head.sampler, 'sample', 'loss: sampling')
    timings.module(head.loss_cls, 'loss: classification loss')
    timings.module(head.loss_bbox, 'loss: box loss')
    timings.wrap(optim_wrapper, 'backward', 'backward')
    timings.wrap(optim_wrapper, 'step', 'optimizer step (clipping included)')

    data = iter(loader)
    totals = []
    for index in range(args.warmup + args.iters):
        start = time.perf_counter()
        batch = next(data)
        timings.current['data'] += (time.perf_counter() - start) * 1000
        model.train_step(batch, optim_wrapper)
        totals.append((time.perf_counter() - start) * 1000)
        timings.next_iteration(keep=index >= args.warmup)
        if index == args.warmup - 1:
            print(f'warm-up done ({args.warmup} iterations); timing {args.iters}', flush=True)
    if args.ops:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(args.ops):
                model.train_step(next(data), optim_wrapper)
        print(profiler.key_averages().table(sort_by='self_cpu_time_total', row_limit=15))
    total = statistics.median(totals[args.warmup:])
    names = list(dict.fromkeys(k for it in timings.iterations for k in it))
    print(f'\n{processor_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads; '
          f'{args.config}; median of {args.iters} iterations: {total:.0f} ms')
    print('\n| part | ms per iteration | share |\n|---|---|---|')
    for name in names:
        value = statistics.median(it.get(name, 0.0) for it in timings.iterations)
        print(f'| {name} | {value:.1f} | {value / total:.0%} |')
    measured = statistics.median(
        sum(v for k, v in it.items() if not k.startswith('loss: ')) for it in timings.iterations)
    print(f'| rest (logging, loss parsing, other Python) | {max(total - measured, 0):.1f} | '
          f'{max(total - measured, 0) / total:.0%} |')


if __name__ == '__main__':
    main()
