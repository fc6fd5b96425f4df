// Deterministic, portable random initialisation of Llama parameters, as transformers'
// LlamaPreTrainedModel._init_weights does it: linear and embedding weights ~ normal(0, std)
// with std = initializer_range (0.02), RMSNorm weights = 1. The random stream is our own
// (SplitMix64 + Box–Muller in double), so the same seed gives the same bytes on every
// platform and compiler; each tensor has its own stream derived from (seed, name), so the
// values do not depend on the order tensors are written in.
#pragma once

#include <cstdint>
#include <string>

#include "llama/model.h"

namespace tulu {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in (0, 1]: 53 random bits.
  double uniform() { return static_cast<double>((next() >> 11) + 1) * 0x1.0p-53; }
  // Standard normal (Box–Muller; one value per call, the second is discarded for simplicity).
  double normal();

 private:
  uint64_t state_;
};

// Writes spec's numel values in `dtype` to out (rounded to nearest even from fp32).
// 1-D parameters (RMSNorm weights) are ones; others normal(0, std).
void fill_initial_weights(const ParamSpec& spec, uint64_t seed, double std, DType dtype, void* out);

}  // namespace tulu
