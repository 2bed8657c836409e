// Distributed PCA for a features field.
//
// Sums of x and x x^T are accumulated per aligned block of kPlanBlock input rows and folded in
// block order across ranks (rank r adds its blocks to the running total it receives from rank
// r - 1, then broadcasts it), so the covariance — and the projected output — is bitwise the
// same for any number of ranks. The covariance is all-reduced this way (d x d doubles), its
// eigenvectors come from cyclic Jacobi rotations (deterministic), each component's sign is fixed
// so its largest-magnitude entry is positive, and features are projected onto the top k.
// Thread safety: collective.
#pragma once

#include "conflux/core/communicator.h"

#include <cstdint>
#include <vector>

namespace conflux::dataplane {

struct PcaResult {
  int64_t dim = 0, k = 0, count = 0;
  std::vector<double> mean;         // dim
  std::vector<double> components;   // k x dim, row-major
  std::vector<double> eigenvalues;  // dim, descending (covariance with n - 1)
  double explained_ratio = 0;       // sum of the top k / sum of all
};

// x: rows x dim (row-major), block_of_row[i] = global input row / kPlanBlock (non-decreasing).
PcaResult distributed_pca(Communicator& comm, const float* x, int64_t rows, int64_t dim, int64_t k,
                          const std::vector<int64_t>& block_of_row);
// Projects rows onto the components: out is rows x k.
std::vector<float> pca_project(const PcaResult& pca, const float* x, int64_t rows);

// Symmetric eigen-decomposition (cyclic Jacobi): eigenvalues descending, eigenvectors as rows.
void symmetric_eigen(std::vector<double> a, int64_t n, std::vector<double>* values, std::vector<double>* vectors);

// Sum of per-block partial vectors in global block order, identical for any number of ranks.
std::vector<double> ordered_block_sum(Communicator& comm, const std::vector<std::vector<double>>& my_blocks,
                                      size_t width);

}  // namespace conflux::dataplane
