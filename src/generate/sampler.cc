// Sampling: see sampler.h for the semantics (Hugging Face's logits processors).
//
// Cost: O(vocab) for the penalty, temperature and softmax weights; top-k selects with
// nth_element and sorts only the ≈ k survivors; top-p finds its cut by quickselect
// (expected O(vocab)), so the vocabulary is never fully sorted.
#include "generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace tulu {

void validate_sampling(const SamplingParams& params) {
  // Written as negated range checks so that NaN fails every one of them.
  TULU_CHECK(params.temperature >= 0.0 && std::isfinite(params.temperature),
             "--temperature must be a finite number >= 0 (0 = greedy), got ",
             params.temperature);
  TULU_CHECK(params.top_k >= 0, "--top-k must be >= 0 (0 = off), got ", params.top_k);
  TULU_CHECK(params.top_p > 0.0 && params.top_p <= 1.0,
             "--top-p must be in (0, 1] (1 = off), got ", params.top_p);
  TULU_CHECK(params.min_p >= 0.0 && params.min_p <= 1.0,
             "--min-p must be in [0, 1] (0 = off), got ", params.min_p);
  TULU_CHECK(params.repetition_penalty > 0.0 && std::isfinite(params.repetition_penalty),
             "--repetition-penalty must be a finite number > 0 (1 = off), got ",
             params.repetition_penalty);
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  validate_sampling(params_);
}

namespace {

// Descending by score; of equal scores the higher id first (the reverse of a stable
// ascending sort, which is what torch.sort gives the top-p warper).
struct MoreProbable {
  const float* scores;
  bool operator()(int a, int b) const {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a > b);
  }
};

}  // namespace

void Sampler::apply_repetition_penalty(std::span<float> logits, std::span<const int> history) {
  const int vocab = static_cast<int>(logits.size());
  seen_.assign(logits.size(), 0);
  // torch multiplies / divides float32 scores by the penalty rounded to float32.
  const float penalty = static_cast<float>(params_.repetition_penalty);
  for (size_t i = 0; i < history.size(); ++i) {
    const int id = history[i];
    TULU_CHECK(id >= 0 && id < vocab, "sampler: history token ", i, " has id ", id,
               ", outside the vocabulary [0, ", vocab, ")");
    if (seen_[id]) continue;  // each distinct id once, as HF's gather/scatter
    seen_[id] = 1;
    const float score = logits[id];
    logits[id] = score < 0.0f ? score * penalty : score / penalty;
  }
}

