// Access to the process grid created by tests/mpi_main.cpp for multi-rank tests.
#pragma once
#include "conflux/core/process_grid.h"
namespace conflux::test {
ProcessGrid& grid();
}
