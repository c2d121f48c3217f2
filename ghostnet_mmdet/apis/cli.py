"""What the command-line tools share: the errors that are the user's to fix,
reported as one clear message and exit status 2 instead of a traceback."""
import functools
import sys

from ..deploy import DeployError, ExportError
from ..utils.dataset_check import DatasetError, DatasetNotFoundError
from ..utils.safe_load import CheckpointError
from .config_check import ConfigError

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
