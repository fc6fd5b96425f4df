// Activation quantization for the integer matmuls: quantize_row_q8_0 gives exactly the
// blocks quantize_row_q8_0_ref (tensor/quant_blocks.h) gives — same d, same f16 d, same
// q = roundf(x·(1/d)) with ties away from zero — with AVX-512 (16 lanes, rounding emulated
// exactly: truncate, then step away from zero where the dropped fraction is ≥ 1/2). A block
// holding a NaN, CPUs without AVX-512 and force_generic_kernels() take the reference.
// Decode quantizes one row per matmul (7 per layer); the libm calls of the reference
// (fmaxf, roundf per element) were ~5 % of a Q4_0 generation step.
#pragma once

#include <cstddef>

#include "tensor/quant_blocks.h"

namespace tulu {

// n a multiple of 32; y holds n/32 blocks.
void quantize_row_q8_0(const float* x, BlockQ8_0* y, size_t n);

}  // namespace tulu
