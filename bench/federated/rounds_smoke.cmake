# ctest bench_federated_rounds_smoke: rounds_bench.py with 2 participants, a tiny GPT and 2 rounds;
# checks the table has a timed row for Conflux, for Flower and for both floors, and the ratio
# lines (figures are not checked: no timing thresholds). Fails when any part failed.
execute_process(COMMAND python3 ${SCRIPT} --conflux ${CONFLUX} --worker ${WORKER} --bench-protocol ${BENCH_PROTOCOL}
                        --clients 2 --rounds 2 --d-model 16 --n-layer 1 --context 32 --floor-mib 1
                        --workdir ${WORKDIR} --json ${WORKDIR}.json
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 280)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "rounds_bench.py exited with ${rc}")
endif()
foreach(row "conflux" "conflux, no CURVE" "flower")
  if(NOT out MATCHES "\\| ${row} \\| [0-9.]+ s \\([0-9.]+-[0-9.]+, n=1\\) \\| [0-9.]+ MB \\| [0-9.]+ s \\|")
    message(FATAL_ERROR "no timed table row for ${row}")
  endif()
endforeach()
foreach(row "floor \\(plain\\)" "floor \\(CURVE\\)")
  if(NOT out MATCHES "\\| ${row} \\| [0-9.]+ s \\|")
    message(FATAL_ERROR "no table row for ${row}")
  endif()
endforeach()
if(NOT out MATCHES "conflux / floor: [0-9.]+x" OR NOT out MATCHES "flower / conflux round time: [0-9.]+x")
  message(FATAL_ERROR "no ratio lines")
endif()

# The secure-aggregation cost table (--secagg-clients): a timed row per cohort size with both rounds,
# the ratio and the four stages.
execute_process(COMMAND python3 ${SCRIPT} --conflux ${CONFLUX} --worker ${WORKER} --bench-protocol ${BENCH_PROTOCOL}
                        --secagg-clients 3 --rounds 2 --d-model 16 --n-layer 1 --context 32
                        --workdir ${WORKDIR}-secagg
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 200)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "rounds_bench.py --secagg-clients exited with ${rc}")
endif()
if(NOT out MATCHES "\\| 3 \\| [0-9.]+ s \\([0-9.-]+, n=1\\) \\| [0-9.]+ s \\([0-9.-]+, n=1\\) \\| [0-9.]+x \\| [0-9.]+, [0-9.]+, [0-9.]+, [0-9.]+ \\|")
  message(FATAL_ERROR "no secure-aggregation row for 3 participants")
endif()
