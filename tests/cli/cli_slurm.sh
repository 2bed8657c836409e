# Launch under a real single-node Slurm cluster started here: srun --mpi=pmix runs Conflux's MPI
# stages with the Slurm launcher detected, and an sbatch job runs to completion.
source "$(dirname "$0")/lib.sh"
cluster="$SRC/scripts/slurm/local-cluster.sh"
export CONFLUX_SLURM_DIR=$(mktemp -d /tmp/conflux-slurm-test.XXXX)
trap '"$cluster" stop >/dev/null 2>&1; rm -rf "$CONFLUX_SLURM_DIR"' EXIT
"$cluster" start || fail "could not start the local Slurm cluster"
export SLURM_CONF="$CONFLUX_SLURM_DIR/slurm.conf"
expect_rc 0 timeout 120 srun --mpi=pmix -n 2 "$CONFLUX" doctor
contains "$OUT" "2 rank(s), 2 per node"
contains "$OUT" "launcher srun"
expect_rc 0 timeout 120 srun --mpi=pmix -n 4 "$CONFLUX" bench allreduce --max-bytes 256K --rounds 1 --target-ms 2
n=$(printf '%s\n' "$OUT" | grep -c ' ok$')
[ "$n" -eq 5 ] || fail "expected 5 checked sizes under srun -n 4: $OUT"
out="$CONFLUX_SLURM_DIR/job.out"
expect_rc 0 sbatch --parsable -n 2 -o "$out" --wrap "srun --mpi=pmix $CONFLUX doctor"
job=$OUT
for _ in $(seq 1 300); do
  state=$(scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  case "$state" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
  sleep 0.2
done
[ "$state" = COMPLETED ] || fail "sbatch job $job ended $state: $(cat "$out" 2>/dev/null)"
contains "$(cat "$out")" "launcher srun"
echo "cli_slurm: ok"
