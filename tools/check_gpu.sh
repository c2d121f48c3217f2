#!/usr/bin/env bash
# The GPU checks in one command, on a machine with an NVIDIA GPU:
#   1. tools/setup_env.sh, which there builds mmcv with its CUDA ops
#      (cached afterwards) and checks them;
#   2. the GPU tests (pytest -m gpu): mmcv's CUDA ops against their CPU
#      results, every config in configs/ghostnet/ training an iteration and
#      predicting on the GPU with and without AMP, channels_last and bf16;
#   3. the GPU benchmark of the backbone (ours, timm's ghostnet_100,
#      MobileNetV2, ResNet-50; fp32 and bf16; inference and training).
#
#   bash tools/check_gpu.sh [benchmark_backbone.py arguments]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$ROOT/.venv/bin/python"

bash "$ROOT/tools/setup_env.sh"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA GPU: nothing to check here")'
"$PY" -c 'import torch; print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")'
(cd "$ROOT" && "$PY" -m pytest -q -m gpu tests/test_gpu.py)
"$PY" "$ROOT/tools/analysis_tools/benchmark_backbone.py" --device cuda "$@"
