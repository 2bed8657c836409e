# ctest bench_federated_smoke: runs bench_aggregate on tiny updates and checks that the table
# has a row for memcpy and for each strategy (figures are not checked: no timing thresholds).
execute_process(COMMAND ${BIN} --clients 5 --mib 0.25 --tensors 3 --reps 2
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "bench_aggregate exited with ${rc}")
endif()
foreach(row memcpy fedavg median trimmed_avg krum)
  if(NOT out MATCHES "\\| ${row} \\| [0-9.]+ \\| [0-9.]+-[0-9.]+ \\| [0-9]+ % \\|")
    message(FATAL_ERROR "no table row for ${row}")
  endif()
endforeach()
