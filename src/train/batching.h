// Epoch order and micro-batches: a seeded, platform-independent shuffle (SplitMix64 +
// Fisher–Yates) of example indices per epoch, cut into micro-batches of batch_size (the last
// may be smaller), optionally grouped by length: with length buckets, the shuffled order is
// cut into windows of 64 · batch_size examples, each window sorted by length (stable) before
// cutting, and the micro-batches shuffled again (a smaller last batch stays last) — so
// batches hold similar lengths (less padding waste) while the order stays random.
// Each epoch draws from its own SplitMix64 stream, seeded from (seed, epoch); with
// shuffle = false the order is the data's (length buckets then only sort within windows).
#pragma once

#include <cstdint>
#include <vector>

namespace tulu {

struct BatchPlanOptions {
  int64_t batch_size = 1;
  uint64_t seed = 42;
  bool shuffle = true;
  bool length_buckets = false;
};

// Micro-batches (lists of example indices) of one epoch; depends only on (lengths, options,
// epoch), never on earlier calls, so a resumed run can rebuild any epoch's order.
std::vector<std::vector<int64_t>> plan_epoch(const std::vector<int64_t>& lengths,
                                             const BatchPlanOptions& options, int64_t epoch);

}  // namespace tulu
