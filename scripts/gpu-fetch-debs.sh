#!/usr/bin/env bash
# Downloads (does not install) the Debian 12 packages that scripts/gpu-check.sh needs besides
# CUDA and PyTorch: Open MPI with its runtime libraries, fmt, toml++, nlohmann-json, libsodium and
# xxhash. For a GPU machine that has CUDA and a PyTorch wheel but not Debian's packages (a CUDA
# container image, say): copy the folder there and run
#   CONFLUX_DEBS=FOLDER scripts/gpu-check.sh
# which unpacks them into a private sysroot, never into /.
# usage: scripts/gpu-fetch-debs.sh FOLDER        (on Debian 12, x86-64)
set -euo pipefail
DIR=${1:?usage: scripts/gpu-fetch-debs.sh FOLDER}
mkdir -p "$DIR"
cd "$DIR"
apt-get download \
  openmpi-bin openmpi-common libopenmpi3 libopenmpi-dev libpmix2 libhwloc15 \
  libevent-core-2.1-7 libevent-pthreads-2.1-7 libfabric1 libibverbs1 ibverbs-providers librdmacm1 \
  libnl-3-200 libnl-route-3-200 libnuma1 libpsm-infinipath1 libpsm2-2 libucx0 libmunge2 \
  libfmt9 libfmt-dev libtomlplusplus3 libtomlplusplus-dev nlohmann-json3-dev libsodium23 libsodium-dev \
  libxxhash0 libxxhash-dev
ls -1 "$DIR"/*.deb | wc -l
