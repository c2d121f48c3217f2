"""Every figure lives once: the metafiles (OpenMMLab's schema) hold each
result with its machine, threads, software and date; the docs' tables are
rendered from them (a cell edited by hand fails here); every config of
configs/ghostnet and configs/baselines has its entry, with the parameter
count of the model the config builds; and a figure in a docs page's prose
names the machine it was measured on."""
import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS
from ghostnet_mmdet.utils.metafiles import read_machines, read_metafile

from .detection_utils import REPO

spec = importlib.util.spec_from_file_location('render_tables',
                                              REPO / '.dev_scripts' / 'render_tables.py')
render_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_tables)

METAFILES = sorted((REPO / 'configs').glob('*/metafile.yml'))
MODELS_BY_CONFIG = {model['Config']: model for metafile in METAFILES
                    for model in read_metafile(metafile)[1]['Models']}
MACHINES = read_machines(REPO)


def test_the_model_index_imports_every_metafile():
    index = yaml.safe_load((REPO / 'model-index.yml').read_text())
    assert sorted(index['Import']) == sorted(str(f.relative_to(REPO)) for f in METAFILES)


def test_every_config_has_its_entry_and_every_entry_its_config():
    configs = {str(p.relative_to(REPO)) for folder in ('ghostnet', 'baselines')
               for p in (REPO / 'configs' / folder).glob('*.py')}
    assert set(MODELS_BY_CONFIG) == configs
    for config, model in MODELS_BY_CONFIG.items():
        assert model['Name'] == Path(config).stem


def test_every_figure_says_where_and_when_it_was_measured():
    for model in MODELS_BY_CONFIG.values():
        for result in model.get('Results', []):
            assert result['Machine'] in MACHINES, model['Name']
            assert re.fullmatch(r'2026-\d\d-\d\d', str(result['Date'])), model['Name']
            assert result['Threads'] in (1, 2) and 'torch' in result['Software']
            assert 0 < result['Metrics']['bbox_mAP'] < 1
            log = result.get('Training Log')
            if log:
                scalars = [yaml.safe_load(line) for line in (REPO / log).read_text().splitlines()]
                final = [s for s in scalars if 'coco/bbox_mAP' in s][-1]
                assert final['coco/bbox_mAP'] == result['Metrics']['bbox_mAP'], log
        for entry in model['Metadata'].get('inference time (ms/im)', []):
            assert entry['hardware'] in MACHINES and entry['value'] > 0
            assert {'backend', 'batch size', 'mode', 'resolution', 'threads', 'software',
                    'date'} <= set(entry)


@pytest.mark.parametrize('config', sorted(c for c, m in MODELS_BY_CONFIG.items()
                                          if m['Metadata']['Training Data'] == 'GhostShapes'))
def test_the_parameter_count_is_the_built_models(config):
    cfg = Config.fromfile(str(REPO / config))
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) == \
        MODELS_BY_CONFIG[config]['Metadata']['Parameters']


def test_every_table_is_rendered_from_the_metafiles():
    pages = render_tables.pages()
    marked = [p for p in pages if render_tables.MARKER.search(p.read_text())]
    assert {'README.md', 'configs/ghostnet/README.md', 'configs/baselines/README.md',
            'docs/en/benchmarks.md'} <= {str(p.relative_to(REPO)) for p in marked}
    assert {str(p.relative_to(REPO)): render_tables.stale_tables(p) for p in marked} == \
        {str(p.relative_to(REPO)): [] for p in marked}


def test_a_cell_edited_by_hand_is_caught():
    readme = REPO / 'README.md'
    text = readme.read_text()
    match = render_tables.MARKER.search(text)
    row = next(line for line in match.group('body').splitlines() if line.startswith('| Retina'))
    cells = row.split(' | ')
    assert re.fullmatch(r'0\.\d{3}', cells[4])  # bbox mAP
    cells[4] = '0.999'
    edited = text.replace(row, ' | '.join(cells), 1)
    assert render_tables.stale_tables(readme, edited) == [match.group('spec')]


# --- a figure in prose names its machine ----------------------------------

FENCE = re.compile(r'```.*?```', re.S)
# A time, an mAP-like figure (not a learning rate or a tolerance), a ratio.
FIGURE = re.compile(r'\b\d+(?:\.\d+)?\s?(?:ms|s / iter|s per iteration|s/iteration|'
                    r'min(?:utes)?\b|seconds\b)|(?<!lr )(?<!within )\b0\.\d{3}\b|'
                    r'\b\d\.\d\d(?:-\d\.\d\d)?x\b')
MACHINE = re.compile(r'EPYC|Xeon|Core i\d|Ryzen|AVX|H100|H200|Kirin|Snapdragon|GPU')


def unattributed_figures(text: str):
    """Paragraphs (outside code and rendered tables) that give a time, a
    ratio or an mAP-like figure without naming a machine."""
    text = render_tables.MARKER.sub('', FENCE.sub('', text))
    return [paragraph.strip()[:120] for paragraph in re.split(r'\n\s*\n', text)
            if FIGURE.search(paragraph) and not MACHINE.search(paragraph)]


@pytest.mark.parametrize('page', render_tables.pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_figures_in_prose_name_their_machine(page):
    assert unattributed_figures(page.read_text()) == []


def test_the_figure_check_catches_what_it_is_for():
    assert unattributed_figures('The main job takes 28 min 43 s.\n\nIt reaches 0.679.') == [
        'The main job takes 28 min 43 s.', 'It reaches 0.679.']
    assert unattributed_figures('On the AVX2 EPYC it takes 1.09 s per iteration.') == []
    assert unattributed_figures('```\n0.679 in a log\n```\n<!-- table: x -->\n0.5 ms\n'
                                '<!-- /table -->') == []
