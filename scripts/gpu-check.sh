#!/usr/bin/env bash
# GPU check for the trainer, for a machine with an NVIDIA GPU and a PyTorch wheel (pip's torch
# ships libtorch with CUDA). It
#   1. builds Conflux against the wheel's libtorch (Torch_DIR from torch.utils.cmake_prefix_path;
#      the wheel's C++ ABI flag is taken from torch._C._GLIBCXX_USE_CXX11_ABI),
#   2. runs the trainer tests (CPU math) and a CUDA smoke test: the GPT forward/backward on the
#      device equals the CPU result, and one bf16-autocast training step runs,
#   3. measures a ~125M-parameter GPT (12 layers, width 768, 12 heads, context 1024, vocab 50304)
#      training step on one GPU with bf16 autocast and prints tokens/s and MFU (model FLOPs per
#      token 6N + 12 L d T, against the GPU's dense bf16 peak: GPU_PEAK_TFLOPS, default 989 for an
#      H100/H200 SXM).
# usage: scripts/gpu-check.sh [BUILD_DIR]        (needs cmake, ninja, MPI, HDF5 as install-deps.sh)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-gpu}
PY=${PYTHON:-python3}
TORCH_PREFIX=$($PY -c 'import torch; print(torch.utils.cmake_prefix_path)')
ABI=$($PY -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
$PY -c 'import torch; assert torch.cuda.is_available(), "no CUDA device visible"; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONFLUX_WITH_CUDA=AUTO \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" -DCMAKE_CXX_FLAGS="-D_GLIBCXX_USE_CXX11_ABI=$ABI" \
  -DCONFLUX_SKIP_EVALUATOR=ON -DCONFLUX_SKIP_PROTOCOL=ON -DCONFLUX_SKIP_WORKER=ON
cmake --build "$BUILD" -j"$(nproc)" --target conflux_trainer trainer_model_test trainer_gpu_check
"$BUILD/tests/trainer/trainer_model_test"
OPENBLAS_CORETYPE= "$BUILD/tests/trainer/trainer_gpu_check" "${GPU_PEAK_TFLOPS:-989}"
