"""ncnn (CPU, through its Python binding): runs the folders of
``pytorch2ncnn.py`` (``model.ncnn.param``/``.bin``, ``meta.json``; a
two-stage detector's RoI head as a second network). The network stops at
every prior's decoded box and scores; the app's post-processing
(:mod:`ghostnet_mmdet.deploy.app_postprocess`) does the rest."""
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np

from ..app_postprocess import APP_FAMILIES
from ..contract import (BIN_FILE, PARAM_FILE, ROI_BIN_FILE, ROI_PARAM_FILE, DeployError,
                        app_folder, read_app_metadata)

FILE_KIND = 'app'


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


def extract(net, input_blob: str, array: np.ndarray, outputs: Dict[str, str],
            where: str = 'the network') -> Dict[str, np.ndarray]:
    """Run ``net`` on ``array`` (fed to ``input_blob``): the blobs of
    ``outputs`` (name -> blob) as arrays."""
    import ncnn
    array = np.ascontiguousarray(array, dtype=np.float32)
    extractor = net.create_extractor()
    # ncnn.Mat wraps the array's memory: ``array`` stays referenced until
    # the outputs are out.
    extractor.input(input_blob, ncnn.Mat(array))
    results = {}
    for name, blob in outputs.items():
        status, mat = extractor.extract(blob)
        if status != 0:
            raise DeployError(f'ncnn could not compute {blob} ({name}) of {where}')
        results[name] = np.array(mat, copy=True)
    return results


class Model:
    """An ncnn export folder loaded (weights stored in half precision when
    it was exported with ``--fp16``): ``model(image)`` gives the network's
    outputs for one ``3 x H x W`` float32 image; :meth:`roi_head` runs a
    two-stage detector's second network."""

    def __init__(self, path: str, num_threads: Optional[int] = None) -> None:
        self.folder = app_folder(path, 'ncnn')
        self.meta = read_app_metadata(self.folder, 'ncnn', APP_FAMILIES)
        fp16 = self.meta.get('weights') == 'fp16'
        self.net = load_ncnn(self.folder, num_threads, fp16=fp16)
        self.roi_net = None
        if 'roi_head' in self.meta:
            for name in (ROI_PARAM_FILE, ROI_BIN_FILE):
                if not osp.isfile(osp.join(self.folder, name)):
                    raise DeployError(f'{path} is a two-stage export without its RoI head: '
                                      f'{osp.join(self.folder, name)} is missing')
            self.roi_net = load_ncnn(self.folder, num_threads, fp16=fp16,
                                     files=(ROI_PARAM_FILE, ROI_BIN_FILE))

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        return extract(self.net, self.meta['input'], image, self.meta['outputs'], self.folder)

    def roi_head(self, features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The RoI head network on ``[R, C * h * w]`` pooled features: class
        probabilities and box deltas."""
        roi_head = self.meta['roi_head']
        results = extract(self.roi_net, roi_head['input'], features, roi_head['outputs'],
                          self.folder)
        return results['scores'], results['deltas']
