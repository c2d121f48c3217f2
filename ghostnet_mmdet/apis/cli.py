"""What the command-line tools share: the errors that are the user's to fix,
reported as one clear message and exit status 2 instead of a traceback."""
import functools
import os.path as osp
import sys

from ..deploy import DeployError, ExportError
from ..utils.dataset_check import DatasetError, DatasetNotFoundError
from ..utils.safe_load import CheckpointError, trust_checkpoint
from .config_check import ConfigError
from .inference import load_detector

# Errors whose message says what is wrong and what to do.
USER_ERRORS = (CheckpointError, ConfigError, DatasetError, DatasetNotFoundError, DeployError,
               ExportError)


def reports_user_errors(main):
    """Decorate a tool's ``main``: a :data:`USER_ERRORS` exception becomes
    ``error: <message>`` on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as err:
            print(f'error: {err}', file=sys.stderr)
            return 2

    return wrapper


def add_trust_argument(parser, what: str) -> None:
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help=f'load {what} with the full unpickler, which can run code from the file: '
        'only for a file you trust that the safe loader refuses')


def load_detector_to_export(config: str, checkpoint: str, trust: bool = False):
    """What the export tools (pytorch2onnx.py, quantize.py) share: both files
    exist, the checkpoint is trusted if the user said so, and the detector
    is loaded with it (checked to fit)."""
    for path, what in ((config, 'config'), (checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise ExportError(f'{what} file not found: {path}')
    if trust:
        trust_checkpoint(checkpoint)
    return load_detector(config, checkpoint)
