"""Packaging for ghostnet_mmdet, a GhostNet backbone plugin for MMDetection 3.x.

torch, torchvision and mmcv (with compiled ops) are installed by
``tools/setup_env.sh``: torch comes from a pinned local build and mmcv has no
prebuilt wheel for it, so pip must not try to resolve them from scratch here.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version():
    namespace = {}
    with open(osp.join(osp.dirname(__file__), 'ghostnet_mmdet', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='ghostnet_mmdet',
    version=read_version(),
    description='GhostNet, GhostNetV2 and GhostNetV3 as MMDetection 3.x backbones',
    license='Apache-2.0',
    long_description=open(osp.join(osp.dirname(__file__), 'README.md')).read()
    if osp.exists(osp.join(osp.dirname(__file__), 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['ghostnet_mmdet', 'ghostnet_mmdet.*']),
    python_requires='>=3.8',
    install_requires=[
        'torch>=2.0',
        'torchvision',
        'mmcv>=2.0.0rc4,<2.2.0',
        'mmengine>=0.10.0,<1.0.0',
        'mmdet==3.3.0',
        'pycocotools',
        'numpy',
        # mmengine resolves ``mmdet::`` config bases with pkg_resources, which
        # setuptools 82 removed (80.9 and later warn on every import); torch 2.14 asks for
        # >=77.0.3.
        'setuptools>=77.0.3,<80.9',
    ],
    extras_require={
        'tests': ['pytest', 'pytest-xdist', 'filelock', 'timm==1.0.31', 'safetensors'],
        # ONNX export, onnxruntime and OpenVINO as backends, INT8 quantization
        # (tools/deployment/).
        'deploy': ['onnx==1.23.2', 'onnxruntime==1.32.0', 'openvino==2026.4.1', 'nncf==3.4.0',
                   'ncnn==1.0.20261020'],
    },
    zip_safe=False,
)
