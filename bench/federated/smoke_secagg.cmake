# ctest bench_secagg_smoke: runs bench_secagg on a tiny round (SecAgg and SecAgg+) and checks the
# table has its rows (figures are not checked: no timing thresholds).
foreach(args "--clients;4,6;--coords;1000;--reps;1" "--clients;8;--degree;4;--coords;1000;--reps;1;--dropouts;2")
  execute_process(COMMAND ${BIN} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "bench_secagg ${args} exited with ${rc}")
  endif()
  if(NOT out MATCHES "\\| [0-9]+ \\| [0-9]+ \\| [0-9]+ \\| [0-9.]+ \\| [0-9.]+ \\| [0-9.]+ \\| [0-9.]+ \\|")
    message(FATAL_ERROR "no table row in the output of bench_secagg ${args}")
  endif()
endforeach()
