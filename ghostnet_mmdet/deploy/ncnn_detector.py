"""ncnn as a backend of MMDetection's tools: the folder that
``tools/deployment/pytorch2ncnn.py`` writes (``model.ncnn.param``,
``model.ncnn.bin``, ``meta.json``), run by ncnn's Python binding, with the
app's post-processing (:mod:`ghostnet_mmdet.deploy.app_postprocess`) after
it, as a phone app would run it."""
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np

from mmdet.registry import MODELS

from .app_postprocess import APP_FAMILIES, postprocess, two_stage_postprocess
from .ncnn_export import BIN_FILE, FORMAT, META_FILE, PARAM_FILE, ROI_BIN_FILE, ROI_PARAM_FILE
from .runtime_detector import INPUT_NAMES, DeployError, RuntimeDetector, first_line


def ncnn_folder(path: str) -> str:
    """The export folder for ``path`` (the folder, or a file in it)."""
    folder = path if osp.isdir(path) else osp.dirname(path)
    if not osp.exists(path):
        raise DeployError(f'ncnn model not found: {path} (give the folder that '
                          'tools/deployment/pytorch2ncnn.py wrote)')
    for name in (META_FILE, PARAM_FILE, BIN_FILE):
        if not osp.isfile(osp.join(folder, name)):
            raise DeployError(f'{path} is not an ncnn export of tools/deployment/pytorch2ncnn.py: '
                              f'{osp.join(folder, name)} is missing')
    return folder


def read_ncnn_metadata(folder: str) -> Dict:
    """``meta.json`` of an export folder, checked."""
    path = osp.join(folder, META_FILE)
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise DeployError(f'{path} is not the JSON that pytorch2ncnn.py writes: '
                          f'{first_line(err)}') from None
    if not isinstance(meta, dict) or meta.get('format') != FORMAT:
        raise DeployError(f'{path} was not written by tools/deployment/pytorch2ncnn.py '
                          f'(no "format": "{FORMAT}")')
    family = meta.get('postprocess', {}).get('family')
    if family not in APP_FAMILIES:
        raise DeployError(f'{path} names the post-processing family {family!r}; this version '
                          f'runs {APP_FAMILIES}')
    return meta


def load_ncnn(folder: str, num_threads: Optional[int] = None, fp16: bool = False,
              files: Tuple[str, str] = (PARAM_FILE, BIN_FILE)):
    """An ``ncnn.Net`` for the export folder's network ``files``, float32
    storage and arithmetic unless ``fp16`` (half-precision storage, and
    arithmetic where the CPU has it: ARMv8.2; x86 computes in float32)."""
    import ncnn
    net = ncnn.Net()
    opt = net.opt
    opt.use_fp16_storage = opt.use_fp16_packed = opt.use_fp16_arithmetic = bool(fp16)
    opt.use_bf16_storage = False
    opt.use_vulkan_compute = False
    if num_threads:
        opt.num_threads = int(num_threads)
    param, weights = osp.join(folder, files[0]), osp.join(folder, files[1])
    if net.load_param(param) != 0:
        raise DeployError(f'{param} is not an ncnn .param file ncnn can load')
    if net.load_model(weights) != 0:
        raise DeployError(f'{weights} does not hold the weights of {param} (ncnn could not '
                          'load it: wrong or truncated file)')
    return net


@MODELS.register_module()
class NcnnDetector(RuntimeDetector):
    """A detector exported to ncnn (the folder ``pytorch2ncnn.py`` wrote)
    run by ncnn on the CPU, then post-processed as an app does it (see
    :class:`~ghostnet_mmdet.deploy.runtime_detector.RuntimeDetector` for
    the arguments; ``onnx_file`` is the folder here). Files exported with
    ``--fp16`` run with ncnn's half-precision storage."""
    backend = 'ncnn'

    def _load(self, path: str, num_threads: Optional[int]) -> Tuple[Dict, List[str]]:
        self.folder = ncnn_folder(path)
        meta = read_ncnn_metadata(self.folder)
        fp16 = meta.get('weights') == 'fp16'
        self.net = load_ncnn(self.folder, num_threads, fp16=fp16)
        self.outputs = meta['outputs']
        self.roi_net = None
        if meta['postprocess']['family'] == 'two_stage':
            for name in (ROI_PARAM_FILE, ROI_BIN_FILE):
                if not osp.isfile(osp.join(self.folder, name)):
                    raise DeployError(f'{path} is a two-stage export without its RoI head: '
                                      f'{osp.join(self.folder, name)} is missing')
            self.roi_net = load_ncnn(self.folder, num_threads, fp16=fp16,
                                     files=(ROI_PARAM_FILE, ROI_BIN_FILE))
        # The network takes the image alone; the app's post-processing
        # takes each image's size.
        return meta, list(INPUT_NAMES)

    def _extract(self, net, input_blob: str, array: np.ndarray,
                 outputs: Dict[str, str]) -> Dict[str, np.ndarray]:
        """Run ``net`` on ``array`` (fed to ``input_blob``): the blobs of
        ``outputs`` (name -> blob) as arrays."""
        import ncnn
        array = np.ascontiguousarray(array, dtype=np.float32)
        extractor = net.create_extractor()
        # ncnn.Mat wraps the array's memory: ``array`` stays referenced
        # until the outputs are out.
        extractor.input(input_blob, ncnn.Mat(array))
        results = {}
        for name, blob in outputs.items():
            status, mat = extractor.extract(blob)
            if status != 0:
                raise DeployError(f'ncnn could not compute {blob} ({name}) of {self.folder}')
            results[name] = np.array(mat, copy=True)
        return results

    def run_network(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        """The network's outputs for one ``3 x H x W`` float32 image."""
        return self._extract(self.net, self.meta['input'], image, self.outputs)

    def run_roi_head(self, features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """A two-stage detector's RoI head network on ``[R, C * h * w]``
        pooled features: class probabilities and box deltas."""
        roi_head = self.meta['roi_head']
        results = self._extract(self.roi_net, roi_head['input'], features, roi_head['outputs'])
        return results['scores'], results['deltas']

    def _postprocess(self, outputs, img_shape):
        settings = self.meta['postprocess']
        if self.roi_net is not None:
            return two_stage_postprocess(outputs, settings, img_shape, self.run_roi_head)
        return postprocess(outputs, settings, img_shape)

    def infer(self, feeds: Dict[str, np.ndarray]):
        settings = self.meta['postprocess']
        width = settings['max_per_img']
        all_dets, all_labels = [], []
        for image, img_shape in zip(feeds['input'], feeds['img_shape']):
            dets, labels = self._postprocess(self.run_network(image), img_shape)
            padded = np.zeros((width, 5), np.float32)
            padded_labels = np.full(width, -1, np.int64)
            padded[:len(dets)], padded_labels[:len(labels)] = dets, labels
            all_dets.append(padded)
            all_labels.append(padded_labels)
        return np.stack(all_dets), np.stack(all_labels)

    def _run(self, feeds: Dict[str, np.ndarray]):
        return self.infer(feeds)
