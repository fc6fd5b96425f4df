#include "llama/random_init.h"

#include <cmath>
#include <cstring>
#include <numbers>

#include "core/error.h"
#include "tensor/half.h"

namespace tulu {

double SplitMix64::normal() {
  const double u1 = uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

namespace {

// FNV-1a: a stable hash of the tensor name for its stream.
uint64_t name_hash(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

void fill_initial_weights(const ParamSpec& spec, uint64_t seed, double std, DType dtype, void* out) {
  int64_t numel = 1;
  for (int64_t d : spec.shape) numel *= d;
  SplitMix64 rng(SplitMix64(seed).next() ^ name_hash(spec.name));
  const bool ones = spec.shape.size() == 1;
  for (int64_t i = 0; i < numel; ++i) {
    const float v = ones ? 1.0f : static_cast<float>(std * rng.normal());
    switch (dtype) {
      case DType::F32: static_cast<float*>(out)[i] = v; break;
      case DType::F16: static_cast<uint16_t*>(out)[i] = f32_to_f16(v); break;
      case DType::BF16: static_cast<uint16_t*>(out)[i] = f32_to_bf16(v); break;
      case DType::Q8_0:
      case DType::Q4_0:
      case DType::Q4_K:
      case DType::Q6_K:
      case DType::Q4_0_R16:
      case DType::Q8_0_R16:
        fail("random initial weights are written as F32, F16 or BF16, not ", dtype_name(dtype));
    }
  }
}

}  // namespace tulu
