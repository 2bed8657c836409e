#!/usr/bin/env bash
# GPU checks, for a machine with an NVIDIA GPU and a PyTorch wheel (pip's torch ships libtorch
# with CUDA and NCCL). It
#   1. builds Conflux's core (with the NCCL back end) and trainer against the wheel's libtorch
#      (Torch_DIR from torch.utils.cmake_prefix_path, the wheel's C++ ABI flag, the wheel's NCCL
#      when it has one), skipping the components the checks do not need;
#   2. runs tests/gpu under mpirun, one rank (ctest -L gpu):
#      gpu_nccl_check    every collective x dtype on device buffers vs a host reference, async
#                        handles, then all-reduce bandwidth 1-256 MiB;
#      trainer_gpu_check GPT on CUDA == CPU, CUDA tensors through NCCL, `train()` on CUDA with
#                        NCCL groups and bf16 autocast (loss falls, checkpoint + resume), and a
#                        ~125M-parameter GPT step: tokens/s and MFU against GPU_PEAK_TFLOPS
#                        (default 989, H100/H200 SXM dense bf16).
# A check that finds no GPU exits 77 and ctest calls it skipped; this script then fails.
# usage: scripts/gpu-check.sh [BUILD_DIR]
# Dependencies: as scripts/install-deps.sh (plus cmake >= 3.25 and ninja), or, on a machine
# without Debian's packages, CONFLUX_DEBS=FOLDER made by scripts/gpu-fetch-debs.sh: the .debs are
# unpacked into CONFLUX_SYSROOT (default /tmp/conflux-sysroot) and used from there.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-gpu}
PY=${PYTHON:-python3}
EXTRA=()
PREFIX=""
if [[ -n "${CONFLUX_DEBS:-}" ]]; then
  SR=${CONFLUX_SYSROOT:-/tmp/conflux-sysroot}
  mkdir -p "$SR"
  for d in "$CONFLUX_DEBS"/*.deb; do dpkg-deb -x "$d" "$SR"; done
  # Open MPI finds its plugins, help files and wrapper data under OPAL_PREFIX.
  export OPAL_PREFIX=$SR/usr PATH=$SR/usr/bin:$PATH
  export LD_LIBRARY_PATH=$SR/usr/lib/x86_64-linux-gnu:$SR/usr/lib/x86_64-linux-gnu/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PMIX_INSTALL_PREFIX=$SR/usr/lib/x86_64-linux-gnu/pmix2
  export PMIX_MCA_mca_base_component_path=$SR/usr/lib/x86_64-linux-gnu/pmix2/lib/pmix
  # An image with PMIx of its own may still print "unable to open ... pcompress_zlib" once per
  # process (seen on the H200 image); harmless.
  export PMIX_MCA_pcompress_base_silence_warning=1
  EXTRA+=(-DMPI_C_COMPILER="$SR/usr/bin/mpicc.openmpi" -DMPI_CXX_COMPILER="$SR/usr/bin/mpicxx.openmpi"
          -DMPIEXEC_EXECUTABLE="$SR/usr/bin/mpirun.openmpi")
  PREFIX="$SR/usr;"
fi
$PY -c 'import torch; assert torch.cuda.is_available(), "no CUDA device visible"; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'
TORCH_PREFIX=$($PY -c 'import torch; print(torch.utils.cmake_prefix_path)')
ABI=$($PY -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
# The NCCL that the wheel's libtorch loads (nvidia-nccl-*), so one NCCL lives in the process.
NCCL_H=$($PY - <<'PYEOF'
import os
try:
    import nvidia
    for base in nvidia.__path__:
        for d, _, files in os.walk(base):
            if "nccl.h" in files:
                print(os.path.dirname(d)); raise SystemExit
except ImportError:
    pass
PYEOF
)
[[ -n "$NCCL_H" ]] && EXTRA+=(-DNCCL_ROOT="$NCCL_H") && echo "NCCL from the wheel: $NCCL_H"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DCONFLUX_WITH_CUDA=ON \
  -DCMAKE_PREFIX_PATH="${PREFIX}${TORCH_PREFIX}" -DCMAKE_CXX_FLAGS="-D_GLIBCXX_USE_CXX11_ABI=$ABI" \
  -DUSE_SYSTEM_NVTX=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" \
  -DCONFLUX_BUILD_TESTS=OFF -DCONFLUX_BUILD_BENCH=OFF -DCONFLUX_BUILD_GPU_CHECKS=ON \
  -DCONFLUX_SKIP_DATAPLANE=ON -DCONFLUX_SKIP_EVALUATOR=ON -DCONFLUX_SKIP_PROTOCOL=ON \
  -DCONFLUX_SKIP_WORKER=ON -DCONFLUX_SKIP_COORDINATOR=ON "${EXTRA[@]}"
cmake --build "$BUILD" -j"$(nproc)" --target gpu_nccl_check trainer_gpu_check
export GPU_PEAK_TFLOPS=${GPU_PEAK_TFLOPS:-989}
cd "$BUILD"
ctest -L gpu -V --timeout 900 | tee ctest-gpu.log
# ctest passes a skipped test; on a GPU machine a skip is a failure.
if grep -q 'Skipped\|Not Run' ctest-gpu.log; then echo "gpu-check: a check was skipped (no GPU?)" >&2; exit 1; fi
