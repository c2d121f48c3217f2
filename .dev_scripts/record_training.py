"""Put a finished training into its metafile: the final CocoMetric figures,
the median time per iteration (logged intervals after the 150th, as the
tables give it), the machine, threads, software and date, and the run's
MMEngine scalars log, copied into configs/<folder>/logs/ so that the figure
can be audited. A result of the same machine and date is replaced.

    python tools/train.py CONFIG --work-dir work_dirs/run
    python .dev_scripts/record_training.py CONFIG work_dirs/run --machine epyc-avx512
    # a second seed (--cfg-options randomness.seed=1): a result of its own
    python .dev_scripts/record_training.py CONFIG work_dirs/run1 --machine epyc-avx512 --seed 1
"""
import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

from ghostnet_mmdet.utils.metafiles import read_machines, read_metafile, write_metafile

REPO = Path(__file__).resolve().parents[1]
METRICS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='the config, as configs/<folder>/<name>.py')
    parser.add_argument('work_dir', help='the --work-dir of the training')
    parser.add_argument('--machine', required=True, choices=sorted(read_machines(REPO)),
                        help='its name in configs/machines.yml')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0,
                        help="the run's randomness.seed (a result per machine, date and seed)")
    parser.add_argument('--note', help='what a reader must know about the run')
    args = parser.parse_args(argv)
    config = Path(args.config).resolve().relative_to(REPO)
    logs = sorted(Path(args.work_dir).glob('*/vis_data/scalars.json'))
    if not logs:
        parser.error(f'{args.work_dir} has no */vis_data/scalars.json (MMEngine\'s log)')
    log = logs[-1]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    final = [r for r in records if 'coco/bbox_mAP' in r]
    if not final:
        parser.error(f'{log} has no evaluation (coco/bbox_mAP): the training did not finish')
    times = [r['time'] for r in records if 'loss' in r and r.get('step', 0) > 150]
    date = log.parent.parent.name[:8]
    date = f'{date[:4]}-{date[4:6]}-{date[6:]}'
    import mmcv
    import mmdet
    import torch
    result = {'Task': 'Object Detection', 'Dataset': 'GhostShapes',
              'Metrics': {k: final[-1][f'coco/{k}'] for k in METRICS},
              'Machine': args.machine, 'Threads': args.threads, 'Date': date,
              'Software': f'torch {torch.__version__.split("+")[0]}, mmcv {mmcv.__version__}, '
                          f'mmdet {mmdet.__version__}'}
    if times:
        result['Training Time (s/iter)'] = round(statistics.median(times), 2)
    dumped = Path(args.work_dir) / f'{config.stem}.py'
    if dumped.is_file():
        from mmengine.config import Config
        seed = Config.fromfile(dumped).get('randomness', {}).get('seed', 0)
        if seed != args.seed:
            parser.error(f'{dumped} trained with seed {seed}, not --seed {args.seed}')
    if args.seed:
        result['Seed'] = args.seed
    seed = f'_seed{args.seed}' if args.seed else ''
    kept = config.parent / 'logs' / f'{config.stem}_{date.replace("-", "")}{seed}.json'
    (REPO / kept.parent).mkdir(exist_ok=True)
    shutil.copyfile(log, REPO / kept)
    result['Training Log'] = str(kept)
    if args.note:
        result['Note'] = args.note
    metafile = REPO / config.parent / 'metafile.yml'
    header, content = read_metafile(metafile)
    model = next((m for m in content['Models'] if m['Config'] == str(config)), None)
    if model is None:
        parser.error(f'{metafile.relative_to(REPO)} has no entry for {config}')
    model['Results'] = [r for r in model.get('Results', [])
                        if (r['Machine'], str(r['Date']), r.get('Seed', 0)) !=
                        (args.machine, date, args.seed)] + [result]
    write_metafile(metafile, header, content)
    print(f'{metafile.relative_to(REPO)}: {model["Name"]}: {result["Metrics"]}, '
          f'{result.get("Training Time (s/iter)")} s/iter, log {kept}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
