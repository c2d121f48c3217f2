"""Draw bbox mAP against CPU latency (as the GhostNet papers' Figure 1) from
the measured numbers in a JSON file.

    python tools/analysis_tools/plot_speed_accuracy.py docs/speed_accuracy.json \\
        --out docs/speed_accuracy.png
    python tools/analysis_tools/plot_speed_accuracy.py docs/deploy_speed_accuracy.json \\
        --out docs/deploy_speed_accuracy.png

The JSON holds ``{"title": ..., "latency": "what was timed", "points":
[{"name": ..., "map": ..., "latency_ms": ..., "family": ...}, ...]}``, or
several such panels side by side: ``{"title": ..., "panels": [{"latency":
..., "points": [...]}, ...]}``; points of one family are joined by a line
(in latency order), and share a colour across panels.
"""
import argparse
import json

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def draw(axes, panel, colours):
    families = {}
    for point in panel['points']:
        families.setdefault(point.get('family', point['name']), []).append(point)
    for family, points in families.items():
        points.sort(key=lambda p: p['latency_ms'])
        colour = colours.setdefault(family, f'C{len(colours)}')
        axes.plot([p['latency_ms'] for p in points], [p['map'] for p in points], marker='o',
                  color=colour, linestyle='-' if len(points) > 1 else 'none', label=family)
        for point in points:
            axes.annotate(point['name'], (point['latency_ms'], point['map']),
                          textcoords='offset points', xytext=(4, 3), fontsize=6.5)
    axes.set_xlabel(f'CPU latency (ms): {panel["latency"]}', fontsize=8)
    axes.set_ylabel('bbox mAP (GhostShapes val)')
    if panel.get('log_x'):
        from matplotlib.ticker import FormatStrFormatter
        axes.set_xscale('log')
        for axis_formatter in (axes.xaxis.set_major_formatter, axes.xaxis.set_minor_formatter):
            axis_formatter(FormatStrFormatter('%g'))
        axes.tick_params(axis='x', which='minor', labelsize=6)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc='lower right')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('table', help='JSON file of measured points')
    parser.add_argument('--out', required=True, help='PNG to write')
    args = parser.parse_args()
    with open(args.table) as f:
        table = json.load(f)
    panels = table.get('panels') or [table]
    figure, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.6), dpi=150,
                                squeeze=False)
    colours = {}
    for axis, panel in zip(axes[0], panels):
        draw(axis, panel, colours)
        if len(panels) > 1 and panel.get('title'):
            axis.set_title(panel['title'], fontsize=9)
    figure.suptitle(table.get('title', ''), fontsize=10)
    figure.tight_layout()
    figure.savefig(args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
