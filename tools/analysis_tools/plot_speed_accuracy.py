"""Draw bbox mAP against CPU latency for the backbones of the README's
GhostShapes comparison (as the GhostNet papers' Figure 1), from the
measured numbers in a JSON file.

    python tools/analysis_tools/plot_speed_accuracy.py docs/speed_accuracy.json \\
        --out docs/speed_accuracy.png

The JSON holds ``{"title": ..., "latency": "what was timed", "points":
[{"name": ..., "map": ..., "latency_ms": ..., "family": ...}, ...]}``;
points of one family are joined by a line.
"""
import argparse
import json

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('table', help='JSON file of measured points')
    parser.add_argument('--out', required=True, help='PNG to write')
    args = parser.parse_args()
    with open(args.table) as f:
        table = json.load(f)
    figure, axes = plt.subplots(figsize=(6.4, 4.4), dpi=150)
    families = {}
    for point in table['points']:
        families.setdefault(point.get('family', point['name']), []).append(point)
    for family, points in families.items():
        points.sort(key=lambda p: p['latency_ms'])
        xs = [p['latency_ms'] for p in points]
        ys = [p['map'] for p in points]
        axes.plot(xs, ys, marker='o', linestyle='-' if len(points) > 1 else 'none', label=family)
        for point in points:
            axes.annotate(point['name'], (point['latency_ms'], point['map']),
                          textcoords='offset points', xytext=(5, 4), fontsize=8)
    axes.set_xlabel(f'CPU latency (ms): {table["latency"]}')
    axes.set_ylabel('bbox mAP (GhostShapes val)')
    axes.set_title(table.get('title', ''), fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc='lower right')
    figure.tight_layout()
    figure.savefig(args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
