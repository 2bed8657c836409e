#!/usr/bin/env bash
# Installs every build and test dependency of Conflux from Debian 12's packages.
# Idempotent: skips apt entirely when everything is already installed (set CONFLUX_FORCE_APT=1
# to force), so it is cheap to call from quickstart.sh, test.sh and CI.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools
  libzmq3-dev cppzmq-dev
  libboost-dev libboost-program-options-dev
  libtorch-dev libopenblas0-openmp
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libsodium-dev libxxhash-dev libtomlplusplus-dev libssl-dev
  libprotobuf-dev protobuf-compiler
  clang libclang-rt-14-dev
  python3 python3-numpy python3-torch python3-h5py python3-zmq python3-protobuf python3-mpi4py
  fortunes
  slurmctld slurmd slurm-client munge libpmix-dev
  prometheus curl
  chromium  # headless, renders the run report in tests/report/run_report_e2e.sh
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ] && [ -z "${CONFLUX_FORCE_APT:-}" ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${#missing[@]} missing packages: ${missing[*]}"
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PKGS[@]}"

# libtorch must run on OpenBLAS (openmp variant), not the reference BLAS (40x slower).
for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
  target=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-openmp | head -n1 || true)
  [ -n "$target" ] && $SUDO update-alternatives --set "$alt" "$target" >/dev/null
done
echo "install-deps: done"
