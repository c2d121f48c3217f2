"""Reading and writing the metafiles (configs/*/metafile.yml, OpenMMLab's
schema) and the machines they name (configs/machines.yml): what the scripts
that record figures, render tables and plot them share."""
from pathlib import Path
from typing import Dict, Tuple

import yaml


def read_machines(repo: Path) -> Dict[str, dict]:
    """``{name: {name, processor, isa}}`` of ``repo``'s configs/machines.yml."""
    return yaml.safe_load((Path(repo) / 'configs' / 'machines.yml').read_text())


def read_metafile(path: Path) -> Tuple[str, dict]:
    """``(header comment, content)`` of a metafile."""
    text = Path(path).read_text()
    return ''.join(line for line in text.splitlines(True) if line.startswith('#')), \
        yaml.safe_load(text)


def write_metafile(path: Path, header: str, content: dict) -> None:
    """Write a metafile with its header comment, keys in their order."""
    Path(path).write_text(header + yaml.safe_dump(content, sort_keys=False, width=100,
                                                 allow_unicode=True))
