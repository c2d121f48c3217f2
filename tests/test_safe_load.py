"""Checkpoints load with torch's weights-only unpickler and an exact
allowlist: MMEngine's own checkpoints and published-style weights load, a
file that would run code is refused everywhere (and the code provably does
not run), a trusted file loads on an explicit opt-in."""
import argparse
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from ghostnet_mmdet.models import GhostNet
from ghostnet_mmdet.utils import mmdet_to_official, read_state_dict
from ghostnet_mmdet.utils.safe_load import (TRUSTED_CHECKPOINTS_ENV, CorruptCheckpointError,
                                            UnsafeCheckpointError, allowed_global_names,
                                            safe_torch_load)

from .detection_utils import REPO, run_tool, run_tool_in_process

TOOLS = REPO / 'tools'


class Call:
    """Pickles as ``func(*args)``: how a malicious checkpoint runs code."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __call__(self, *args):  # pickle wants the reduce target to be callable
        raise AssertionError('only used through pickling')

    def __reduce__(self):
        return self.func, self.args


def touch_command(marker: Path) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).touch()"


def system_payload(marker: Path):
    """A 'checkpoint' whose unpickling calls os.system."""
    import os
    return dict(state_dict=dict(w=torch.zeros(1)),
                meta=Call(os.system, f'touch {marker}'))


def getattr_payload(marker: Path):
    """Runs code with nothing but getattr and the HistoryBuffer that MMEngine's
    checkpoints legitimately reference: HistoryBuffer.min.__globals__ ->
    __builtins__ -> eval. Only getattr on the HistoryBuffer class is allowed,
    so the second getattr must be refused."""
    module_globals = Call(getattr, HistoryBuffer.min, '__globals__')
    builtins = Call(Call(getattr, module_globals, 'get'), '__builtins__')
    evaluate = Call(Call(getattr, builtins, 'get'), 'eval')
    return dict(state_dict=dict(w=torch.zeros(1)),
                meta=Call(evaluate, touch_command(marker)))


PAYLOADS = dict(system=system_payload, getattr=getattr_payload)


@pytest.fixture(params=sorted(PAYLOADS))
def malicious(request, tmp_path):
    marker = tmp_path / f'pwned_{request.param}'
    path = tmp_path / f'{request.param}.pth'
    torch.save(PAYLOADS[request.param](marker), path)
    return path, marker, request.param


def test_payloads_are_real(malicious):
    """Control: the full unpickler does run them."""
    path, marker, _ = malicious
    torch.load(path, weights_only=False)
    assert marker.exists()


def expected_refusal(kind):
    return 'posix.system' if kind == 'system' else "getattr(function, '__globals__')"


def test_mmengine_loaders_refuse_code(malicious):
    path, marker, kind = malicious
    for load in (lambda: CheckpointLoader.load_checkpoint(str(path)),
                 lambda: _load_checkpoint(str(path)),
                 lambda: load_checkpoint(torch.nn.Linear(1, 1), str(path)),
                 lambda: read_state_dict(str(path))):
        with pytest.raises(UnsafeCheckpointError) as info:
            load()
        assert str(path) in str(info.value) and expected_refusal(kind) in str(info.value)
        assert '--trust-checkpoint' in str(info.value)
    assert not marker.exists()


def test_every_tool_refuses_code(malicious, trained, capsys, monkeypatch):
    path, marker, kind = malicious
    folder, config, data_root, work_dir, _ = trained
    monkeypatch.chdir(folder)
    image = data_root / 'val' / '000000.jpg'
    commands = [
        (TOOLS / 'test.py', config, path, '--work-dir', folder / 'refused_test'),
        (TOOLS / 'demo.py', image, config, path, '--out-dir', folder / 'refused_demo'),
        (TOOLS / 'train.py', config, '--work-dir', folder / 'refused_train',
         '--cfg-options', f'load_from={path}'),
        (TOOLS / 'train.py', config, '--work-dir', folder / 'refused_resume', '--resume', path),
        (TOOLS / 'model_converters' / 'ghostnet_to_mmdet.py', path, folder / 'out.pth'),
    ]
    for command in commands:
        status, _, stderr = run_tool_in_process(*command, capsys=capsys)
        assert status != 0, command
        assert f'error: refusing to load {path}' in stderr, stderr[-2000:]
        assert expected_refusal(kind) in stderr
    assert not marker.exists()


def test_a_refusal_from_the_command_line(trained, tmp_path):
    """The same as a user sees it: exit status 2, one message, no traceback."""
    folder, config = trained[:2]
    marker = tmp_path / 'pwned'
    path = tmp_path / 'model.pth'
    torch.save(system_payload(marker), path)
    result = run_tool(TOOLS / 'test.py', config, path, cwd=folder, expect_success=False)
    assert result.returncode == 2
    assert result.stderr.startswith(f'error: refusing to load {path}: it asks for `posix.system`')
    assert 'Traceback' not in result.stderr and not marker.exists()


def test_training_checkpoint_loads_with_the_allowlist(trained):
    """MMEngine's checkpoint: HistoryBuffer, numpy arrays and scalars,
    getattr(HistoryBuffer, 'min'), and nothing the allowlist lacks."""
    work_dir = trained[3]
    checkpoint = safe_torch_load(str(work_dir / 'iter_6.pth'))
    buffers = checkpoint['message_hub']['log_scalars']
    assert isinstance(buffers['train/loss'], HistoryBuffer)
    assert buffers['train/loss'].current() > 0
    assert checkpoint['message_hub']['log_scalars']['train/loss']._statistics_methods['min'] \
        is HistoryBuffer.min
    # Plain weights-only loading, without the allowlist, is what failed.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(work_dir / 'iter_6.pth', weights_only=True)


def test_allowlist_is_exactly_what_is_needed(tmp_path):
    names = allowed_global_names()
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in names
    assert 'builtins.getattr' in names
    assert all(name.startswith(('numpy.', 'mmengine.logging.', 'builtins.getattr'))
               for name in names), names
    # Numbers only: an object array (which could carry anything) is refused.
    path = tmp_path / 'objects.pth'
    torch.save(dict(meta=np.array([1, 'a'], dtype=object)), path)
    with pytest.raises(UnsafeCheckpointError, match='ObjectDType'):
        safe_torch_load(str(path))
    numbers = tmp_path / 'numbers.pth'
    torch.save(dict(meta=[np.arange(3, dtype=np.int32), np.float32(0.5), np.bool_(True)]), numbers)
    assert safe_torch_load(str(numbers))['meta'][1] == np.float32(0.5)


def test_published_layouts_load(tmp_path, capsys):
    """Official/timm state dicts (plain, wrapped, EMA) and the converter's
    output load as before."""
    model = GhostNet(out_indices=(2, 4, 6, 8, 9))
    official = mmdet_to_official(model.state_dict())
    for name, content in (('plain.pth', official), ('wrapped.pth', dict(state_dict=official)),
                          ('ema.pth', dict(state_dict_ema=official, epoch=300))):
        torch.save(content, tmp_path / name)
        assert set(read_state_dict(str(tmp_path / name))) == set(official)
    converted = tmp_path / 'converted.pth'
    status, _, _ = run_tool_in_process(TOOLS / 'model_converters' / 'ghostnet_to_mmdet.py',
                                       tmp_path / 'plain.pth', converted, capsys=capsys)
    assert status == 0
    GhostNet(init_cfg=dict(type='Pretrained', checkpoint=str(converted))).init_weights()


def test_trusted_file_loads_only_on_opt_in(tmp_path, monkeypatch):
    path = tmp_path / 'with_args.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(1)), meta=dict(args=argparse.Namespace(lr=0.1))),
               path)
    monkeypatch.delenv(TRUSTED_CHECKPOINTS_ENV, raising=False)
    with pytest.raises(UnsafeCheckpointError, match='argparse.Namespace'):
        CheckpointLoader.load_checkpoint(str(path))
    monkeypatch.setenv(TRUSTED_CHECKPOINTS_ENV, str(tmp_path / 'other.pth'))
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint(str(path))
    monkeypatch.setenv(TRUSTED_CHECKPOINTS_ENV, str(path))
    assert CheckpointLoader.load_checkpoint(str(path))['meta']['args'].lr == 0.1


def test_trust_flag_of_the_converter(tmp_path, capsys, monkeypatch):
    model = GhostNet(out_indices=(2, 4, 6, 8, 9))
    path = tmp_path / 'with_args.pth'
    torch.save(dict(state_dict=mmdet_to_official(model.state_dict()),
                    args=argparse.Namespace(epochs=300)), path)
    converter = TOOLS / 'model_converters' / 'ghostnet_to_mmdet.py'
    monkeypatch.delenv(TRUSTED_CHECKPOINTS_ENV, raising=False)
    status, _, stderr = run_tool_in_process(converter, path, tmp_path / 'a.pth', capsys=capsys)
    assert status != 0 and 'argparse.Namespace' in stderr
    assert not (tmp_path / 'a.pth').exists()
    status, _, _ = run_tool_in_process(converter, path, tmp_path / 'b.pth', '--trust-checkpoint',
                                       capsys=capsys)
    assert status == 0 and (tmp_path / 'b.pth').is_file()


def test_truncated_and_foreign_files_are_named(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save(dict(w=torch.randn(1000)), good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:2000])
    text = tmp_path / 'notes.pth'
    text.write_text('these are not weights\n')
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    for path, words in ((truncated, 'truncated'), (text, 'not a PyTorch checkpoint'),
                        (empty, 'an empty file')):
        with pytest.raises(CorruptCheckpointError) as info:
            CheckpointLoader.load_checkpoint(str(path))
        assert str(path) in str(info.value) and words in str(info.value)
