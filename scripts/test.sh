#!/usr/bin/env bash
# README command 2: installs dependencies if missing, builds, and runs the whole ctest suite
# (unit tests, multi-rank tests under mpirun, ZeroMQ tests on 127.0.0.1, Python oracles).
#   ./scripts/test.sh              everything
#   ./scripts/test.sh -R collect   extra arguments go to ctest
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$CONFLUX_ROOT"

./scripts/install-deps.sh
# Test oracles (sacrebleu, rouge-score, opacus, ...) for the pyenv python3; pinned per area.
# A file whose comments say "--no-deps" is installed without dependencies (opacus would
# otherwise pull a multi-GB torch wheel; only its pure-Python accounting modules are used).
for r in tests/requirements-*.txt; do
  [ -e "$r" ] || continue
  nodeps=(); grep -q -- '--no-deps' "$r" && nodeps=(--no-deps)
  python3 -m pip install -q --disable-pip-version-check "${nodeps[@]}" -r "$r"
done

build="${CONFLUX_TEST_BUILD:-build-test}"
werror=OFF; [ -n "${CI:-}" ] && werror=ON
conflux_configure "$build" -DCONFLUX_WERROR="$werror" -DCONFLUX_BUILD_TESTS=ON -DCONFLUX_BUILD_BENCH=ON
cmake --build "$build" -j "$CONFLUX_JOBS"
ctest --test-dir "$build" --output-on-failure -j "$CONFLUX_JOBS" --timeout 900 "$@"
