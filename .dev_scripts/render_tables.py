"""Render the docs' tables from the metafiles and results files.

Every accuracy, time and latency figure lives once: in a metafile
(configs/*/metafile.yml, OpenMMLab's schema) or a results file
(docs/results/*.yml), with the machine (configs/machines.yml), threads,
software and date it was measured with. A page holds a rendered table
between two markers:

    <!-- table: shapes metafiles=ghostnet,baselines -->
    ...
    <!-- /table -->

Kinds: ``shapes`` (GhostShapes results, one row per model and machine),
``coco`` (the COCO configs: size and the paper's figure), ``latency`` (the
models' ``inference time (ms/im)`` entries, one table per machine and date),
``results file=NAME`` (a results file), ``peers machine=M names=A,B``
(models side by side on one machine: accuracy per seed, size, training
time, latency per runtime and precision). Links are written relative to the
page.

    python .dev_scripts/render_tables.py            # rewrite the tables
    python .dev_scripts/render_tables.py --check    # exit 1 if a table differs
"""
import argparse
import functools
import os.path as osp
import re
import sys
from pathlib import Path
from typing import Dict, List

import yaml

from ghostnet_mmdet.utils.metafiles import read_machines, read_metafile

REPO = Path(__file__).resolve().parents[1]
PAGES = ['README.md', 'docs/en/*.md', 'docs/en/*/*.md', 'configs/*/README.md']
MARKER = re.compile(r'<!-- table: (?P<spec>[^>]*?) -->\n(?P<body>.*?)<!-- /table -->', re.S)


def load_yaml(path: Path):
    with open(path) as f:
        return yaml.safe_load(f)


@functools.lru_cache()
def machines() -> Dict[str, dict]:
    return read_machines(REPO)


def models(metafiles: List[str]) -> List[dict]:
    found = []
    for name in metafiles:
        found += read_metafile(REPO / 'configs' / name / 'metafile.yml')[1]['Models']
    return found


def _link(page: Path, target: str, text: str) -> str:
    return f'[{text}]({osp.relpath(REPO / target, page.parent)})'


def _number(value, digits=3) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def _millions(value) -> str:
    return f'{value / 1e6:.2f}M'


def _machine_notes(used: Dict[tuple, str]) -> str:
    """The machines a table names (processor, ISA), then the software."""
    known = machines()
    lines = [f"{known[machine]['name']}: {known[machine]['processor']}, "
             f"{known[machine]['isa']}." for machine in sorted({m for m, _ in used})]
    software = sorted({s for _, s in used})
    return ' '.join(lines) + ' ' + ' '.join(f'{s}.' for s in software)


