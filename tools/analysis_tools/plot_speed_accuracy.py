"""Draw bbox mAP against deployed CPU latency (as the GhostNet papers'
Figure 1) from the metafiles: each GhostShapes model with a result and an
``inference time (ms/im)`` entry of the same machine, one point per runtime.

    python tools/analysis_tools/plot_speed_accuracy.py --machine epyc-avx512 \\
        --resolution 320 --out docs/speed_accuracy.png

Figures of one machine only (configs/machines.yml): its newest result per
model, its latency entries at the resolution.
"""
import argparse
import re
import sys
from pathlib import Path

import matplotlib

from ghostnet_mmdet.utils.metafiles import read_machines, read_metafile

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def points(machine: str, resolution: int):
    """``{backend: [(name, latency_ms, bbox_mAP), ...]}`` of ``machine``."""
    found = {}
    for metafile in sorted((REPO / 'configs').glob('*/metafile.yml')):
        for model in read_metafile(metafile)[1]['Models']:
            results = [r for r in model.get('Results', []) if r['Machine'] == machine]
            if not results:
                continue
            result = max(results, key=lambda r: str(r['Date']))
            detector = re.split(r' \(| neck', model['Metadata']['Detector'])[0]
            name = f"{detector} {model['Metadata']['Backbone']}"
            for entry in model['Metadata'].get('inference time (ms/im)', []):
                if entry['hardware'] == machine and \
                        entry['resolution'] == f'({resolution}, {resolution})':
                    found.setdefault(entry['backend'], []).append(
                        (name, entry['value'], result['Metrics']['bbox_mAP']))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    machines = read_machines(REPO)
    parser.add_argument('--machine', required=True, choices=sorted(machines),
                        help='a name of configs/machines.yml')
    parser.add_argument('--resolution', type=int, default=320)
    parser.add_argument('--out', required=True, help='the PNG to write')
    args = parser.parse_args(argv)
    found = points(args.machine, args.resolution)
    if not found:
        parser.error(f'no model has both a result and a latency at {args.resolution} on '
                     f'{args.machine}')
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=150)
    by_model = {}
    for index, (backend, series) in enumerate(sorted(found.items())):
        axes.plot([p[1] for p in series], [p[2] for p in series], 'o', color=f'C{index}',
                  label=backend)
        for name, latency, value in series:
            by_model.setdefault(name, []).append((latency, value))
    # One label per model, at its fastest runtime; its runtimes joined.
    for name, runtimes in by_model.items():
        runtimes.sort()
        axes.plot(*zip(*runtimes), color='grey', linewidth=0.6, zorder=0)
        axes.annotate(name, runtimes[0], textcoords='offset points', xytext=(0, 5),
                      fontsize=6.5, ha='center')
    info = machines[args.machine]
    axes.set_xlabel(f'latency (ms), whole detector, {args.resolution}x{args.resolution}, batch 1')
    axes.set_ylabel('bbox mAP (GhostShapes val)')
    axes.set_title(f"{info['name']}: {info['processor']}", fontsize=8)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(args.out)
    print(f'{args.out}: {sum(len(s) for s in found.values())} points')
    return 0


if __name__ == '__main__':
    sys.exit(main())
