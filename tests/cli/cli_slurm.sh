#!/usr/bin/env bash
# Launch under a real single-node Slurm cluster: srun --mpi=pmix runs Conflux's MPI stages with
# the Slurm launcher detected, and an sbatch job runs to completion.
# usage: local-cluster.sh run bash cli_slurm.sh   (ctest: cli_slurm; `run` starts the cluster,
# exports SLURM_CONF and stops it on every exit path). Every wait is bounded.
source "$(dirname "$0")/lib.sh"
[ -n "${SLURM_CONF:-}" ] && [ -n "${CONFLUX_SLURM_DIR:-}" ] ||
  fail "no cluster: run me under scripts/slurm/local-cluster.sh run (ctest -R cli_slurm does)"
expect_rc 0 timeout 60 srun --mpi=pmix -n 2 "$CONFLUX" doctor
contains "$OUT" "2 rank(s), 2 per node"
contains "$OUT" "launcher srun"
expect_rc 0 timeout 60 srun --mpi=pmix -n 4 "$CONFLUX" bench allreduce --max-bytes 256K --rounds 1 --target-ms 2
n=$(printf '%s\n' "$OUT" | grep -c ' ok$')
[ "$n" -eq 5 ] || fail "expected 5 checked sizes under srun -n 4: $OUT"
out="$CONFLUX_SLURM_DIR/job.out"
expect_rc 0 timeout 30 sbatch --parsable -n 2 -o "$out" --wrap "srun --mpi=pmix $CONFLUX doctor"
job=$OUT
for _ in $(seq 1 300); do   # 60 s at most
  state=$(timeout 10 scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  case "$state" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
  sleep 0.2
done
[ "$state" = COMPLETED ] || fail "sbatch job $job ended $state: $(cat "$out" 2>/dev/null)"
contains "$(cat "$out")" "launcher srun"
echo "cli_slurm: ok"
