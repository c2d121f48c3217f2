"""Multi-process training and testing through MMEngine's launchers
(tools/dist_train.sh and tools/dist_test.sh, i.e. torchrun) on a CPU-only
machine with the gloo backend: loopback only, a free port, bounded in time,
no processes left behind.

What is compared with a 1-process run, and why: 2 processes x batch 2 against
1 process x batch 4, from one seed, without random flips (each process draws
its own flips), with GroupNorm in the backbone and head (BatchNorm statistics
would be per process, 2 images instead of 4, so the two runs would compute
different functions) and an ATSS head (its losses are normalised by the
number of positives averaged over all processes, so the DDP-averaged
gradient is the gradient of the global batch; RetinaNet normalises per
process). What remains is the order of floating-point sums (gradients summed
across processes by all-reduce instead of within one batch), so the
optimizer is SGD: Adam divides each gradient by its own magnitude, which
turns components that are zero but for rounding into full-size steps of
either sign (measured with the shapes recipe's AdamW: weights apart by up to
0.005 after 4 iterations, as far as they moved; the gradient norms agreed to
4 digits)."""
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import torch

from .detection_utils import REPO, read_metrics, run_tool, write_tiny_config

ITERS = 4
# Measured: after 4 SGD iterations the weights of the two runs are at most
# 6e-6 apart (float32 sums in another order, and oneDNN's kernels for a
# batch of 2 against 4), while training moved them by up to 7e-3. The
# tolerance is about ten times what was measured, and a hundred times
# below the largest move.
WEIGHT_TOLERANCE = 5e-5

RANK_DUMP_HOOK = '''
import os
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpRankWeights(Hook):
    """Every rank writes its first and final weights."""

    def _dump(self, runner, name):
        model = getattr(runner.model, 'module', runner.model)
        rank = int(os.environ.get('RANK', 0))
        torch.save(model.state_dict(), os.path.join(runner.work_dir, f'{name}{rank}.pth'))

    def before_train(self, runner):
        self._dump(runner, 'start')

    def after_train(self, runner):
        self._dump(runner, 'rank')
'''

DIST_CONFIG = f'''
# ATSS + GhostNet with GroupNorm, no flips: see the test module's docstring.
custom_imports = dict(imports=['ghostnet_mmdet', 'rank_dump_hook'], allow_failed_imports=False)
custom_hooks = [dict(type='DumpRankWeights')]
model.update(
    type='ATSS',
    backbone=dict(norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
    bbox_head=dict(
        _delete_=True, type='ATSSHead', num_classes=5, in_channels=64, stacked_convs=1,
        feat_channels=32, norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=4,
                              scales_per_octave=1, strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(_delete_=True, assigner=dict(type='ATSSAssigner', topk=9),
                   allowed_border=-1, pos_weight=-1, debug=False))
train_dataloader['dataset']['pipeline'] = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='PackDetInputs'),
]
# SGD: see the test module's docstring.
optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=0.01, momentum=0.9,
                                    weight_decay=1e-4))
train_cfg = dict(max_iters={ITERS}, val_interval={ITERS})
default_hooks = dict(checkpoint=dict(interval={ITERS}), logger=dict(interval=1))
'''


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_launcher(script, *args, cwd, timeout=420):
    """Run a dist_*.sh script in its own process group, and make sure that
    nothing of it outlives the call."""
    env = {**os.environ, 'PORT': str(free_port()), 'MASTER_ADDR': '127.0.0.1',
           'PYTHONPATH': f'{cwd}{os.pathsep}{os.environ.get("PYTHONPATH", "")}',
           'PYTHONUNBUFFERED': '1'}
    process = subprocess.Popen(['bash', str(script), *map(str, args)], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # no process of the group is left
    assert process.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp('dist')
    (folder / 'rank_dump_hook.py').write_text(RANK_DUMP_HOOK)
    config, _ = write_tiny_config(folder, extra=DIST_CONFIG)
    env = {'PYTHONPATH': f'{folder}{os.pathsep}{os.environ.get("PYTHONPATH", "")}'}
    single = run_tool(REPO / 'tools' / 'train.py', config, '--work-dir', folder / 'one',
                      cwd=folder, env=env)
    double = run_launcher(REPO / 'tools' / 'dist_train.sh', config, 2, '--work-dir',
                          folder / 'two', '--cfg-options', 'train_dataloader.batch_size=2',
                          cwd=folder)
    return folder, config, single.stdout + single.stderr, double


def test_two_processes_train_with_gloo(runs):
    _, _, _, log = runs
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # MMEngine's name for the world size
    assert f'Iter(train) [{ITERS}/{ITERS}]' in log
    assert not (runs[0] / 'data').exists()  # the tiny data, not the full set

def test_every_rank_ends_with_the_same_weights(runs):
    folder = runs[0]
    rank0 = torch.load(folder / 'two' / 'rank0.pth')
    rank1 = torch.load(folder / 'two' / 'rank1.pth')
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key


def test_two_processes_match_one_with_the_same_global_batch(runs):
    folder = runs[0]
    one = torch.load(folder / 'one' / 'rank0.pth')
    two = torch.load(folder / 'two' / 'rank0.pth')
    start_one = torch.load(folder / 'one' / 'start0.pth')
    start_two = torch.load(folder / 'two' / 'start0.pth')
    floats = [k for k, v in one.items() if v.is_floating_point()]
    assert all(torch.equal(start_one[k], start_two[k]) for k in floats)  # one seed
    worst = max((one[k] - two[k]).abs().max().item() for k in floats)
    assert worst <= WEIGHT_TOLERANCE, worst
    # The runs did train: weights moved far more than the tolerance.
    moved = max((one[k] - start_one[k]).abs().max().item() for k in floats)
    assert moved > 100 * WEIGHT_TOLERANCE
    # The global gradient norm that both runs logged, iteration by iteration.
    norms = [logged(folder / run, 'grad_norm') for run in ('one', 'two')]
    assert len(norms[0]) == ITERS
    assert norms[0] == pytest.approx(norms[1], rel=1e-4)


def logged(work_dir, key):
    values = []
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        values += [record[key] for record in map(json.loads, path.read_text().splitlines())
                   if key in record]
    return values


def test_dist_test_gives_the_metrics_of_test(runs):
    folder, config, _, _ = runs
    checkpoint = folder / 'one' / f'iter_{ITERS}.pth'
    run_tool(REPO / 'tools' / 'test.py', config, checkpoint, '--work-dir', folder / 'test1',
             cwd=folder, env={'PYTHONPATH': str(folder)})
    log = run_launcher(REPO / 'tools' / 'dist_test.sh', config, checkpoint, 2, '--work-dir',
                       folder / 'test2', cwd=folder)
    assert 'GPU number: 2' in log
    one, two = read_metrics(folder / 'test1'), read_metrics(folder / 'test2')
    keys = [k for k in one if k.startswith('coco/')]
    assert keys and {k: one[k] for k in keys} == {k: two[k] for k in keys}
    # The metrics file of the 2-process run is one valid JSON record, written
    # by rank 0 alone (MMEngine 0.10.7 dumps it from every rank).
    files = sorted((folder / 'test2').glob('*/*.json'))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    assert {k: record[k] for k in keys} == {k: two[k] for k in keys}
