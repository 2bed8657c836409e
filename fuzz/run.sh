#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan + libFuzzer) and runs each for a bounded
# time on its committed corpus; new inputs found are merged back into that corpus:
#   conflux_decoder_fuzz  the wire-protocol decoder            fuzz/corpus/
#   conflux_config_fuzz   the TOML config reader and --set     fuzz/corpus-config/
#   conflux_safetensors_fuzz  the safetensors header parser    fuzz/corpus-safetensors/
#   conflux_manifest_fuzz  the dataset manifest.json parser    fuzz/corpus-manifest/
#   conflux_ingest_fuzz   ingest's jsonl/fortune/lines/csv parsers  fuzz/corpus-ingest/
#   fuzz/run.sh [SECONDS]        (default 60 per target; CI calls it as is)
# Env: BUILD_DIR (default build-fuzz), JOBS (default 2).
set -euo pipefail
SECONDS_TO_RUN="${1:-60}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD_DIR:-$ROOT/build-fuzz}"
JOBS="${JOBS:-2}"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link -g -O1"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_FLAGS="$SAN" -DCMAKE_CXX_FLAGS="$SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCONFLUX_WITH_CUDA=OFF -DCONFLUX_BUILD_FUZZ=ON -DCONFLUX_BUILD_TESTS=OFF -DCONFLUX_BUILD_BENCH=OFF \
  -DCONFLUX_SKIP_DATAPLANE=ON -DCONFLUX_SKIP_TRAINER=ON -DCONFLUX_SKIP_EVALUATOR=ON \
  -DCONFLUX_SKIP_COORDINATOR=ON -DCONFLUX_SKIP_WORKER=ON >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target conflux_decoder_fuzz conflux_fuzz_make_seeds conflux_config_fuzz conflux_safetensors_fuzz \
  conflux_manifest_fuzz conflux_ingest_fuzz
CORPUS="$ROOT/fuzz/corpus"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$CORPUS" "$WORK/seeds"
"$BUILD/fuzz/conflux_fuzz_make_seeds" "$WORK/seeds"
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Fuzz into a scratch dir, reading the committed corpus and fresh seeds; then keep a minimal
# corpus covering everything found.
fuzz_target() {  # NAME CORPUS MAX_LEN [SEED_DIR...]
  local name=$1 corpus=$2 max_len=$3; shift 3
  mkdir -p "$WORK/new-$name"
  "$BUILD/fuzz/$name" -max_total_time="$SECONDS_TO_RUN" -max_len="$max_len" -timeout=10 \
    -print_final_stats=1 "$WORK/new-$name" "$corpus" "$@"
  "$BUILD/fuzz/$name" -merge=1 "$corpus" "$@" "$WORK/new-$name" >/dev/null 2>&1
  echo "fuzz: $name: no crash in ${SECONDS_TO_RUN} s; corpus: $(ls "$corpus" | wc -l) files in ${corpus#"$ROOT"/}"
}
fuzz_target conflux_decoder_fuzz "$CORPUS" 8192 "$WORK/seeds"
fuzz_target conflux_config_fuzz "$ROOT/fuzz/corpus-config" 4096
fuzz_target conflux_safetensors_fuzz "$ROOT/fuzz/corpus-safetensors" 65536
fuzz_target conflux_manifest_fuzz "$ROOT/fuzz/corpus-manifest" 16384
fuzz_target conflux_ingest_fuzz "$ROOT/fuzz/corpus-ingest" 8192
