// Q4_0_R16 and Q8_0_R16: Q4_0 / Q8_0 weights with every 16 consecutive rows interleaved
// block by block, the layout the AVX-512 decode and prompt kernels read
// (kernels/quant_matvec.h, kernels/quant_gemm_vnni.h). Made once at load
// (llama/weight_repack.h); never written to a file. They hold exactly the bytes of the rows
// they came from, rearranged:
//
//   group g = rows 16g .. 16g+15; groups follow each other, and within a group the blocks
//   b = 0 .. blocks−1 follow each other, each as one BlockQ4_0x16 (288 bytes) or
//   BlockQ8_0x16 (544 bytes):
//     d[r]                = block b of row 16g + r: its f16 scale
//     qs[64·q + 4·r + t]  = block b of row 16g + r: its byte qs[4q + t]
//                           (q < 4 for Q4_0, q < 8 for Q8_0; t < 4)
//
// So one 64-byte load of qs[64q ..] holds, in 32-bit lane r, row r's next 4 bytes — for
// Q8_0 the elements 4q .. 4q+3, for Q4_0 the elements 4q .. 4q+3 in the low nibbles and
// 16+4q .. 16+4q+3 in the high ones: one vpdpbusd with a broadcast of 4 activation bytes
// advances 16 rows at once, and the 16 scales convert in one instruction. Rows must be a
// multiple of 16 (rows16_repackable).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/quant_blocks.h"

namespace tulu {

inline constexpr int64_t kRepackRows = 16;

struct BlockQ4_0x16 {
  uint16_t d[kRepackRows];                      // f16 scales of the 16 rows
  uint8_t qs[kRepackRows * (kQuantBlock / 2)];  // [4 q][16 rows][4 bytes]
};
struct BlockQ8_0x16 {
  uint16_t d[kRepackRows];               // f16 scales of the 16 rows
  int8_t qs[kRepackRows * kQuantBlock];  // [8 q][16 rows][4 bytes]
};
static_assert(sizeof(BlockQ4_0x16) == 16 * sizeof(BlockQ4_0) && alignof(BlockQ4_0x16) == 2);
static_assert(sizeof(BlockQ8_0x16) == 16 * sizeof(BlockQ8_0) && alignof(BlockQ8_0x16) == 2);

// The interleaved dtype of a plain one (Q4_0 → Q4_0_R16, Q8_0 → Q8_0_R16) and back; other
// dtypes map to themselves.
DType interleaved_dtype(DType plain);
DType plain_dtype(DType dtype);

// True when a [rows, cols] Q4_0/Q8_0 weight can take the R16 layout: rows a positive
// multiple of 16 and cols a positive multiple of 32.
bool rows16_repackable(int64_t rows, int64_t cols);

// dst = src ([rows][blocks] plain blocks) in the R16 layout. rows a multiple of 16; src and
// dst must not overlap.
void repack_q4_0_r16(const BlockQ4_0* src, int64_t rows, size_t blocks, BlockQ4_0x16* dst);
void repack_q8_0_r16(const BlockQ8_0* src, int64_t rows, size_t blocks, BlockQ8_0x16* dst);

// The same, choosing by the plain dtype (Q4_0 or Q8_0; anything else is an error).
void repack_r16(DType plain, const void* src, int64_t rows, size_t blocks, void* dst);

// The 16 plain rows of one group (its `blocks` interleaved blocks) into rows
// ([16][blocks] plain blocks): the exact inverse of repacking for that group.
void unpack_q4_0_r16_group(const BlockQ4_0x16* group, size_t blocks, BlockQ4_0* rows);
void unpack_q8_0_r16_group(const BlockQ8_0x16* group, size_t blocks, BlockQ8_0* rows);
// The same, choosing by the interleaved dtype (Q4_0_R16 or Q8_0_R16).
void unpack_r16_group(DType interleaved, const void* group, size_t blocks, void* rows);

}  // namespace tulu
