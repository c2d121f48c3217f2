#!/usr/bin/env bash
# One-command set-up of the ghostnet_mmdet stack on a fresh machine.
#
# Creates a virtual environment in <repo>/.venv and installs into it:
#   torch 2.14.1 + torchvision 0.29.1, mmcv 2.1.0 with its compiled ops
#   (built from the source distribution, patched for torch 2.14's C++20
#   headers, and cached as a wheel outside the repository), mmengine,
#   mmdet 3.3.0, pycocotools, the test dependencies, onnx, onnxruntime, OpenVINO, NNCF and
#   ncnn (the [deploy] extra), pnnx, ExecuTorch and mmpretrain (without their
#   dependencies) and this package in editable mode. Then verifies that mmcv's ops run and the plugin registers.
#
# Idempotent: a second run reuses the venv and the cached mmcv wheel (about a
# minute). The mmcv wheel is keyed on the torch version it was built against
# (and, for CUDA builds, the CUDA version and GPU architectures), so changing
# torch triggers a rebuild.
#
# On a machine with an NVIDIA GPU, mmcv is built with its CUDA ops (NMS,
# RoIAlign, sigmoid focal loss ... on the GPU). That needs an nvcc of the
# CUDA major version torch was built for (13 for torch 2.14.1+cu130): the
# script takes one from CUDA_HOME, PATH or /usr/local/cuda if it matches,
# else installs NVIDIA's nvcc, headers and NVVM packages of that version
# into the venv and builds with those. Without a GPU it builds the CPU ops,
# unless FORCE_CUDA=1 (a wheel for a GPU machine).
#
# Environment overrides:
#   PYTHON                 interpreter for the venv (default: python3.11)
#   GHOSTNET_MMDET_VENV    venv location (default: <repo>/.venv)
#   GHOSTNET_MMDET_CACHE   wheel cache (default: ~/.cache/ghostnet_mmdet)
#   MAX_JOBS               parallel compile jobs for mmcv (default: nproc)
#   FORCE_CUDA=1           build the CUDA ops without a GPU
#   TORCH_CUDA_ARCH_LIST   GPU architectures to compile for (default: those of
#                          the GPUs found; without one, 9.0 = H100/H200)
#   GHOSTNET_MMDET_CUDA_FROM_PIP=1  use NVIDIA's pip packages even where a
#                          matching nvcc is installed
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3.11}
VENV=${GHOSTNET_MMDET_VENV:-$REPO_ROOT/.venv}
CACHE=${GHOSTNET_MMDET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ghostnet_mmdet}

TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
MMCV_SDIST_SHA256=d387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f
# Bump when the way mmcv is patched or built changes, to invalidate old wheels.
MMCV_BUILD_REVISION=1

CURRENT_STEP="start"
step() {
    CURRENT_STEP=$1
    echo "==> [setup_env] $(date +%H:%M:%S) $1"
}
die() {
    echo "ERROR [setup_env]: $*" >&2
    exit 1
}
trap 'echo "ERROR [setup_env]: step \"$CURRENT_STEP\" failed (line $LINENO). Fix the cause above and rerun: the steps already done are kept." >&2' ERR

step "check the interpreter ($PYTHON)"
command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found; set PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' ||
    die "$PYTHON is $("$PYTHON" --version 2>&1); torch $TORCH_VERSION wheels here are for Python 3.11"

