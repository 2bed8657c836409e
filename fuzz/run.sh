#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan + libFuzzer) and runs each for a bounded
# time on its committed corpus; new inputs each finds are merged back into that corpus:
#   conflux_decoder_fuzz      wire-protocol decoder       fuzz/corpus/
#   conflux_safetensors_fuzz  safetensors header parser   fuzz/corpus-safetensors/
#   fuzz/run.sh [SECONDS]        (per target; default 60; CI calls it as is)
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
cmake --build "$BUILD" -j "$JOBS" --target conflux_decoder_fuzz conflux_fuzz_make_seeds conflux_safetensors_fuzz
CORPUS="$ROOT/fuzz/corpus"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$CORPUS" "$WORK/new" "$WORK/seeds"
"$BUILD/fuzz/conflux_fuzz_make_seeds" "$WORK/seeds"
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Fuzz into a scratch dir, reading the committed corpus and fresh seeds.
"$BUILD/fuzz/conflux_decoder_fuzz" -max_total_time="$SECONDS_TO_RUN" -max_len=8192 -timeout=10 \
  -print_final_stats=1 "$WORK/new" "$CORPUS" "$WORK/seeds"
# Keep a minimal corpus covering everything found.
"$BUILD/fuzz/conflux_decoder_fuzz" -merge=1 "$CORPUS" "$WORK/seeds" "$WORK/new" >/dev/null 2>&1
echo "fuzz: decoder: no crash in ${SECONDS_TO_RUN} s; corpus: $(ls "$CORPUS" | wc -l) files in fuzz/corpus"

# The safetensors header parser: whole files up to 64 KiB; committed corpus only (hand-made seeds).
ST_CORPUS="$ROOT/fuzz/corpus-safetensors"
mkdir -p "$ST_CORPUS" "$WORK/st-new"
"$BUILD/fuzz/conflux_safetensors_fuzz" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=10 \
  -print_final_stats=1 "$WORK/st-new" "$ST_CORPUS"
"$BUILD/fuzz/conflux_safetensors_fuzz" -merge=1 "$ST_CORPUS" "$WORK/st-new" >/dev/null 2>&1
echo "fuzz: safetensors: no crash in ${SECONDS_TO_RUN} s; corpus: $(ls "$ST_CORPUS" | wc -l) files in fuzz/corpus-safetensors"
