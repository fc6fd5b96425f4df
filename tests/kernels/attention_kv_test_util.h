// F16 key/value caches for the attention kernel tests: random fp32 values rounded to IEEE
// half (nearest even), stored misaligned in an exactly sized buffer, with the fp32 values
// they hold (the "pre-rounded" keys/values the F32 kernels are run on for comparison).
#pragma once

#include <vector>

#include "kernels/attention.h"
#include "tensor/half.h"

namespace tulu::testing {

struct HalfCache {
  std::vector<Half> storage;
  Half* data;
  size_t size;
  std::vector<float> widened;  // widened[i] = exact fp32 value of data[i]

  HalfCache(const std::vector<float>& values, int misalign)
      : storage(values.size() + static_cast<size_t>(misalign)),
        data(storage.data() + misalign),
        size(values.size()),
        widened(values) {
    for (size_t i = 0; i < size; ++i) {
      data[i] = Half{f32_to_f16(values[i])};
      widened[i] = f16_to_f32(data[i].bits);
    }
  }
};

}  // namespace tulu::testing
