// Scalar reference (the specification) of cross_entropy.h, templated on the number type.
// Targets are assumed valid (cross_entropy() checks them before any work). Per kept row:
//   m = max logits (first maximal index is the argmax), e_i = exp(logit_i − m) in T,
//   s = Σ e_i in double (or T if wider), loss = log s + m − logit[target] in double,
//   grad_i = scale · e_i / s − (i == target ? scale : 0).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/cross_entropy.h"

namespace tulu {

template <typename T>
CrossEntropyStats cross_entropy_ref(T* logits, const int* targets, int64_t rows, int64_t vocab,
                                    T scale, bool compute_grad) {
  CrossEntropyStats stats;
  for (int64_t r = 0; r < rows; ++r) {
    T* row = logits + r * vocab;
    const int target = targets[r];
    if (target == kIgnoreIndex) {
      if (compute_grad)
        for (int64_t i = 0; i < vocab; ++i) row[i] = 0;
      continue;
    }
    int64_t argmax = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (row[i] > row[argmax]) argmax = i;
    const T max_value = row[argmax];
    const T target_logit = row[target];
    double sum = 0;
    for (int64_t i = 0; i < vocab; ++i) sum += static_cast<double>(std::exp(row[i] - max_value));
    stats.loss_sum +=
        std::log(sum) + static_cast<double>(max_value) - static_cast<double>(target_logit);
    stats.tokens += 1;
    stats.correct += argmax == target ? 1 : 0;
    if (compute_grad) {
      for (int64_t i = 0; i < vocab; ++i)
        row[i] = scale * (std::exp(row[i] - max_value) / static_cast<T>(sum));
      row[target] -= scale;
    }
  }
  return stats;
}

}  // namespace tulu
