"""The deploy benchmark of ``tools/analysis_tools/benchmark_deploy.py``:
every detector (or backbone) in every deploy form, timed in one interleaved
run (see that tool for the modes and how to read the figures)."""
import os.path as osp
import re
import tempfile

import torch
from mmengine.config import Config
from mmengine.hub import get_config

from mmdet.structures import DetDataSample
from ..deploy import ExportError, export_backbone_onnx, export_onnx
from ..deploy.backends import runtime_call
from ..deploy.contract import INPUT_NAMES, model_feeds
from ..deploy.export.ghostnet_form import DEFAULT_CHANNEL_BLOCK, to_export_form
from ..deploy.export.layout import layout_breaks
from ..deploy.quantize import (DEFAULT_KEEP_FP32, conv_kinds, onnx_conv_nodes, quantize_onnx)
from ..utils.benchmark import (best_ratio_median, interleaved, medians, processor_name,
                               ratio_median)
from .inference import detector_to_time

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
    # The peers (configs/baselines/README.md); LiteGFL-GhostNet trained with V3's
    # branches deploys as LiteGFL-GhostNet itself.
    'NanoDet-Plus-m ShuffleNetV2-1.0x, GhostShapes':
        'configs/baselines/nanodet-plus-m_shufflenetv2-1.0x_ghostpan_1xb8-1.5k_shapes.py',
    'YOLOX-nano, GhostShapes': 'configs/baselines/yolox_nano_1xb8-1.5k_shapes.py',
    'LiteGFL GhostNet-1.0x, COCO': 'configs/ghostnet/litegfl_ghostnet-1.0x_ghostpan_4xb96-320-300e_coco.py',
    'RetinaNet GhostNet-1.1x, COCO': 'configs/ghostnet/retinanet_ghostnet-1.1x_fpn_1x_coco.py',
    'YOLOX GhostNet-1.0x, COCO': 'configs/ghostnet/yolox_ghostnet-1.0x_8xb8-300e_coco.py',
    'YOLOv3 GhostNet-1.0x, GhostShapes': 'configs/ghostnet/yolov3_ghostnet-1.0x_1xb8-1.5k_shapes.py',
    'Faster R-CNN GhostNet-1.1x, COCO': 'configs/ghostnet/faster-rcnn_ghostnet-1.1x_fpn_1x_coco.py',
    'RetinaNet R-50 (MMDetection), COCO': 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
}
MODES = ('eager', 'fused', 'onnxruntime', 'openvino', 'onnxruntime-int8', 'openvino-int8')
# App runtimes (pytorch2ncnn.py's folders: float32, or half-precision weights
# and storage; pytorch2executorch.py's, float32) with the app's NumPy
# post-processing: not in the default modes.
APP_MODES = ('ncnn', 'ncnn-fp16', 'executorch')
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


def app_call(model, part, name, size, threads, folder, mode):
    """A function of a numpy input that runs the fused model (or its
    backbone) exported by pytorch2ncnn.py's or pytorch2executorch.py's code
    in that runtime: a detector with the app's post-processing, a backbone
    to its feature maps."""
    from ..deploy import RUNTIMES, BackboneForExport
    from ..deploy.export.executorch import export_executorch
    from ..deploy.export.ncnn import export_ncnn, export_network_ncnn
    runtime, _, variant = mode.partition('-')
    path = osp.join(folder, re.sub(r'\W+', '_', f'{name}_{size}_{mode}'))
    if runtime == 'ncnn' and part == 'detector':
        export_ncnn(model, path, (size, size), fp16=variant == 'fp16')
    elif runtime == 'ncnn':
        export_network_ncnn(BackboneForExport(model.backbone), path, (size, size),
                            fp16=variant == 'fp16')
        from ..deploy.backends.ncnn import extract, load_ncnn
        net = load_ncnn(path, threads, fp16=variant == 'fp16')
        blobs = {f'out{i}': f'out{i}' for i in range(len(model.backbone.out_indices))}
        return lambda x: extract(net, 'in0', x[0], blobs)
    else:
        if part == 'detector':
            export_executorch(model, path, (size, size))
        else:
            from ..deploy.backends.executorch import load_program
            from ..deploy.export.executorch import export_module_executorch
            program = export_module_executorch(BackboneForExport(model.backbone), path,
                                               (size, size))
            method = load_program(program, threads)
            return lambda x: method.execute([torch.from_numpy(x)])
    detector = RUNTIMES[runtime](path, dict(type='DetDataPreprocessor'), num_threads=threads)
    img_shape = [[size, size]]
    return lambda x: detector.infer(dict(input=x, img_shape=img_shape))


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
        if mode in APP_MODES:
            try:
                calls[(name, mode)] = app_call(fast, part, name, size, threads, folder, mode)
            except ExportError as err:  # e.g. a network pnnx cannot lower for ncnn
                print(f'  {name}, {size}, {mode}: not timed: {err}')
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


def time_deploy(detectors, args, checkpoints, image=None):
    """Every detector of ``detectors`` (name -> config) in every mode of
    ``args`` (the tool's arguments) at every size: ``results`` ((name,
    mode, size) -> median ms) and ``times`` (size -> the interleaved run)."""
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
    return results, times


def software() -> str:
    """The versions of torch and of every runtime installed."""
    from importlib.metadata import PackageNotFoundError, version
    import onnxruntime
    import openvino
    text = (f'torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, '
            f'OpenVINO {openvino.__version__.split("-")[0]}')
    for package in ('ncnn', 'pnnx', 'executorch'):
        try:
            text += f', {package} {version(package)}'
        except PackageNotFoundError:
            pass
    return text


def write_medians(path, results, args, detectors) -> None:
    """The medians, with the processor, versions, threads and date, as JSON
    (``.dev_scripts/record_latency.py`` puts them into the metafiles)."""
    import datetime
    import json
    medians_out = {}
    for (name, mode, size), value in results.items():
        medians_out.setdefault(name, {}).setdefault(mode, {})[size] = round(value, 3)
    with open(path, 'w') as f:
        json.dump(dict(processor=processor_name(), software=software(), part=args.part,
                       threads=args.threads, rounds=args.rounds,
                       date=datetime.date.today().isoformat(), configs=detectors,
                       medians=medians_out), f, indent=1)


def print_report(results, times, args):
    """The table of medians, and the per-round ratio medians asked for."""
    names = list(dict.fromkeys(name for name, _, _ in results))
    header = ' | '.join(f'{mode} {size}' for size in args.sizes for mode in args.modes)
    print(f'\n| {args.part} | {header} |')
    print('|---|' + '---|' * (len(args.sizes) * len(args.modes)))
    for name in names:
        cells = ' | '.join(f'{results[(name, mode, size)]:.1f}'
                           if (name, mode, size) in results else '-'
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
                    if not (top in name and other and other != name) or mode != 'best' and \
                            not {(name, mode), (other, mode)} <= set(run):
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

