"""CPU latency of detectors (or their backbones alone) in every deploy form,
in one interleaved run: PyTorch eager (the config as it is), PyTorch fused
(deploy form: backbone switch_to_deploy, every BatchNorm folded, NHWC), and
the fused model exported to ONNX in each runtime's export form, run by
onnxruntime and by OpenVINO, in float32 and in INT8 made for that runtime
(QDQ, tools/deployment/quantize.py's defaults). A
detector's timing goes from the normalised input tensor to the final
detections (network, box decoding, NMS in the graph), batch 1; a
backbone's to its feature maps.

    python tools/analysis_tools/benchmark_deploy.py --sizes 320 640 --threads 2
    python tools/analysis_tools/benchmark_deploy.py --part backbone --sizes 320 640 \\
        --only GhostNet-1.0x MobileNetV2 --modes onnxruntime openvino
    python tools/analysis_tools/benchmark_deploy.py --sizes 320 --only SSDLite \\
        --ratios GhostNet/MobileNetV2 --modes eager onnxruntime openvino
    python tools/analysis_tools/benchmark_deploy.py --sizes 320 640 --only "RetinaNet GhostNet-1.0x" \\
        "RetinaNet MobileNetV2" --checkpoints "GhostNet-1.0x=a.pth" "MobileNetV2=b.pth" \\
        --image data/shapes/val/000003.jpg --ratios GhostNet/MobileNetV2

Ratios are medians of per-round ratios (steadier than ratios of medians on
a noisy machine). Each round runs every variant once, in a random order,
after --pause seconds of idling (default 0.1: onnxruntime's workers spin
after a run and slowed an OpenVINO run that followed at once by up to 2.3x
on a 2-core machine). Without --checkpoints the weights are random, and the
class biases are spread so that boxes reach NMS on random input (more than
a trained model's: see spread_head_scores); INT8 files are then calibrated
on random inputs (their speed does not depend on the ranges). With trained
--checkpoints and an --image, NMS has a real image's work. Modes: eager,
fused, onnxruntime, openvino, onnxruntime-int8, openvino-int8, and runtime
settings to compare: onnxruntime-extended / -basic (graph optimisation
level), onnxruntime-nolayout (its NCHWc pass off), openvino-throughput
(hint), openvino-resize (OpenVINO running onnxruntime's export form, whose
squeeze-excite gates are a Resize instead of a broadcast); and ncnn,
ncnn-fp16 (tools/deployment/pytorch2ncnn.py's files, a detector with the
app's NumPy post-processing after the network; on x86 these are x86
figures, not a phone's).

    python tools/analysis_tools/benchmark_deploy.py --sizes 320 --only "LiteGFL" \
        --modes ncnn onnxruntime openvino --ratios ncnn/onnxruntime ncnn/openvino
"""
import argparse
import os.path as osp
import re
import tempfile

import torch
from mmengine.config import Config
from mmengine.hub import get_config

from mmdet.structures import DetDataSample
import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.deploy import export_backbone_onnx, export_onnx
from ghostnet_mmdet.deploy.ghostnet_form import DEFAULT_CHANNEL_BLOCK, to_export_form
from ghostnet_mmdet.deploy.layout import layout_breaks
from ghostnet_mmdet.deploy.runtime_detector import INPUT_NAMES, model_feeds, runtime_call
from ghostnet_mmdet.deploy.quantize import (DEFAULT_KEEP_FP32, KEEP_FP32_KINDS, conv_kinds,
                                            onnx_conv_nodes, quantize_onnx)
from ghostnet_mmdet.apis import detector_to_time
from ghostnet_mmdet.utils.benchmark import (best_ratio_median, interleaved, medians,
                                            processor_name, ratio_median)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SHAPES = 'fpn_1xb8-1.5k_shapes.py'
