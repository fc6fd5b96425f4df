// RMSNorm as Hugging Face's LlamaRMSNorm computes it in fp32:
//   out = weight · (x · 1/sqrt(mean(x²) + eps))   per row
// (the normalised value is formed first, then scaled by the weight).
#pragma once

#include <cstdint>

namespace tulu {

// x, out: [rows, n] (out may equal x); weight: [n] fp32.
void rmsnorm(const float* x, const float* weight, float* out, int64_t rows, int64_t n, float eps);

}  // namespace tulu
