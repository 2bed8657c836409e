# Sourced by the scripts: common settings for building and running Conflux on this machine.
# mpirun as root needs these (harmless otherwise); more ranks than cores need oversubscription.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
CONFLUX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFLUX_JOBS="${CONFLUX_JOBS:-2}"
conflux_configure() {  # conflux_configure BUILD_DIR [extra cmake args...]
  local dir="$1"; shift
  local launcher=()
  command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  cmake -S "$CONFLUX_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@"
}
