// merge_across: all ranks exchange serialised Stats and merge them in rank order.
#include "conflux/evaluator/distributed.h"

#include "conflux/core/error.h"

namespace conflux::evaluator {

Stats merge_across(const Stats& local, Communicator& comm) {
  const std::vector<uint8_t> mine = local.to_bytes();
  std::vector<std::vector<uint8_t>> per_rank(static_cast<size_t>(comm.size()), mine);
  std::vector<size_t> counts;
  const std::vector<uint8_t> all = comm.alltoallv_bytes(per_rank, &counts);
  if (counts.size() != static_cast<size_t>(comm.size()))
    CONFLUX_THROW(InternalError, "merge_across: {} byte counts for {} ranks", counts.size(), comm.size());
  Stats merged;
  size_t offset = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    if (offset + counts[r] > all.size())
      CONFLUX_THROW(CommError, "merge_across: rank {} sent {} bytes past the end of the exchange", r,
                    counts[r]);
    Stats s = Stats::from_bytes(std::vector<uint8_t>(all.begin() + offset, all.begin() + offset + counts[r]));
    offset += counts[r];
    if (r == 0) merged = std::move(s);
    else merge_into(merged, s);
  }
  return merged;
}

}  // namespace conflux::evaluator
