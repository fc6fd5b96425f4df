// Backward of rope_apply() (rope.h): RoPE is a rotation per (position, frequency) pair, so
// its gradient is the inverse rotation (angle −θ) applied to the incoming gradient.
#pragma once

#include <cstdint>

#include "kernels/rope.h"

namespace tulu {

// Same layout contract as rope_apply: rotates `heads` head vectors of each of `rows` rows of
// dx in place by −angle(position first_position + r).
void rope_apply_inverse(float* dx, int64_t rows, int64_t row_stride, int heads, int first_position,
                        const RopeTable& table);

}  // namespace tulu
