"""Put the medians of a benchmark_deploy.py --out file into the metafiles,
as each model's ``inference time (ms/im)`` (MMDetection's key), replacing
the entries of the same machine and resolution.

    python tools/analysis_tools/benchmark_deploy.py --sizes 320 --only GhostShapes \
        --modes onnxruntime openvino --rounds 10 --out latency.json
    python .dev_scripts/record_latency.py latency.json --machine epyc-avx512
"""
import argparse
import json
import sys
from pathlib import Path

from ghostnet_mmdet.utils.metafiles import read_machines, read_metafile, write_metafile

REPO = Path(__file__).resolve().parents[1]
BACKENDS = dict(eager='PyTorch', fused='PyTorch (fused)', onnxruntime='onnxruntime',
                openvino='OpenVINO', ncnn='ncnn', executorch='ExecuTorch')
PRECISIONS = dict(int8='INT8', fp16='FP16')


def backend_and_mode(mode: str):
    """benchmark_deploy.py's mode -> (backend, precision): ``openvino-int8``
    is OpenVINO in INT8; a runtime setting (``onnxruntime-extended``) stays
    part of the backend's name."""
    runtime, _, variant = mode.partition('-')
    if variant in PRECISIONS:
        return BACKENDS.get(runtime, runtime), PRECISIONS[variant]
    return BACKENDS.get(mode, mode), 'FP32'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('results', help='the JSON file of benchmark_deploy.py --out')
    parser.add_argument('--machine', required=True, choices=sorted(read_machines(REPO)),
                        help='its name in configs/machines.yml')
    parser.add_argument('--run', help='a name for this interleaved run (e.g. peers): its '
                        'entries are a table of their own, beside those of other runs')
    args = parser.parse_args(argv)
    run = json.loads(Path(args.results).read_text())
    by_config = {config: name for name, config in run['configs'].items()}
    for metafile in sorted((REPO / 'configs').glob('*/metafile.yml')):
        header, content = read_metafile(metafile)
        for model in content['Models']:
            name = by_config.get(model['Config'])
            if name is None:
                continue
            entries = model['Metadata'].setdefault('inference time (ms/im)', [])
            for mode, sizes in run['medians'][name].items():
                backend, precision = backend_and_mode(mode)
                for size, value in sizes.items():
                    resolution = f'({size}, {size})'
                    entries[:] = [e for e in entries if not (
                        e['hardware'] == args.machine and e['resolution'] == resolution and
                        e['backend'] == backend and e['mode'] == precision and
                        e.get('run') == args.run)]
                    entries.append({'value': value, 'hardware': args.machine,
                                    'backend': backend, 'batch size': 1,
                                    'mode': precision, 'resolution': resolution,
                                    'threads': run['threads'], 'software': run['software'],
                                    'date': run['date'], **({'run': args.run} if args.run else {})})
            print(f'{metafile.relative_to(REPO)}: {model["Name"]}: {len(entries)} entries')
        write_metafile(metafile, header, content)
    return 0


if __name__ == '__main__':
    sys.exit(main())