size_t Sampler::filter(std::span<float> logits, std::span<const int> history) {
  const size_t vocab = logits.size();
  TULU_CHECK(vocab > 0, "sampler: empty logits");
  for (size_t i = 0; i < vocab; ++i) {
    TULU_CHECK(!std::isnan(logits[i]), "sampler: the model produced a NaN logit (token id ", i,
               ")");
  }
  if (params_.repetition_penalty != 1.0) apply_repetition_penalty(logits, history);
  order_.resize(vocab);

  if (params_.temperature == 0.0) {  // greedy: first index of the maximum
    size_t best = 0;
    for (size_t i = 1; i < vocab; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    order_[0] = static_cast<int>(best);
    weights_.assign(vocab, 0.0);
    weights_[best] = 1.0;
    total_weight_ = 1.0;
    return 1;
  }

  if (params_.temperature != 1.0) {
    const float temperature = static_cast<float>(params_.temperature);
    for (float& score : logits) score = score / temperature;
  }

  size_t count = vocab;
  size_t sorted_count = 0;  // order_[0, sorted_count) is sorted most probable first
  std::iota(order_.begin(), order_.end(), 0);
  const MoreProbable more_probable{logits.data()};
  const size_t top_k = static_cast<size_t>(params_.top_k);
  if (top_k > 0 && top_k < vocab) {
    std::nth_element(order_.begin(), order_.begin() + static_cast<ptrdiff_t>(top_k - 1),
                     order_.end(), more_probable);
    const float kth = logits[order_[top_k - 1]];
    count = 0;  // keep every score >= the k-th (HF removes only the strictly smaller)
    for (size_t i = 0; i < vocab; ++i) {
      if (logits[i] >= kth) order_[count++] = static_cast<int>(i);
    }
    std::sort(order_.begin(), order_.begin() + static_cast<ptrdiff_t>(count), more_probable);
    sorted_count = count;
  }

  // Softmax weights relative to the largest score (always a survivor). A score equal to the
  // maximum weighs 1 even when both are infinite (a tiny temperature can overflow).
  float max_score = logits[0];
  for (size_t i = 1; i < vocab; ++i) max_score = std::max(max_score, logits[i]);
  weights_.assign(vocab, 0.0);
  total_weight_ = 0.0;
  for (size_t i = 0; i < count; ++i) {
    const int id = order_[i];
    const double w = logits[id] == max_score
                         ? 1.0
                         : std::exp(static_cast<double>(logits[id]) - static_cast<double>(max_score));
    weights_[id] = w;
    total_weight_ += w;
  }

  if (params_.top_p < 1.0) count = apply_top_p(logits, count, sorted_count);

  if (params_.min_p > 0.0) {
    // p_i < min_p * p_max  <=>  w_i < min_p (the largest weight is 1); keeps the top token.
    size_t kept = 0;
    double kept_weight = 0.0;
    for (size_t i = 0; i < count; ++i) {
      const int id = order_[i];
      if (weights_[id] < params_.min_p) {
        weights_[id] = 0.0;
        continue;
      }
      order_[kept++] = id;
      kept_weight += weights_[id];
    }
    count = kept;
    total_weight_ = kept_weight;
  }
  return count;
}

size_t Sampler::apply_top_p(std::span<const float> logits, size_t count, size_t sorted_count) {
  // Token r (in MoreProbable order) has ascending cumulative probability 1 - (mass above r);
  // HF drops it when that is <= 1 - top_p (both float32 in torch), except the top token.
  // keep(r) only ever turns from true to false as r grows, so the kept tokens are a top
  // segment, found here by quickselect on that predicate: expected O(count), no full sort.
  const float threshold = static_cast<float>(1.0 - params_.top_p);
  const double total = total_weight_;
  auto keep = [&](size_t rank, double above) {
    return rank == 0 || static_cast<float>((total - above) / total) > threshold;
  };
  const MoreProbable more_probable{logits.data()};
  auto at = [&](size_t i) { return order_.begin() + static_cast<ptrdiff_t>(i); };

  // Invariant: order_[0, lo) are kept (mass `above`), order_[hi, count) are dropped, and
  // every id in [lo, hi) is less probable than those before and more than those after.
  size_t lo = 0, hi = count;
  double above = 0.0;
  if (sorted_count < count) {
    while (hi - lo > 32) {
      // Median of three as the pivot, moved to the front of the range.
      const size_t mid = lo + (hi - lo) / 2;
      if (more_probable(order_[mid], order_[lo])) std::iter_swap(at(mid), at(lo));
      if (more_probable(order_[hi - 1], order_[lo])) std::iter_swap(at(hi - 1), at(lo));
      if (more_probable(order_[hi - 1], order_[mid])) std::iter_swap(at(hi - 1), at(mid));
      std::iter_swap(at(lo), at(mid));  // the median of the three
      const int pivot = order_[lo];
      const auto split = std::partition(at(lo + 1), at(hi),
                                        [&](int id) { return more_probable(id, pivot); });
      const auto pivot_rank = static_cast<size_t>(split - order_.begin()) - 1;
      std::rotate(at(lo), at(lo + 1), split);  // pivot lands at pivot_rank
      double mass_before_pivot = above;
      for (size_t i = lo; i < pivot_rank; ++i) mass_before_pivot += weights_[order_[i]];
      if (keep(pivot_rank, mass_before_pivot)) {
        lo = pivot_rank + 1;
        above = mass_before_pivot + weights_[pivot];
      } else {
        hi = pivot_rank;
      }
    }
    std::sort(at(lo), at(hi), more_probable);
  }
  // Walk the sorted remainder rank by rank.
  for (; lo < hi && keep(lo, above); ++lo) above += weights_[order_[lo]];
  for (size_t i = lo; i < count; ++i) weights_[order_[i]] = 0.0;
  total_weight_ = above;
  return lo;
}

int Sampler::sample(std::span<float> logits, std::span<const int> history) {
  const size_t count = filter(logits, history);
  if (count == 1) return order_[0];
  // A uniform double in [0, 1) from the top 53 bits: the same on every platform (the
  // standard distributions are implementation-defined).
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  const double target = u * total_weight_;
  double cumulative = 0.0;
  int last_positive = order_[0];
  for (size_t i = 0; i < count; ++i) {
    const int id = order_[i];
    const double w = weights_[id];
    if (w <= 0.0) continue;
    cumulative += w;
    last_positive = id;
    if (cumulative > target) return id;
  }
  return last_positive;  // rounding left target at the very top
}

std::vector<TokenProb> Sampler::distribution(std::span<float> logits,
                                             std::span<const int> history) {
  const size_t count = filter(logits, history);
  std::vector<TokenProb> result;
  result.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const int id = order_[i];
    if (weights_[id] > 0.0) result.push_back({id, weights_[id] / total_weight_});
  }
  std::sort(result.begin(), result.end(), [](const TokenProb& a, const TokenProb& b) {
    return a.prob > b.prob || (a.prob == b.prob && a.id > b.id);
  });
  return result;
}

}  // namespace tulu
