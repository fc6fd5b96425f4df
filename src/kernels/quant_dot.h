// Dot products of one block-quantized weight row with one activation row quantized to
// Q8_0, as ggml computes them (ggml_vec_dot_q8_0_q8_0 / ggml_vec_dot_q4_0_q8_0): per
// 32-element block an exact integer sum Σ q_w·q_x, scaled by f16(d_w)·f16(d_x) and summed
// in fp32.
//
//   *_ref:  the scalar specification (ggml's generic code): sumf += sumi · (d_w · d_x) in
//           block order.
//   fast:   x86 AVX2 (maddubs) or AVX-512 VNNI (vpdpbusd, 256-bit) chosen at run time, or
//           the _ref code where neither exists or force_generic_kernels() is set. The integer
//           block sums are the same; only the fp32 accumulation order differs (8 lanes, fused
//           multiply-add), so |fast − ref| ≤ (blocks + 2)·2⁻²³·Σ_b |sumi_b·d_w·d_x| (see the
//           tests, which check this bound).
//
// `blocks` = row length / 32. Activation blocks must have |q| ≤ 127 (quantize_row_q8_0_ref
// guarantees it); weight blocks may hold any int8.
#pragma once

#include <cstddef>
#include <string>

#include "tensor/quant_blocks.h"

namespace tulu {

float vec_dot_q8_0_q8_0_ref(const BlockQ8_0* w, const BlockQ8_0* x, size_t blocks);
float vec_dot_q4_0_q8_0_ref(const BlockQ4_0* w, const BlockQ8_0* x, size_t blocks);

float vec_dot_q8_0_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, size_t blocks);
float vec_dot_q4_0_q8_0(const BlockQ4_0* w, const BlockQ8_0* x, size_t blocks);

// Tiles: the 4 × x_rows products of weight rows w + i·blocks (i < 4) with activation rows
// x + j·blocks (j < x_rows, x_rows 1 or 4), out[i·x_rows + j], in one pass over the blocks
// (AVX-512 VNNI, 256-bit): activation loads are shared by 4 weight rows, weight unpacking
// by x_rows activation rows. The weights go in unsigned (Q4_0 nibbles as stored, Q8_0 +
// 128) and the offset is taken back in every lane as −offset·Σ(that lane's 4 activation
// bytes), so each lane's integer sum is an exact partial of the block sum vec_dot_* forms
// and the same error bound holds. Returns false (computing nothing) when the CPU path is
// not VNNI.
bool quant_tile_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, size_t blocks, int x_rows, float* out);
bool quant_tile_q4_0(const BlockQ4_0* w, const BlockQ8_0* x, size_t blocks, int x_rows, float* out);

// "AVX512-VNNI", "AVX2" or "generic": the path vec_dot_* take on this CPU now.
std::string quant_dot_target_name();

// Caps the path for the rest of the process (tests run every path the CPU has); kVnni, the
// default, means "the best available". Not thread-safe with kernels running concurrently.
enum class QuantPath { kGeneric, kAvx2, kVnni };
void set_quant_dot_path_limit(QuantPath best);
// The path the dot products take now: the CPU's best, capped by the limit and by
// force_generic_kernels().
QuantPath quant_dot_path();
// The best path this CPU has (detected once), ignoring limits.
QuantPath quant_cpu_best_path();

}  // namespace tulu
