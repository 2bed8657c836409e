// Check macros for foreign calls. Each records the call, rank/host (via the error context), the
// call site and the library's own error string, and throws the matching conflux error.
//   MPI_CHECK(MPI_Barrier(comm));          -> CommError with MPI_Error_string
// H5_CHECK lives in the dataplane (which owns HDF5); NCCL_CHECK / CUDA_CHECK in the NCCL back end.
#pragma once

#include "conflux/core/error.h"

#include <mpi.h>

namespace conflux::detail {
std::string mpi_error_string(int code);
}

#define MPI_CHECK(call)                                                                   \
  do {                                                                                    \
    int conflux_mpi_rc_ = (call);                                                         \
    if (conflux_mpi_rc_ != MPI_SUCCESS)                                                   \
      CONFLUX_THROW(CommError, "{} failed: {}", #call,                                    \
                    ::conflux::detail::mpi_error_string(conflux_mpi_rc_));                \
  } while (0)
