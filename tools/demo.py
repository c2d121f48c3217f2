"""Draw a detector's boxes, labels and scores on images.

    python tools/demo.py IMAGE_OR_FOLDER [...] CONFIG CHECKPOINT --out-dir outputs/
    python tools/demo.py IMAGE CONFIG model.onnx --backend onnxruntime --out-dir outputs/
    python tools/demo.py IMAGE CONFIG model.onnx --backend openvino --out-dir outputs/
    python tools/demo.py IMAGE CONFIG ncnn_model/ --backend ncnn --out-dir outputs/
    python tools/demo.py data/shapes/val/000000.jpg \
        configs/ghostnet/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes.py \
        work_dirs/retinanet_ghostnet-1.0x_fpn_1xb8-1.5k_shapes/iter_1500.pth --out-dir demo/

Uses MMDetection's inference API and DetLocalVisualizer; one PNG per image
in --out-dir, at the image's own size. For a whole split with ground truth,
use ``tools/test.py CONFIG CHECKPOINT --show-dir DIR``.
"""
import argparse
import os
import os.path as osp
import sys

import mmcv
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

from mmdet.apis import inference_detector
from mmdet.registry import VISUALIZERS
import ghostnet_mmdet  # noqa: F401  (registers GhostNet, applies compat fixes)
from ghostnet_mmdet.apis import config_metainfo, load_detector
from ghostnet_mmdet.apis.cli import add_trust_argument, missing_input, reports_user_errors
from ghostnet_mmdet.deploy import RUNTIMES
from ghostnet_mmdet.utils.safe_load import trust_checkpoint

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('inputs', nargs='+', help='image files or folders of images')
    parser.add_argument('config', help='detector config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-dir', default='outputs', help='where pictures go (default outputs/)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw detections scoring at least this (default 0.3)')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda:0'")
    parser.add_argument('--backend', choices=['pytorch', *RUNTIMES], default='pytorch',
                        help='the PyTorch checkpoint, or a model exported by '
                        'tools/deployment/pytorch2onnx.py (or quantize.py) run by onnxruntime or '
                        'OpenVINO (give the .onnx file as CHECKPOINT), or by pytorch2ncnn.py / '
                        'pytorch2executorch.py run by ncnn / ExecuTorch (give its folder)')
    parser.add_argument('--num-threads', type=int,
                        help="the deploy runtime's threads (default: the runtime's choice)")
    add_trust_argument(parser, 'the checkpoint')
    return parser.parse_args(argv)


def collect_images(inputs):
    images = []
    for path in inputs:
        if osp.isdir(path):
            images += sorted(osp.join(path, name) for name in os.listdir(path)
                             if name.lower().endswith(IMAGE_SUFFIXES))
        elif osp.isfile(path):
            images.append(path)
        else:
            raise FileNotFoundError(f'input not found: {path}')
    if not images:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {inputs}')
    return images


@reports_user_errors
def main(argv=None):
    args = parse_args(argv)
    if not 0 <= args.score_thr <= 1:
        print(f'error: --score-thr must be in [0, 1], got {args.score_thr}', file=sys.stderr)
        return 2
    try:
        images = collect_images(args.inputs)
        missing = missing_input(args.config, args.checkpoint, args.backend, urls=False)
        if missing:
            raise FileNotFoundError(f'{missing[0]} file not found: {missing[1]}')
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if args.trust_checkpoint:
        trust_checkpoint(args.checkpoint)
    if args.backend != 'pytorch':
        cfg = Config.fromfile(args.config)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        metainfo = config_metainfo(cfg)
        model = RUNTIMES[args.backend](args.checkpoint, cfg.model.data_preprocessor,
                                       classes=metainfo['classes'], num_threads=args.num_threads)
        model.cfg, model.dataset_meta = cfg, metainfo
    else:
        # A checkpoint that does not fit is refused before random boxes are drawn.
        model = load_detector(args.config, args.checkpoint, device=args.device)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    os.makedirs(args.out_dir, exist_ok=True)
    progress = ProgressBar(len(images))
    written = []
    for path in images:
        result = inference_detector(model, path)
        image = mmcv.imconvert(mmcv.imread(path), 'bgr', 'rgb')
        out_file = osp.join(args.out_dir, osp.splitext(osp.basename(path))[0] + '.png')
        visualizer.add_datasample(osp.basename(path), image, data_sample=result, draw_gt=False,
                                  show=False, pred_score_thr=args.score_thr, out_file=out_file)
        written.append(out_file)
        progress.update()
    print(f'\nwrote {len(written)} picture(s) to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
