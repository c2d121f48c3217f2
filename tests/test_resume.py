"""A run killed with SIGKILL after a checkpoint resumes with --resume and
ends exactly where an uninterrupted run ends: the same weights, bit for bit,
and the same logged losses. A checkpoint left half-written is never taken."""
import glob
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ghostnet_mmdet.apis import find_resumable_checkpoint
from ghostnet_mmdet.utils.safe_load import safe_torch_load

from .detection_utils import REPO, run_tool, write_tiny_config

ITERS, KILL_AFTER = 6, 4
EXTRA = f'''
randomness = dict(seed=0, deterministic=True)
train_cfg = dict(max_iters={ITERS}, val_interval={ITERS})
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=-1), logger=dict(interval=1))
'''


def logged_losses(work_dir):
    """iteration -> logged training scalars; a later run's record of an
    iteration replaces an earlier one's."""
    losses = {}
    for path in sorted(glob.glob(f'{work_dir}/*/vis_data/scalars.json')):
        for line in Path(path).read_text().splitlines():
            record = json.loads(line)
            if 'loss' in record:
                losses[record['iter']] = {k: v for k, v in record.items()
                                          if k.startswith('loss')}
    return losses


def weights(path):
    return safe_torch_load(str(path))['state_dict']


def kill_after_checkpoint(config, work_dir, cwd, iteration):
    """Start training; SIGKILL it as soon as the checkpoint of ``iteration``
    is complete (MMEngine writes ``last_checkpoint`` after it)."""
    process = subprocess.Popen([sys.executable, str(REPO / 'tools' / 'train.py'), str(config),
                                '--work-dir', str(work_dir)], cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = work_dir / 'last_checkpoint'
    deadline = time.time() + 300
    try:
        while time.time() < deadline and process.poll() is None:
            if pointer.is_file() and pointer.read_text().strip().endswith(f'iter_{iteration}.pth'):
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None and time.time() >= deadline:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL, 'training ended before it could be killed'


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp('resume')
    config, _ = write_tiny_config(folder, extra=EXTRA)
    full = folder / 'full'
    run_tool(REPO / 'tools' / 'train.py', config, '--work-dir', full, cwd=folder)
    killed = folder / 'killed'
    kill_after_checkpoint(config, killed, folder, KILL_AFTER)
    assert not (killed / f'iter_{ITERS}.pth').exists()
    resumed = run_tool(REPO / 'tools' / 'train.py', config, '--work-dir', killed, '--resume',
                       cwd=folder)
    return folder, config, full, killed, resumed.stdout + resumed.stderr


def test_resume_after_sigkill_is_exact(runs):
    _, _, full, killed, log = runs
    assert f'resumed' in log.lower() and f'iter_{KILL_AFTER}.pth' in log
    expected, actual = weights(full / f'iter_{ITERS}.pth'), weights(killed / f'iter_{ITERS}.pth')
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


def test_logged_losses_equal_the_uninterrupted_run(runs):
    _, _, full, killed, _ = runs
    expected, actual = logged_losses(full), logged_losses(killed)
    assert sorted(expected) == list(range(1, ITERS + 1))
    assert actual == expected


def test_half_written_checkpoint_is_never_taken(runs, tmp_path, capsys):
    """What --resume takes (tools/train.py resumes from find_resumable_checkpoint,
    end to end in the kill test above): a checkpoint left truncated by a kill
    while writing it is skipped, with a warning that says why."""
    _, _, full, _, _ = runs
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    for step in (2, 4):
        shutil.copy(full / f'iter_{step}.pth', work_dir)
    # Killed while writing iter_6: a truncated file, named by last_checkpoint.
    data = (full / 'iter_6.pth').read_bytes()
    (work_dir / 'iter_6.pth').write_bytes(data[:len(data) // 2])
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_6.pth'))
    capsys.readouterr()
    assert find_resumable_checkpoint(str(work_dir)) == str(work_dir / 'iter_4.pth')
    captured = capsys.readouterr()
    log = captured.out + captured.err
    assert f'skipping {work_dir}/iter_6.pth' in log and 'truncated' in log


def test_pointer_to_a_removed_checkpoint(tmp_path):
    """max_keep_ckpts removes the old checkpoint before writing the new one:
    a kill in between leaves last_checkpoint naming a file that is gone."""
    torch.save(dict(state_dict=dict(w=torch.ones(1))), tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    (tmp_path / 'iter_2.pth').unlink()
    assert find_resumable_checkpoint(str(tmp_path)) is None
