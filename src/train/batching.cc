// Epoch plans (see batching.h). Randomness is SplitMix64 only, with unbiased bounded draws
// by rejection, so a (seed, epoch) gives the same plan on every platform and compiler.
#include "train/batching.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "llama/random_init.h"

namespace tulu {

namespace {

// The stream of an epoch: SplitMix64 seeded from (seed, epoch) through two SplitMix64
// mixing steps, so neighbouring seeds or epochs give unrelated streams.
uint64_t epoch_stream_seed(uint64_t seed, int64_t epoch) {
  const uint64_t seed_mix = SplitMix64(seed).next();
  return SplitMix64(seed_mix ^ static_cast<uint64_t>(epoch)).next();
}

// Uniform in [0, bound) without modulo bias: draws below 2^64 mod bound are rejected.
uint64_t uniform_below(SplitMix64& rng, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
  while (true) {
    const uint64_t r = rng.next();
    if (r >= threshold) return r % bound;
  }
}

// Fisher–Yates (Durstenfeld): position i swaps with a uniform j in [0, i], i from the end.
template <typename T>
void shuffle(std::vector<T>& items, SplitMix64& rng) {
  for (size_t i = items.size(); i > 1; --i) {
    const auto j = static_cast<size_t>(uniform_below(rng, i));
    std::swap(items[i - 1], items[j]);
  }
}

std::vector<std::vector<int64_t>> cut(const std::vector<int64_t>& order, int64_t batch_size) {
  std::vector<std::vector<int64_t>> batches;
  const auto bs = static_cast<size_t>(batch_size);
  batches.reserve((order.size() + bs - 1) / bs);
  for (size_t begin = 0; begin < order.size(); begin += bs) {
    const size_t end = std::min(begin + bs, order.size());
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(begin),
                         order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return batches;
}

}  // namespace

std::vector<std::vector<int64_t>> plan_epoch(const std::vector<int64_t>& lengths,
                                             const BatchPlanOptions& options, int64_t epoch) {
  TULU_CHECK(options.batch_size >= 1, "batch size must be at least 1, got ", options.batch_size);
  TULU_CHECK(epoch >= 0, "epoch must be at least 0, got ", epoch);
  std::vector<int64_t> order(lengths.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  SplitMix64 rng(epoch_stream_seed(options.seed, epoch));
  if (options.shuffle) shuffle(order, rng);
  if (!options.length_buckets) return cut(order, options.batch_size);

  // Windows of 64 batches' worth, each sorted by length (stable: ties keep the shuffled
  // order), so each batch holds neighbours in length.
  const size_t window = 64 * static_cast<size_t>(options.batch_size);
  for (size_t begin = 0; begin < order.size(); begin += window) {
    const auto first = order.begin() + static_cast<std::ptrdiff_t>(begin);
    const auto last =
        order.begin() + static_cast<std::ptrdiff_t>(std::min(begin + window, order.size()));
    std::stable_sort(first, last, [&](int64_t a, int64_t b) {
      return lengths[static_cast<size_t>(a)] < lengths[static_cast<size_t>(b)];
    });
  }
  std::vector<std::vector<int64_t>> batches = cut(order, options.batch_size);
  // Batch order random again (else lengths would rise and fall in a saw-tooth through the
  // epoch); a smaller last batch stays last, so only the final batch is ever short.
  if (options.shuffle && !batches.empty()) {
    const bool partial_last = batches.back().size() < static_cast<size_t>(options.batch_size);
    std::vector<std::vector<int64_t>> tail;
    if (partial_last) {
      tail.push_back(std::move(batches.back()));
      batches.pop_back();
    }
    shuffle(batches, rng);
    for (auto& batch : tail) batches.push_back(std::move(batch));
  }
  return batches;
}

}  // namespace tulu
