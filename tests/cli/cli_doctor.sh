# doctor reports every component and exits 0 on a healthy machine; under mpirun every rank checks.
source "$(dirname "$0")/lib.sh"
expect_rc 0 "$CONFLUX" doctor --json
for k in MPI HDF5 ZeroMQ libtorch CUDA/NCCL Slurm; do contains "$OUT" "\"name\": \"$k\""; done
contains "$OUT" '"ok": true'
expect_rc 0 "$MPIEXEC" -np 2 "$CONFLUX" doctor
contains "$OUT" "2 rank(s)"
contains "$OUT" "launcher mpirun"
contains "$OUT" "CURVE available"
contains "$OUT" "parallel; MPI-IO collective file create/write/read in /tmp works"
echo "cli_doctor: ok"