DETECTORS = {
    'RetinaNet GhostNet-1.0x, GhostShapes': f'configs/ghostnet/retinanet_ghostnet-1.0x_{SHAPES}',
    'RetinaNet GhostNetV2-1.0x, GhostShapes': f'configs/ghostnet/retinanet_ghostnetv2-1.0x_{SHAPES}',
    'RetinaNet GhostNetV3-1.0x, GhostShapes': f'configs/ghostnet/retinanet_ghostnetv3-1.0x_{SHAPES}',
    'RetinaNet MobileNetV2, GhostShapes': f'configs/baselines/retinanet_mobilenetv2_{SHAPES}',
    'SSDLite GhostNet-1.0x, GhostShapes': 'configs/ghostnet/ssdlite_ghostnet-1.0x_1xb8-1.5k_shapes.py',
    'SSDLite MobileNetV2, GhostShapes': 'configs/baselines/ssdlite_mobilenetv2_1xb8-1.5k_shapes.py',
    'RTMDet GhostNet-1.0x, GhostShapes': 'configs/ghostnet/rtmdet_ghostnet-1.0x_1xb8-1.5k_shapes.py',
    'RTMDet CSPNeXt-tiny, GhostShapes': 'configs/baselines/rtmdet_cspnext-tiny_1xb8-1.5k_shapes.py',
    'LiteGFL GhostNet-1.0x, GhostShapes':
        'configs/ghostnet/litegfl_ghostnet-1.0x_ghostpan_1xb8-1.5k_shapes.py',
    'LiteGFL MobileNetV2, GhostShapes':
        'configs/baselines/litegfl_mobilenetv2_ghostpan_1xb8-1.5k_shapes.py',
    'LiteGFL GhostNet-1.0x, COCO': 'configs/ghostnet/litegfl_ghostnet-1.0x_ghostpan_4xb96-320-300e_coco.py',
    'RetinaNet GhostNet-1.1x, COCO': 'configs/ghostnet/retinanet_ghostnet-1.1x_fpn_1x_coco.py',
    'YOLOX GhostNet-1.0x, COCO': 'configs/ghostnet/yolox_ghostnet-1.0x_8xb8-300e_coco.py',
    'YOLOv3 GhostNet-1.0x, GhostShapes': 'configs/ghostnet/yolov3_ghostnet-1.0x_1xb8-1.5k_shapes.py',
    'Faster R-CNN GhostNet-1.1x, COCO': 'configs/ghostnet/faster-rcnn_ghostnet-1.1x_fpn_1x_coco.py',
    'RetinaNet R-50 (MMDetection), COCO': 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
}
MODES = ('eager', 'fused', 'onnxruntime', 'openvino', 'onnxruntime-int8', 'openvino-int8')
# ncnn (pytorch2ncnn.py's files: float32, or half-precision weights and
# storage) with the app's NumPy post-processing: not in the default modes.
NCNN_MODES = ('ncnn', 'ncnn-fp16')
SETTINGS = ('onnxruntime-extended', 'onnxruntime-basic', 'onnxruntime-nolayout',
            'openvino-throughput', 'openvino-resize')


def build(config, checkpoint=None, deploy_form=False):
    if config.startswith('mmdet::'):
        cfg = get_config(config)
    else:
        cfg = Config.fromfile(osp.join(REPO, config))
    return detector_to_time(cfg, checkpoint, deploy_form=deploy_form)


def export(model, part, path, size, backend, channel_block):
    """The fused model (or its backbone) as ONNX in ``backend``'s export
    form; returns the module whose parameter paths, after a prefix, name the
    graph's weights."""
    if part == 'detector':
        form = to_export_form(model, backend, channel_block)
        export_onnx(form, path, (size, size), backend=backend)
        return form, 'detector.'
    wrapper = export_backbone_onnx(model.backbone, path, (size, size), backend=backend,
                                   channel_block=channel_block)
    return wrapper, ''


def graph_operators(path):
    """Operators in the exported graph (constants and no-op Identity nodes, which
    the exporter adds for repeated initialisers, not counted)."""
    import onnx
    return sum(node.op_type not in ('Constant', 'Identity')
               for node in onnx.load(path, load_external_data=False).graph.node)