step "virtual environment at $VENV"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=(pip_quiet)
# pip, minus the warnings about this machine's unused local index folders.
pip_quiet() {
    "$PY" -m pip --disable-pip-version-check "$@" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

step "build tools (setuptools>=77.0.3,<80.9 keeps pkg_resources without deprecation warnings; ninja for parallel builds)"
"${PIP[@]}" install -q 'pip>=24' 'setuptools>=77.0.3,<80.9' wheel ninja

step "torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION"
"${PIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

# The wheel is specific to the exact torch build, the Python tag and the patch.
TORCH_FULL=$("$PY" -c 'import torch; print(torch.__version__)')
PY_TAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
TORCH_CUDA=$("$PY" -c 'import torch; print(torch.version.cuda or "")')
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

step "CPU or CUDA ops"
GPU_ARCHS=$("$PY" - <<'PYEOF'
import torch
if torch.cuda.is_available():
    caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    print(';'.join(f'{major}.{minor}' for major, minor in caps))
PYEOF
)
WITH_CUDA=0
if [ -n "$GPU_ARCHS" ] || [ "${FORCE_CUDA:-0}" = "1" ]; then
    [ -n "$TORCH_CUDA" ] || die "torch $TORCH_FULL has no CUDA; install a CUDA build of torch or unset FORCE_CUDA"
    WITH_CUDA=1
    CUDA_ARCHS=${TORCH_CUDA_ARCH_LIST:-${GPU_ARCHS:-9.0}}
    echo "    CUDA ops for CUDA $TORCH_CUDA, architectures $CUDA_ARCHS${GPU_ARCHS:+ (GPUs found: $GPU_ARCHS)}"
else
    echo "    no NVIDIA GPU (and FORCE_CUDA unset): CPU ops"
fi

nvcc_major() {
    "$1" --version 2>/dev/null | sed -n 's/.*release \([0-9]*\)\..*/\1/p' | head -n 1
}

# An nvcc of torch's CUDA major version: installed, or NVIDIA's pip packages.
find_cuda_home() {
    local wanted=${TORCH_CUDA%%.*} candidate
    if [ "${GHOSTNET_MMDET_CUDA_FROM_PIP:-0}" != "1" ]; then
        for candidate in "${CUDA_HOME:-}" "$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /x/x)")")" /usr/local/cuda; do
            if [ -n "$candidate" ] && [ -x "$candidate/bin/nvcc" ] &&
                [ "$(nvcc_major "$candidate/bin/nvcc")" = "$wanted" ]; then
                echo "$candidate"
                return
            fi
        done
    fi
    # NVIDIA's wheels put the toolkit under site-packages/nvidia/cu<major>; a
    # folder of links gives it the layout of a CUDA install (lib64, libcudart.so).
    "${PIP[@]}" install -q "nvidia-cuda-nvcc==$TORCH_CUDA.*" "nvidia-cuda-crt==$TORCH_CUDA.*" \
        "nvidia-nvvm==$TORCH_CUDA.*" "nvidia-cuda-cccl==$TORCH_CUDA.*" \
        "nvidia-cuda-runtime==$TORCH_CUDA.*" >&2
    local packaged="$SITE/nvidia/cu$wanted" toolkit="$CACHE/cuda-$TORCH_CUDA-pip"
    [ -x "$packaged/bin/nvcc" ] || die "NVIDIA's nvcc package did not install $packaged/bin/nvcc"
    rm -rf "$toolkit" && mkdir -p "$toolkit/lib"
    for entry in bin include nvvm; do
        [ -e "$packaged/$entry" ] && ln -s "$packaged/$entry" "$toolkit/$entry"
    done
    for library in "$packaged"/lib/*; do ln -s "$library" "$toolkit/lib/"; done
    [ -e "$toolkit/lib/libcudart.so" ] || ln -s "$(ls "$packaged"/lib/libcudart.so.* | head -n 1)" "$toolkit/lib/libcudart.so"
    ln -s lib "$toolkit/lib64"
    echo "$toolkit"
}

MMCV_KEY="mmcv-${MMCV_VERSION}_torch-${TORCH_FULL}_${PY_TAG}_r${MMCV_BUILD_REVISION}"
if [ "$WITH_CUDA" = "1" ]; then
    MMCV_KEY="${MMCV_KEY}_cuda${TORCH_CUDA}_sm$(echo "$CUDA_ARCHS" | tr -d '.+' | tr ';' '-')"
fi
MMCV_WHEEL_DIR="$CACHE/wheels/$MMCV_KEY"
MMCV_STAMP="$VENV/.mmcv-build-key"

mmcv_ops_work() {
    "$PY" -c 'import mmcv.ops' >/dev/null 2>&1
}

build_mmcv_wheel() {
    local work
    work=$(mktemp -d "${TMPDIR:-/tmp}/mmcv-build.XXXXXX")
    step "download mmcv $MMCV_VERSION source distribution"
    "$PY" - "$work" "$MMCV_VERSION" "$MMCV_SDIST_SHA256" <<'PYEOF'
# pip cannot download this sdist on its own: it runs the package's setup.py to
# read metadata, which needs torch and pkg_resources in an isolated env.
import hashlib, json, os, sys, urllib.request
work, version, sha256 = sys.argv[1:4]
index = os.environ.get('PIP_INDEX_URL', 'https://pypi.org/simple').rstrip('/')
req = urllib.request.Request(f'{index}/mmcv/', headers={'Accept': 'application/vnd.pypi.simple.v1+json'})
files = json.load(urllib.request.urlopen(req, timeout=120))['files']
name = f'mmcv-{version}.tar.gz'
entry = next((f for f in files if f['filename'] == name), None)
if entry is None:
    sys.exit(f'{name} is not on {index}/mmcv/')
data = urllib.request.urlopen(entry['url'], timeout=300).read()
digest = hashlib.sha256(data).hexdigest()
if digest != sha256:
    sys.exit(f'{name}: sha256 {digest} does not match the expected {sha256}')
with open(os.path.join(work, name), 'wb') as f:
    f.write(data)
print(f'downloaded {name} ({len(data)} bytes, sha256 ok)')
PYEOF
    tar -xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
    local src="$work/mmcv-$MMCV_VERSION"

    step "patch mmcv setup.py for C++20 (torch $TORCH_FULL headers require it)"
    grep -q -- '-std=c++17' "$src/setup.py" || die "mmcv setup.py has no -std=c++17 flag to patch; the sdist changed"
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"

    local cuda_env=(FORCE_CUDA=0)
    if [ "$WITH_CUDA" = "1" ]; then
        step "find an nvcc for CUDA $TORCH_CUDA"
        local cuda_home
        cuda_home=$(find_cuda_home) || true
        [ -n "$cuda_home" ] && [ -x "$cuda_home/bin/nvcc" ] ||
            die "no nvcc for CUDA $TORCH_CUDA: install CUDA $TORCH_CUDA (set CUDA_HOME), or check that pip can install nvidia-cuda-nvcc==$TORCH_CUDA.*"
        echo "    CUDA_HOME=$cuda_home ($("$cuda_home/bin/nvcc" --version | tail -n 1))"
        # torch's CUDA headers include cuBLAS/cuSPARSE/cuSOLVER headers, which
        # torch's own NVIDIA wheels put beside the venv's CUDA runtime (a
        # toolkit without the math libraries lacks them).
        local wheel_headers="$SITE/nvidia/cu${TORCH_CUDA%%.*}/include"
        cuda_env=(FORCE_CUDA=1 "CUDA_HOME=$cuda_home" "TORCH_CUDA_ARCH_LIST=$CUDA_ARCHS"
                  "PATH=$cuda_home/bin:$PATH" "MMCV_CUDA_ARGS=-I$wheel_headers"
                  "CPLUS_INCLUDE_PATH=$wheel_headers${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}")
        step "build mmcv $MMCV_VERSION with CPU and CUDA ops (an hour or more on 2 cores; cached afterwards)"
    else
        step "build mmcv $MMCV_VERSION with compiled ops (15-30 minutes on 2 cores; cached afterwards)"
    fi
    env "${cuda_env[@]}" MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "$PY" -m pip --disable-pip-version-check wheel -v --no-build-isolation --no-deps \
        -w "$work/dist" "$src" 2>&1 |
        grep --line-buffered -E '^\[[0-9]+/[0-9]+\]|error|Error|Successfully|Created wheel' || true
    local built
    built=$(ls "$work"/dist/mmcv-*.whl 2>/dev/null | head -n 1)
    [ -n "$built" ] || die "mmcv build produced no wheel (the errors are above; the sources are in $src: rerun 'pip wheel -v --no-build-isolation .' there for the full log)"
    mkdir -p "$CACHE/wheels"
    # Move into place atomically so an interrupted build never leaves a half wheel.
    local staging="$CACHE/wheels/.$MMCV_KEY.$$"
    mkdir -p "$staging"
    cp "$built" "$staging/"
    rm -rf "$MMCV_WHEEL_DIR"
    mv "$staging" "$MMCV_WHEEL_DIR"
    rm -rf "$work"
}

step "mmcv $MMCV_VERSION with ops, built against torch $TORCH_FULL"
if [ "$(cat "$MMCV_STAMP" 2>/dev/null)" = "$MMCV_KEY" ] && mmcv_ops_work; then
    echo "    installed mmcv matches $MMCV_KEY"
else
    if ! ls "$MMCV_WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
        echo "    no cached wheel at $MMCV_WHEEL_DIR: building it"
        build_mmcv_wheel
    else
        echo "    using cached wheel from $MMCV_WHEEL_DIR"
    fi
    step "install the mmcv wheel"
    "${PIP[@]}" install -q --force-reinstall --no-deps "$MMCV_WHEEL_DIR"/mmcv-*.whl
    # Its own dependencies, without letting pip touch torch or mmcv itself.
    "${PIP[@]}" install -q addict mmengine numpy packaging Pillow pyyaml yapf opencv-python
    echo "$MMCV_KEY" >"$MMCV_STAMP"
fi

step "mmdet, mmengine, pycocotools, test tools, onnx/onnxruntime/openvino/ncnn/pnnx and ghostnet_mmdet (editable)"
PACKAGE_KEY="$(cat "$REPO_ROOT/setup.py" | sha256sum | cut -c1-16) $REPO_ROOT"
PACKAGE_STAMP="$VENV/.ghostnet-mmdet-install-key"
if [ "$(cat "$PACKAGE_STAMP" 2>/dev/null)" = "$PACKAGE_KEY" ] &&
    "$PY" -c 'import ghostnet_mmdet, mmdet, timm, pytest, xdist, onnx, onnxruntime, openvino, nncf, ncnn, pnnx, executorch.runtime, mmpretrain.models' >/dev/null 2>&1; then
    echo "    already installed from this setup.py"
else
    "${PIP[@]}" install -q --no-build-isolation -e "$REPO_ROOT[tests,deploy]"
    # pnnx (PyTorch -> ncnn) without its dependencies: they would pull a
    # second torch; it needs only the one installed above.
    "${PIP[@]}" install -q --no-deps pnnx==20261020
    # ExecuTorch (export and its Python runtime with XNNPACK) and mmpretrain
    # (ShuffleNetV2 of the NanoDet-Plus-m peer) without their declared
    # dependencies (pandas, coremltools, scikit-learn, hydra ...; a second
    # mmcv): what exporting, running and building need, pinned.
    "${PIP[@]}" install -q --no-deps executorch==1.5.1 flatbuffers==25.12.19 torchao==0.18.0 \
        ruamel.yaml==0.19.1 tabulate==0.10.0 mmpretrain==1.2.0 'importlib_metadata==8.9.0' \
        zipp==4.1.2 model-index==0.1.11 ordered-set==4.1.0 markdown==3.11.3 mat4py==0.6.0 \
        einops==0.8.2
    echo "$PACKAGE_KEY" >"$PACKAGE_STAMP"
fi

step "verify the stack"
WITH_CUDA=$WITH_CUDA "$PY" - <<'PYEOF'
import os
import torch
import mmcv
from mmcv.ops import batched_nms, get_compiling_cuda_version
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]])
scores = torch.tensor([0.9, 0.8, 0.7])
dets, keep = batched_nms(boxes, scores, torch.tensor([0, 0, 0]), dict(type='nms', iou_threshold=0.5))
assert keep.tolist() == [0, 2], f'mmcv.ops.batched_nms gave {keep.tolist()}, expected [0, 2]'
if os.environ['WITH_CUDA'] == '1':
    compiled = get_compiling_cuda_version()
    assert compiled != 'not available', 'mmcv was built without its CUDA ops'
    print(f'    mmcv CUDA ops compiled with CUDA {compiled}')
    if torch.cuda.is_available():
        _, keep_gpu = batched_nms(boxes.cuda(), scores.cuda(), torch.tensor([0, 0, 0]).cuda(),
                                  dict(type='nms', iou_threshold=0.5))
        assert keep_gpu.tolist() == [0, 2], f'CUDA batched_nms gave {keep_gpu.tolist()}'
        print(f'    CUDA ops run on {torch.cuda.get_device_name(0)}')
import mmdet
import ghostnet_mmdet
from mmdet.registry import MODELS
assert MODELS.get('GhostNet') is not None, 'GhostNet is not registered in mmdet MODELS'
print(f'    torch {torch.__version__}, mmcv {mmcv.__version__} (ops ok), mmdet {mmdet.__version__}, '
      f'ghostnet_mmdet {ghostnet_mmdet.__version__}: GhostNet registered')
PYEOF
step "done: activate with 'source ${VENV#$REPO_ROOT/}/bin/activate'"
