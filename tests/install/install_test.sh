# Usage: install_test.sh BUILD_DIR CONSUMER_SRC MPIEXEC
set -euo pipefail
build=$1 src=$2 mpiexec=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/lib/cmake/Conflux/ConfluxConfig.cmake"
test -f "$tmp/prefix/include/conflux/core/communicator.h"
test -x "$tmp/prefix/bin/conflux"
# The installed command runs from its prefix (relative RPATH) and finds its plugin of libtorch
# verbs there.
"$tmp/prefix/bin/conflux" --version | grep -q '^conflux '
"$tmp/prefix/bin/conflux" --help | grep -q '^  train '
"$tmp/prefix/bin/conflux" evaluate --help | grep -q 'usage: conflux evaluate'
cmake -S "$src" -B "$tmp/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/build" >/dev/null
out=$("$mpiexec" -np 2 "$tmp/build/consumer")
echo "$out"
[ "$(printf '%s\n' "$out" | grep -c 'consumer: sum 3 over 2 ranks')" -eq 2 ]