def int8_file(fp32_file, named, prefix, size, backend, keep_fp32=DEFAULT_KEEP_FP32):
    import onnx
    kinds = conv_kinds(named)
    keep = onnx_conv_nodes(onnx.load(fp32_file),
                           [path for kind in keep_fp32 for path in kinds[kind]], prefix, named)
    generator = torch.Generator().manual_seed(0)
    names = [i.name for i in onnx.load(fp32_file, load_external_data=False).graph.input]
    inputs = [model_feeds(names, torch.randn(1, 3, size, size, generator=generator).numpy())
              for _ in range(4)]
    path = fp32_file.replace('.onnx', '_int8.onnx')
    quantize_onnx(fp32_file, path, inputs, keep, backend=backend)
    return path


def mode_call(mode, path, threads, check_export):
    """A function of a numpy input that runs ``path`` in the mode's runtime."""
    if mode.startswith('onnxruntime'):
        run = runtime_call(
            path, 'onnxruntime', threads, check_export=check_export,
            optimization={'extended': 'extended', 'basic': 'basic'}.get(mode.rpartition('-')[2], 'all'),
            disabled_optimizers=['NchwcTransformer'] if mode.endswith('nolayout') else [])
    else:
        run = runtime_call(path, 'openvino', threads, check_export=check_export,
                           hint='THROUGHPUT' if mode.endswith('throughput') else 'LATENCY')
    return lambda x: run(model_feeds(INPUT_NAMES, x))


def ncnn_call(model, part, name, size, threads, folder, fp16=False):
    """A function of a numpy input that runs the fused model (or its
    backbone) exported by pytorch2ncnn.py's code in ncnn: a detector with
    the app's post-processing (NcnnDetector.infer), a backbone to its feature
    maps."""
    import ncnn
    from ghostnet_mmdet.deploy import BackboneForExport, NcnnDetector
    from ghostnet_mmdet.deploy.ncnn_detector import load_ncnn
    from ghostnet_mmdet.deploy.ncnn_export import (PARAM_FILE, export_ncnn, export_network_ncnn,
                                                   layer_counts)
    path = osp.join(folder, re.sub(r'\W+', '_', f'{name}_{size}_ncnn{"_fp16" if fp16 else ""}'))
    if part == 'detector':
        export_ncnn(model, path, (size, size), fp16=fp16)
    else:
        export_network_ncnn(BackboneForExport(model.backbone), path, (size, size), fp16=fp16)
    print(f'  {name}, {size}, ncnn{" fp16" if fp16 else ""}: '
          f'{sum(layer_counts(osp.join(path, PARAM_FILE)).values())} layers')
    if part == 'detector':
        runtime = NcnnDetector(path, dict(type='DetDataPreprocessor'), num_threads=threads)
        img_shape = [[size, size]]
        return lambda x: runtime.infer(dict(input=x, img_shape=img_shape))
    net = load_ncnn(path, threads, fp16=fp16)
    outputs = len(model.backbone.out_indices)

    def run(x):
        image = x[0]
        extractor = net.create_extractor()
        extractor.input('in0', ncnn.Mat(image))
        return [extractor.extract(f'out{i}')[1] for i in range(outputs)]

    return run


def image_input(model, image, size):
    """``image`` (BGR, as mmcv reads it) resized to ``size`` x ``size`` and
    normalised by the detector's own data preprocessor."""
    import mmcv
    resized = torch.from_numpy(mmcv.imresize(image, (size, size))).permute(2, 0, 1)
    with torch.no_grad():
        return model.data_preprocessor(dict(inputs=[resized], data_samples=None), False)['inputs']


