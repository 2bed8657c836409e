// Distributed PCA with an np-independent, block-ordered covariance sum and Jacobi eigenvectors.
#include "conflux/dataplane/pca.h"

#include "conflux/core/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace conflux::dataplane {

std::vector<double> ordered_block_sum(Communicator& comm, const std::vector<std::vector<double>>& my_blocks,
                                      size_t width) {
  std::vector<double> total(width, 0.0);
  for (int r = 0; r < comm.size(); ++r) {
    if (r == comm.rank())
      for (auto& b : my_blocks)
        for (size_t i = 0; i < width; ++i) total[i] += b[i];
    comm.broadcast(total.data(), width, DType::F64, r);
  }
  return total;
}

void symmetric_eigen(std::vector<double> a, int64_t n, std::vector<double>* values, std::vector<double>* vectors) {
  std::vector<double> v(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[i * n + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
    if (off < 1e-30) break;
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t q = p + 1; q < n; ++q) {
        double apq = a[p * n + q];
        if (std::fabs(apq) < 1e-300) continue;
        double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // A = J^T A J
          double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {
          double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < n; ++k) {
          double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return a[i * n + i] > a[j * n + j]; });
  values->resize(static_cast<size_t>(n));
  vectors->assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    int64_t c = order[r];
    (*values)[r] = a[c * n + c];
    int64_t big = 0;
    for (int64_t k = 0; k < n; ++k)
      if (std::fabs(v[k * n + c]) > std::fabs(v[big * n + c])) big = k;
    double sign = v[big * n + c] < 0 ? -1.0 : 1.0;
    for (int64_t k = 0; k < n; ++k) (*vectors)[r * n + k] = sign * v[k * n + c];
  }
}

PcaResult distributed_pca(Communicator& comm, const float* x, int64_t rows, int64_t dim, int64_t k,
                          const std::vector<int64_t>& block_of_row) {
  if (k < 1 || k > dim) CONFLUX_THROW(ConfigError, "pca.components must be in [1, {}] (got {})", dim, k);
  const size_t d = static_cast<size_t>(dim);
  const size_t width = 1 + d + d * d;  // count, sum x, sum x x^T
  std::vector<std::vector<double>> blocks;
  int64_t cur = -1;
  for (int64_t r = 0; r < rows; ++r) {
    if (block_of_row[r] != cur) {
      blocks.emplace_back(width, 0.0);
      cur = block_of_row[r];
    }
    auto& b = blocks.back();
    const float* xr = x + r * dim;
    b[0] += 1;
    for (size_t i = 0; i < d; ++i) {
      b[1 + i] += xr[i];
      for (size_t j = i; j < d; ++j) b[1 + d + i * d + j] += static_cast<double>(xr[i]) * xr[j];
    }
  }
  auto total = ordered_block_sum(comm, blocks, width);
  PcaResult res;
  res.dim = dim;
  res.k = k;
  res.count = static_cast<int64_t>(total[0]);
  if (res.count < 2) CONFLUX_THROW(DataError, "pca needs at least 2 rows (got {})", res.count);
  res.mean.resize(d);
  for (size_t i = 0; i < d; ++i) res.mean[i] = total[1 + i] / total[0];
  std::vector<double> cov(d * d);
  for (size_t i = 0; i < d; ++i)
    for (size_t j = i; j < d; ++j) {
      double c = (total[1 + d + i * d + j] - total[0] * res.mean[i] * res.mean[j]) / (total[0] - 1);
      cov[i * d + j] = cov[j * d + i] = c;
    }
  std::vector<double> vecs;
  symmetric_eigen(cov, dim, &res.eigenvalues, &vecs);
  res.components.assign(vecs.begin(), vecs.begin() + static_cast<std::ptrdiff_t>(k * dim));
  double all = 0, top = 0;
  for (int64_t i = 0; i < dim; ++i) {
    double ev = std::max(0.0, res.eigenvalues[i]);
    all += ev;
    if (i < k) top += ev;
  }
  res.explained_ratio = all > 0 ? top / all : 0;
  return res;
}

std::vector<float> pca_project(const PcaResult& pca, const float* x, int64_t rows) {
  std::vector<float> out(static_cast<size_t>(rows * pca.k));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < pca.k; ++c) {
      double s = 0;
      for (int64_t i = 0; i < pca.dim; ++i) s += (x[r * pca.dim + i] - pca.mean[i]) * pca.components[c * pca.dim + i];
      out[r * pca.k + c] = static_cast<float>(s);
    }
  return out;
}

}  // namespace conflux::dataplane
