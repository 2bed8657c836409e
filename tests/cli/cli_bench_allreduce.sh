# The all-reduce benchmark runs on 2 and 4 ranks, checks every result and prints the table.
# (No timing assertions: figures go to docs/benchmarks.md.)
source "$(dirname "$0")/lib.sh"
for np in 2 4; do
  expect_rc 0 "$MPIEXEC" -np $np "$CONFLUX" bench allreduce --max-bytes 4M --rounds 1 --target-ms 2
  contains "$OUT" "$np ranks, dtype float32"
  n=$(printf '%s\n' "$OUT" | grep -c ' ok$')
  [ "$n" -eq 7 ] || fail "expected 7 checked sizes (1K..4M) at np $np, got $n: $OUT"
  expect_rc 0 "$MPIEXEC" -np $np "$CONFLUX" bench allreduce --dtype int64 --min-bytes 64K --max-bytes 1M --rounds 1 --target-ms 2 --json
  n=$(printf '%s\n' "$OUT" | grep -c '"check":true')
  [ "$n" -eq 3 ] || fail "expected 3 checked JSON rows at np $np: $OUT"
done
echo "cli_bench_allreduce: ok"
