// Q4_0_R16: Q4_0 weights with every 16 consecutive rows interleaved block by block, the
// layout the AVX-512 decode and prompt kernels read (kernels/quant_matvec.h,
// kernels/quant_gemm_vnni.h). Made once at load (llama/weight_repack.h); never written to a
// file. It holds exactly the bytes of the Q4_0 rows it came from, rearranged:
//
//   group g = rows 16g .. 16g+15; groups follow each other, and within a group the blocks
//   b = 0 .. blocks−1 follow each other as BlockQ4_0x16 (288 bytes):
//     d[r]            = block b of row 16g + r: its f16 scale
//     qs[64·q + 4·r + t] = block b of row 16g + r: its byte qs[4q + t]   (q < 4, t < 4)
//
// So one 64-byte load of qs[64q ..] holds, in 32-bit lane r, row r's elements 4q .. 4q+3
// (low nibbles) and 16+4q .. 16+4q+3 (high nibbles): one vpdpbusd with a broadcast of 4
// activation bytes advances 16 rows at once, and the 16 scales convert in one instruction.
// Rows must be a multiple of 16 (q4_0_rows16_repackable).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/quant_blocks.h"

namespace tulu {

inline constexpr int64_t kRepackRows = 16;

struct BlockQ4_0x16 {
  uint16_t d[kRepackRows];                        // f16 scales of the 16 rows
  uint8_t qs[kRepackRows * (kQuantBlock / 2)];  // [4 q][16 rows][4 bytes]
};
static_assert(sizeof(BlockQ4_0x16) == 16 * sizeof(BlockQ4_0) && alignof(BlockQ4_0x16) == 2);

// True when a [rows, cols] Q4_0 weight can take the R16 layout: rows a positive multiple of
// 16 and cols a positive multiple of 32.
bool q4_0_rows16_repackable(int64_t rows, int64_t cols);

// dst (rows · blocks blocks' worth of bytes) = src ([rows][blocks] BlockQ4_0) in the R16
// layout. rows a multiple of 16; src and dst must not overlap.
void repack_q4_0_r16(const BlockQ4_0* src, int64_t rows, size_t blocks, BlockQ4_0x16* dst);

// The 16 plain Q4_0 rows of one group (group: its `blocks` BlockQ4_0x16) into rows
// ([16][blocks] BlockQ4_0): the exact inverse of repack_q4_0_r16 for that group.
void unpack_q4_0_r16_group(const BlockQ4_0x16* group, size_t blocks, BlockQ4_0* rows);

}  // namespace tulu