def runners(name, config, checkpoint, part, modes, size, threads, folder, block,
            channel_block=DEFAULT_CHANNEL_BLOCK, keep_fp32=DEFAULT_KEEP_FP32, image=None):
    """(name, mode) -> a function of the normalised input tensor, and the
    input tensor for this detector (``image`` through its preprocessor, or
    random)."""
    samples = [DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                           scale_factor=(1.0, 1.0)))]
    calls = {}
    if 'eager' in modes:
        eager = build(config, checkpoint)
        calls[(name, 'eager')] = (lambda x: eager.predict(x, samples)) if part == 'detector' \
            else (lambda x: eager.backbone(x))
    fast = build(config, checkpoint, deploy_form=True)
    if 'fused' in modes:
        if part == 'detector':
            calls[(name, 'fused')] = lambda x: fast.predict(x, samples)
        else:
            calls[(name, 'fused')] = lambda x: fast.backbone(x)
    files = {}
    for mode in modes:
        if mode in ('eager', 'fused'):
            continue
        if mode in NCNN_MODES:
            calls[(name, mode)] = ncnn_call(fast, part, name, size, threads, folder,
                                            fp16=mode == 'ncnn-fp16')
            continue
        # Each runtime runs the file made for it; openvino-resize runs onnxruntime's.
        backend = 'onnxruntime' if mode.startswith('onnxruntime') or mode == 'openvino-resize' \
            else 'openvino'
        int8 = mode.endswith('-int8')
        if backend not in files:
            path = osp.join(folder, re.sub(r'\W+', '_', f'{name}_{size}_{backend}') + '.onnx')
            named, prefix = export(fast, part, path, size, backend, channel_block)
            breaks = layout_breaks(path, block, '/backbone/')
            print(f'  {name}, {size}, {backend} form: {graph_operators(path)} operators, '
                  f'{len(breaks)} layout breaks (block {block}) in the backbone' +
                  (f', e.g. {breaks[0]}' if breaks else ''))
            files[backend] = dict(fp32=path, named=named, prefix=prefix)
        entry = files[backend]
        if int8 and 'int8' not in entry:
            entry['int8'] = int8_file(entry['fp32'], entry['named'], entry['prefix'], size,
                                      backend, keep_fp32)
        calls[(name, mode)] = mode_call(mode.replace('-int8', ''),
                                        entry['int8' if int8 else 'fp32'], threads,
                                        check_export=part == 'detector')
    if image is not None:
        inputs = image_input(fast, image, size)
    else:
        inputs = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(size))
    return calls, inputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--part', choices=['detector', 'backbone'], default='detector')
    parser.add_argument('--sizes', type=int, nargs='+', default=[320, 640])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--pause', type=float, default=0.1,
                        help='seconds of idling before each timed call, so that one '
                        'runtime\'s spinning threads do not slow the next (0: none)')
    parser.add_argument('--modes', nargs='+', choices=MODES + NCNN_MODES + SETTINGS,
                        default=list(MODES))
    parser.add_argument('--only', nargs='*', help='names (substrings) of the detectors to time')
    parser.add_argument('--block', type=int, default=8,
                        help='channel block for the layout-break count (8 AVX2, 16 AVX-512)')
    parser.add_argument('--channel-blocks', type=int, nargs='*', default=[],
                        help='time the GhostNet detectors in export forms padded to each of '
                        f'these channel blocks (1: no padding) instead of {DEFAULT_CHANNEL_BLOCK}')
    parser.add_argument('--keep-fp32', nargs='*', choices=KEEP_FP32_KINDS,
                        default=list(DEFAULT_KEEP_FP32),
                        help='kinds of convolution the INT8 files keep in float32 (as quantize.py)')
    parser.add_argument('--ratios', nargs='*', default=[], metavar='A/B',
                        help='per-round ratio medians to print, e.g. '
                        '"GhostNet-1.0x/MobileNetV2" or "openvino-int8/openvino"')
    parser.add_argument('--checkpoints', nargs='*', default=[], metavar='NAME=PATH',
                        help='trained weights for a detector, e.g. "GhostNet-1.0x, GhostShapes=x.pth"')
    parser.add_argument('--image', help='time on this image (resized to each size, normalised '
                        'by each detector\'s preprocessor) instead of random input: with trained '
                        '--checkpoints, NMS gets the work of a real image')
    parser.add_argument('--out', help='also write the medians, with the processor, versions, '
                        'threads and date, to this JSON file (.dev_scripts/record_latency.py '
                        'puts them into the metafiles)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image = None
    if args.image:
        import mmcv
        if not osp.isfile(args.image):
            parser.error(f'--image {args.image!r} is not a file')
        image = mmcv.imread(args.image)
    checkpoints = dict(item.split('=', 1) for item in args.checkpoints)
    detectors = {name: config for name, config in DETECTORS.items()
                 if not args.only or any(part in name for part in args.only)}
    import onnxruntime
    import openvino
    software = (f'torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, '
                f'OpenVINO {openvino.__version__.split("-")[0]}')
    print(f'{processor_name()}; {software}; {args.part}, {args.threads} threads, '
          f'batch 1, {args.rounds} interleaved rounds, medians in ms')
    results, times = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            functions, inputs = {}, {}
            for name, config in detectors.items():
                checkpoint = next((p for key, p in checkpoints.items() if key in name), None)
                variants = [(name, DEFAULT_CHANNEL_BLOCK)]
                if 'GhostNet' in name and args.channel_blocks:
                    variants = [(f'{name} [block {block}]', block)
                                for block in args.channel_blocks]
                for variant, channel_block in variants:
                    calls, inputs[variant] = runners(
                        variant, config, checkpoint, args.part, args.modes, size, args.threads,
                        folder, args.block, channel_block, args.keep_fp32, image)
                    functions.update(calls)
            # Each mode's form of the input, made once, outside the timed calls.
            forms = {name: dict(eager=x, fused=x.contiguous(memory_format=torch.channels_last),
                                runtime=x.numpy()) for name, x in inputs.items()}
            calls = {(name, mode): (lambda function=function, x=forms[name].get(
                mode, forms[name]['runtime']): function(x))
                for (name, mode), function in functions.items()}
            with torch.no_grad():
                run = interleaved(calls, args.rounds, args.warmup, pause=args.pause)
            times[size] = run
            for (name, mode), value in medians(run).items():
                results[(name, mode, size)] = value
    names = list(dict.fromkeys(name for name, _, _ in results))
    if args.out:
        import datetime
        import json
        medians_out = {}
        for (name, mode, size), value in results.items():
            medians_out.setdefault(name, {}).setdefault(mode, {})[size] = round(value, 3)
        with open(args.out, 'w') as f:
            json.dump(dict(processor=processor_name(), software=software, part=args.part,
                           threads=args.threads, rounds=args.rounds,
                           date=datetime.date.today().isoformat(), configs=detectors,
                           medians=medians_out), f, indent=1)
    header = ' | '.join(f'{mode} {size}' for size in args.sizes for mode in args.modes)
    print(f'\n| {args.part} | {header} |')
    print('|---|' + '---|' * (len(args.sizes) * len(args.modes)))
    for name in names:
        cells = ' | '.join(f'{results[(name, mode, size)]:.1f}'
                           for size in args.sizes for mode in args.modes)
        print(f'| {name} | {cells} |')
    for size in args.sizes:
        print(f'\nper-round ratio medians at {size}x{size}:')
        run = times[size]
        for name in names:
            if 'eager' in args.modes:
                print(f'  {name}: ' + ', '.join(
                    f'{mode} {ratio_median(run, (name, mode), (name, "eager")):.2f}x'
                    for mode in args.modes if mode != 'eager') + ' of eager')
        for spec in args.ratios:
            top, bottom = spec.split('/')
            runtimes = [mode for mode in args.modes if mode in ('onnxruntime', 'openvino')]
            for mode in args.modes + (['best'] if len(runtimes) > 1 else []):
                for name in names:
                    other = next((n for n in names if bottom in n), None)
                    if not (top in name and other and other != name):
                        continue
                    if mode == 'best':
                        value = best_ratio_median(run, [(name, m) for m in runtimes],
                                                  [(other, m) for m in runtimes])
                        mode = 'best float32 runtime of each'
                    else:
                        value = ratio_median(run, (name, mode), (other, mode))
                    print(f'  {mode}: {name} / {other} = {value:.2f}')
            if top in args.modes and bottom in args.modes:
                for name in names:
                    print(f'  {name}: {top} / {bottom} = '
                          f'{ratio_median(run, (name, top), (name, bottom)):.2f}')


if __name__ == '__main__':
    main()
