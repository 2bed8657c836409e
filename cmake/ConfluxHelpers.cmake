# Test registration helpers (LevelDB's leveldb_test() idiom).
#   conflux_test(NAME SOURCES a.cpp b.cpp LIBS x y [LABELS l])       one process, gtest_main
#   conflux_mpi_test(NAME NP n SOURCES ... LIBS ... [TIMEOUT s])      under mpirun -np n
#   conflux_slurm_test(NAME TIMEOUT s COMMAND ... [LABELS l] [ENVIRONMENT e])  on a private Slurm cluster
set(CONFLUX_MPIRUN_FLAGS --allow-run-as-root --oversubscribe --mca btl self,vader
    --mca rmaps_base_oversubscribe 1 --bind-to none CACHE STRING "Flags for mpirun in tests")

function(conflux_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main conflux_options)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)  # scratch_dir.h
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "unit;${T_LABELS}")
endfunction()

# An MPI test executable links conflux_test_mpi_main (initialises MPI, reduces failures across
# ranks) and is registered once per rank count in NP.
function(conflux_mpi_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "NP;SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} conflux_test_mpi_main conflux_options)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  foreach(np ${T_NP})
    add_test(NAME ${name}_np${np}
             COMMAND ${MPIEXEC_EXECUTABLE} ${CONFLUX_MPIRUN_FLAGS} -np ${np} $<TARGET_FILE:${name}>)
    set_tests_properties(${name}_np${np} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "mpi;${T_LABELS}"
                         PROCESSORS ${np} ENVIRONMENT "OMP_NUM_THREADS=1")
  endforeach()
endfunction()

# A test on a real single-node Slurm cluster of its own: `scripts/slurm/local-cluster.sh run`
# starts munged, slurmctld and slurmd (private socket, ports and state), runs COMMAND with
# SLURM_CONF exported, and stops them on every exit path. Its deadline is 30 s under the ctest
# TIMEOUT, so even a hung test is stopped by `run` (which then cleans up) rather than SIGKILLed by
# ctest (which would leave the daemons running). Serial: the jobs use the whole node. Label "slurm".
function(conflux_slurm_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "COMMAND;LABELS;ENVIRONMENT" ${ARGN})
  math(EXPR deadline "${T_TIMEOUT} - 30")
  add_test(NAME ${name}
           COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/slurm/local-cluster.sh run --deadline ${deadline}
                   ${T_COMMAND})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} RUN_SERIAL TRUE
                       LABELS "slurm;${T_LABELS}" ENVIRONMENT "OMP_NUM_THREADS=1;${T_ENVIRONMENT}")
endfunction()

# Test executables reuse the trainer library's precompiled <torch/torch.h> (compiled -fPIC, so
# the executables are built -fPIC too rather than -fPIE).
function(conflux_reuse_torch_pch target)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
  target_compile_options(${target} PRIVATE -fPIC)
  target_compile_definitions(${target} PRIVATE conflux_trainer_EXPORTS)
  target_precompile_headers(${target} REUSE_FROM conflux_trainer)
endfunction()