def _table(header: List[str], rows: List[List[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines)


def render_shapes(page: Path, metafiles: str = 'ghostnet,baselines', detector: str = '') -> str:
    rows, used, notes = [], {}, []
    for model in models(metafiles.split(',')):
        meta = model['Metadata']
        if meta.get('Training Data') != 'GhostShapes' or detector not in meta['Detector']:
            continue
        for result in model.get('Results', []):
            metrics = result['Metrics']
            used[(result['Machine'], result['Software'])] = True
            machine = f"{machines()[result['Machine']]['name']}, {result['Date']}"
            if result['Threads'] != 2:
                machine += f", {result['Threads']} thread"
            if result.get('Seed'):
                machine += f", seed {result['Seed']}"
            if result.get('Note'):
                notes.append(result['Note'])
                marks = sorted(set(notes), key=notes.index).index(result['Note']) + 1
                machine += ' ' + '*' * marks
            log = result.get('Training Log')
            time = _number(result.get('Training Time (s/iter)'), 2)
            rows.append([meta['Detector'], meta['Backbone'], _millions(meta['Parameters']),
                         _number(meta.get('FLOPs (G)'), 2) + 'G', _number(metrics['bbox_mAP']),
                         _number(metrics.get('bbox_mAP_50')), _number(metrics.get('bbox_mAP_s')),
                         time, machine,
                         _link(page, model['Config'], 'config') +
                         (' / ' + _link(page, log, 'log') if log else '')])
    header = ['detector', 'backbone', 'params', 'FLOPs', 'bbox mAP', 'mAP50', 'mAP small',
              's / iter', 'machine, date', 'files']
    footer = ('GhostShapes validation split (200 images), 1500 iterations of batch 8 from '
              'scratch, seed 0, 2 threads unless said; FLOPs at 256x256. '
              + _machine_notes(used))
    for index, note in enumerate(sorted(set(notes), key=notes.index)):
        footer += f" {'*' * (index + 1)} {note[0].upper()}{note[1:]}."
    return _table(header, rows) + '\n\n' + footer + '\n'


def render_coco(page: Path, metafiles: str = 'ghostnet', collection: str = None) -> str:
    rows = []
    for model in models(metafiles.split(',')):
        meta = model['Metadata']
        if meta.get('Training Data') != 'COCO' or collection not in (None, model['In Collection']):
            continue
        flops = meta.get('FLOPs (G)')
        rows.append([_link(page, model['Config'], osp.basename(model['Config'])),
                     meta['Detector'], meta['Backbone'], meta['Input Size'],
                     _millions(meta['Parameters']), '-' if flops is None else f'{flops:.2f}G',
                     _number(meta.get('Paper box AP'), 1)])
    header = ['config', 'detector', 'backbone', 'input', 'params', 'FLOPs', "paper's box AP"]
    return _table(header, rows) + '\n\nNot trained on COCO by this project: the last column is ' \
        "GhostNet's Table 8 (COCO val, 12 epochs from ImageNet weights), not a result of " \
        'these files.\n'


def render_latency(page: Path, metafiles: str = 'ghostnet,baselines', detector: str = '') -> str:
    runs: Dict[tuple, Dict[str, Dict[str, float]]] = {}
    configs = {}
    for model in models(metafiles.split(',')):
        if detector not in model['Metadata']['Detector']:
            continue
        for entry in model['Metadata'].get('inference time (ms/im)', []):
            key = (entry['hardware'], entry['software'], entry['date'], entry['resolution'],
                   entry['batch size'], entry['threads'], entry['mode'], entry.get('run'))
            name = model['Name']
            configs[name] = model
            runs.setdefault(key, {}).setdefault(name, {})[entry['backend']] = entry['value']
    parts = []
    for key, timed in runs.items():
        machine, software, date, resolution, batch, threads, mode, _ = key
        backends = sorted({b for values in timed.values() for b in values})
        rows = [[configs[n]['Metadata']['Detector'], configs[n]['Metadata']['Backbone']] +
                [_number(values.get(b), 1) for b in backends]
                for n, values in timed.items()]
        parts.append(
            _table(['detector', 'backbone'] + [f'{b} ms' for b in backends], rows) +
            f"\n\n{mode}, batch {batch}, {resolution.strip('()').replace(', ', 'x')}, {threads} "
            f'threads, medians of one interleaved run; {date}. ' +
            _machine_notes({(machine, software): True}) + '\n')
    return '\n'.join(parts)


def render_results(page: Path, file: str) -> str:
    data = load_yaml(REPO / 'docs' / 'results' / f'{file}.yml')
    rows = [[str(cell) for cell in row] for row in data['rows']]
    text = _table(data['columns'], rows) + '\n\n' + data['caption'].strip()
    text += f" {data['threads']} threads; {data['date']}. " + \
        _machine_notes({(data['machine'], data['software']): True})
    if data.get('command'):
        text += f"\n\n```bash\n{data['command'].strip()}\n```"
    return text + '\n'


BACKEND_ORDER = ['onnxruntime', 'OpenVINO', 'ncnn', 'ExecuTorch']


def render_peers(page: Path, machine: str, names: str, resolution: str = '320',
                 run: str = None) -> str:
    """Side by side on one machine: the models ``names`` (metafile Names,
    in this order) with their GhostShapes accuracy (every seed), size,
    training time and deployed latency in every runtime and precision
    measured there at ``resolution`` in the interleaved run ``run`` (as
    record_latency.py --run named it)."""
    by_name = {m['Name']: m for m in models(['ghostnet', 'baselines'])}
    missing = [name for name in names.split(',') if name not in by_name]
    if missing:
        raise ValueError(f'{page}: peers table names unknown models {missing}')
    where = f'({resolution}, {resolution})'
    rows_models = [by_name[name] for name in names.split(',')]
    columns, used = set(), {}
    for model in rows_models:
        for entry in model['Metadata'].get('inference time (ms/im)', []):
            if entry['hardware'] == machine and entry['resolution'] == where and \
                    entry['backend'] in BACKEND_ORDER and entry.get('run') == run:
                columns.add((entry['backend'], entry['mode']))
                used[(machine, entry['software'])] = True
    columns = sorted(columns, key=lambda c: (BACKEND_ORDER.index(c[0]), c[1] != 'FP32', c[1]))
    rows, notes = [], []
    for model in rows_models:
        meta = model['Metadata']
        results = sorted((r for r in model.get('Results', []) if r['Machine'] == machine),
                         key=lambda r: r.get('Seed', 0))
        for result in results:
            used[(machine, result['Software'])] = True

        def seeds(key):
            return ' / '.join(_number(r['Metrics'].get(key)) for r in results) or '-'

        first = results[0] if results else {}
        time = _number(first.get('Training Time (s/iter)'), 2)
        if first.get('Note'):
            notes.append(first['Note'])
            time += ' ' + '*' * (sorted(set(notes), key=notes.index).index(first['Note']) + 1)
        latency = {(e['backend'], e['mode']): e['value']
                   for e in meta.get('inference time (ms/im)', [])
                   if e['hardware'] == machine and e['resolution'] == where and
                   e.get('run') == run}
        rows.append([meta['Detector'], meta['Backbone'], _millions(meta['Parameters']),
                     _number(meta.get('FLOPs (G)'), 2) + 'G', seeds('bbox_mAP'),
                     seeds('bbox_mAP_s'), time] +
                    [_number(latency.get(column), 1) for column in columns] +
                    [_link(page, model['Config'], 'config')])
    header = ['detector', 'backbone', 'params', 'FLOPs (256)', 'bbox mAP', 'mAP small',
              's / iter'] + [f'{b} {m} ms' for b, m in columns] + ['config']
    footer = (f"{machines()[machine]['name']} only, 2 threads. Accuracy: GhostShapes validation "
              'split, 1500 iterations of batch 8 from scratch at 256x256, one value per seed '
              f'(seed 0 first). Latency: {resolution}x{resolution}, batch 1, the whole detector '
              'deployed (random weights with spread scores, NMS included; ncnn and ExecuTorch '
              "with the app's NumPy post-processing; INT8 files calibrated on random inputs, "
              "which does not change their speed), medians of one interleaved run of every "
              "detector and runtime. '-': not measured or not made. " + _machine_notes(used))
    for index, note in enumerate(sorted(set(notes), key=notes.index)):
        footer += f" {'*' * (index + 1)} {note[0].upper()}{note[1:]}."
    return _table(header, rows) + '\n\n' + footer + '\n'


RENDERERS = dict(shapes=render_shapes, coco=render_coco, latency=render_latency,
                 results=render_results, peers=render_peers)


def render_block(page: Path, spec: str) -> str:
    kind, *options = spec.split()
    if kind not in RENDERERS:
        raise ValueError(f'{page}: unknown table kind {kind!r} (known: {sorted(RENDERERS)})')
    kwargs = dict(option.split('=', 1) for option in options)
    return RENDERERS[kind](page, **kwargs)


def render_page(page: Path, text: str) -> str:
    """``text`` with every marked table rendered anew."""
    return MARKER.sub(lambda m: f"<!-- table: {m.group('spec')} -->\n"
                      f"{render_block(page, m.group('spec'))}<!-- /table -->", text)


def pages() -> List[Path]:
    return sorted({p for pattern in PAGES for p in REPO.glob(pattern)})


def stale_tables(page: Path, text: str = None) -> List[str]:
    """The specs of the tables of ``page`` (or of ``text``, as if it were
    ``page``) that differ from their rendering."""
    text = page.read_text() if text is None else text
    return [m.group('spec') for m in MARKER.finditer(text)
            if m.group('body') != render_block(page, m.group('spec'))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='Render the docs\' tables from the metafiles')
    parser.add_argument('--check', action='store_true',
                        help='change nothing; exit 1 naming the tables that differ')
    args = parser.parse_args(argv)
    stale = 0
    for page in pages():
        text = page.read_text()
        rendered = render_page(page, text)
        if rendered == text:
            continue
        stale += 1
        if args.check:
            specs = ', '.join(stale_tables(page))
            print(f'{page.relative_to(REPO)}: tables differ from the metafiles: {specs}')
        else:
            page.write_text(rendered)
            print(f'{page.relative_to(REPO)}: rendered')
    return 1 if args.check and stale else 0


if __name__ == '__main__':
    sys.exit(main())
