"""The documentation cannot rot silently: every relative link of README.md,
docs/ and configs/*/README.md reaches an existing file (and heading), every
config path it names exists, and every flag it shows a tool of tools/
taking is accepted by that tool's own argument parser."""
import contextlib
import importlib.util
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from .detection_utils import REPO

PAGES = sorted([REPO / 'README.md', *(REPO / 'docs').rglob('*.md'),
                *(REPO / 'configs').glob('*/README.md')])
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
CONFIG = re.compile(r'(?<![\w/:.-])(configs/[\w./{},-]+\.py)')
FENCE = re.compile(r'```[a-z]*\n(.*?)```', re.S)
TOOL = re.compile(r'(tools/[\w/]+\.py)((?:[^\n]|\\\n)*)')
FLAG = re.compile(r'(?<![\w-])(--[a-z][a-z0-9-]*)')


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r'[`*_]', '', heading.strip().lower())
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(page: Path):
    text = FENCE.sub('', page.read_text())
    return {slug(line.lstrip('#')) for line in text.splitlines() if line.startswith('#')}


def broken_links(page: Path):
    """The relative links of ``page`` that lead nowhere."""
    broken = []
    for target in LINK.findall(FENCE.sub('', page.read_text())):
        if re.match(r'[a-z]+:', target):
            continue  # https:, mailto:
        path, _, anchor = target.partition('#')
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f'{target}: no such file')
        elif anchor and resolved.suffix == '.md' and anchor not in anchors(resolved):
            broken.append(f'{target}: no heading #{anchor} in {resolved.name}')
    return broken


def missing_configs(page: Path):
    """Config paths named in ``page`` (brace lists expanded) that do not exist."""
    missing = []
    for name in CONFIG.findall(page.read_text()):
        names = [name]
        braces = re.search(r'\{([^}]*)\}', name)
        if braces:
            names = [name[:braces.start()] + part + name[braces.end():]
                     for part in braces.group(1).split(',')]
        # configs/my_dataset/ is the folder the custom-dataset guide has the
        # user make.
        missing += [n for n in names
                    if not (REPO / n).is_file() and not n.startswith('configs/my_dataset/')]
    return missing


def tool_flags(page: Path):
    """(tool, flags) of every tools/*.py command in ``page``'s code blocks."""
    found = []
    for block in FENCE.findall(page.read_text()):
        for tool, rest in TOOL.findall(block):
            rest = rest.split('#')[0]  # a comment after the command
            found.append((tool, FLAG.findall(rest)))
    return found


_HELP = {}


def accepted_flags(tool: str):
    """The option strings of ``tool``'s argument parser, read from its own
    ``--help`` (run in this interpreter)."""
    if tool not in _HELP:
        spec = importlib.util.spec_from_file_location(f'doc_tool_{Path(tool).stem}', REPO / tool)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out = io.StringIO()
        argv = sys.argv
        sys.argv = [tool, '--help']
        try:
            with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
                try:
                    module.main(['--help'])
                except TypeError:  # a main() that reads sys.argv
                    module.main()
        finally:
            sys.argv = argv
        _HELP[tool] = set(FLAG.findall(out.getvalue()))
    return _HELP[tool]


def unknown_flags(page: Path):
    return [f'{tool} {flag}' for tool, flags in tool_flags(page)
            for flag in flags if flag not in accepted_flags(tool)]


def test_pages_were_found():
    names = {str(p.relative_to(REPO)) for p in PAGES}
    assert {'README.md', 'docs/en/deployment.md', 'docs/en/benchmarks.md',
            'configs/ghostnet/README.md'} <= names


@pytest.mark.parametrize('page', PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_configs_and_flags_are_real(page):
    assert broken_links(page) == []
    assert missing_configs(page) == []
    assert unknown_flags(page) == []


def test_readme_is_a_front_page():
    text = (REPO / 'README.md').read_text()
    assert len(text.splitlines()) <= 250
    for heading in ('Installation', 'Quick start', 'GhostNet in your own config', 'Model zoo',
                    'Deploy in three commands', 'Documentation', 'Citation', 'License'):
        assert f'## {heading}' in text


def test_no_unresolvable_references_to_time_or_place():
    for page in PAGES:
        text = page.read_text().lower()
        for phrase in ('this session', 'earlier session', 'this machine', 'loaded hour'):
            assert phrase not in text, (page, phrase)


def test_the_checks_catch_what_they_are_for(tmp_path):
    """A broken link, a missing config and an unknown flag are each reported."""
    page = tmp_path / 'page.md'
    page.write_text('# Title\n\n[ok](page.md#title) [gone](missing.md) [anchor](page.md#nope)\n'
                    'See configs/ghostnet/no_such_config.py.\n\n'
                    '```bash\npython tools/deployment/pytorch2onnx.py CFG CKPT --out x.onnx '
                    '--no-such-flag\n```\n')
    assert broken_links(page) == ['missing.md: no such file',
                                  'page.md#nope: no heading #nope in page.md']
    assert missing_configs(page) == ['configs/ghostnet/no_such_config.py']
    assert unknown_flags(page) == ['tools/deployment/pytorch2onnx.py --no-such-flag']


def test_the_python_inference_example_runs(trained, tmp_path, monkeypatch):
    """get_started.md's Python block, on the trained miniature: both APIs
    find the same detections, and the inferencer draws the picture."""
    folder, config, data_root, work_dir, _ = trained
    page = (REPO / 'docs' / 'en' / 'get_started.md').read_text()
    section = page[page.index('## Inference in Python'):]
    code = FENCE.search(section).group(1)
    image = sorted((data_root / 'val').glob('*.jpg'))[0]
    checkpoint = sorted(work_dir.glob('iter_*.pth'))[-1]
    for name, value in (('config', config), ('checkpoint', checkpoint), ('image', image)):
        code, count = re.subn(rf"^{name} = '[^']*'$", f"{name} = '{value}'", code, flags=re.M)
        assert count == 1, name
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, 'get_started.md', 'exec'), namespace)  # noqa: S102 (our own page)
    predictions = namespace['result']['predictions'][0]
    sample = namespace['sample']
    assert len(predictions['bboxes']) > 0
    assert predictions['labels'] == sample.pred_instances.labels.tolist()
    np.testing.assert_allclose(predictions['bboxes'], sample.pred_instances.bboxes.numpy(),
                               atol=1e-3)
    assert (tmp_path / 'outputs' / 'vis' / image.name).is_file()
