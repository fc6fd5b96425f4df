#include "tensor/quant_repack.h"

#include <cstring>

#include "core/error.h"

namespace tulu {

namespace {

constexpr size_t kBytesPerLane = 4;  // qs bytes of one row per 64-byte step

// Where bytes 4q .. 4q+3 of row r's block sit in the interleaved block's qs.
constexpr size_t lane_offset(size_t r, size_t q) {
  return (q * kRepackRows + r) * kBytesPerLane;
}

template <typename Plain, typename Interleaved>
void repack(const Plain* src, int64_t rows, size_t blocks, Interleaved* dst) {
  constexpr size_t steps = sizeof(Plain::qs) / kBytesPerLane;
  for (size_t g = 0; g < static_cast<size_t>(rows / kRepackRows); ++g) {
    const Plain* group_rows = src + g * kRepackRows * blocks;
    for (size_t b = 0; b < blocks; ++b) {
      Interleaved& out = dst[g * blocks + b];
      for (size_t r = 0; r < kRepackRows; ++r) {
        const Plain& in = group_rows[r * blocks + b];
        out.d[r] = in.d;
        for (size_t q = 0; q < steps; ++q)
          std::memcpy(out.qs + lane_offset(r, q), in.qs + q * kBytesPerLane, kBytesPerLane);
      }
    }
  }
}

template <typename Interleaved, typename Plain>
void unpack_group(const Interleaved* group, size_t blocks, Plain* rows) {
  constexpr size_t steps = sizeof(Plain::qs) / kBytesPerLane;
  for (size_t b = 0; b < blocks; ++b) {
    const Interleaved& in = group[b];
    for (size_t r = 0; r < kRepackRows; ++r) {
      Plain& out = rows[r * blocks + b];
      out.d = in.d[r];
      for (size_t q = 0; q < steps; ++q)
        std::memcpy(out.qs + q * kBytesPerLane, in.qs + lane_offset(r, q), kBytesPerLane);
    }
  }
}

}  // namespace

DType interleaved_dtype(DType plain) {
  if (plain == DType::Q4_0) return DType::Q4_0_R16;
  if (plain == DType::Q8_0) return DType::Q8_0_R16;
  return plain;
}

DType plain_dtype(DType dtype) {
  if (dtype == DType::Q4_0_R16) return DType::Q4_0;
  if (dtype == DType::Q8_0_R16) return DType::Q8_0;
  return dtype;
}

bool rows16_repackable(int64_t rows, int64_t cols) {
  return rows > 0 && rows % kRepackRows == 0 && cols > 0 &&
         cols % static_cast<int64_t>(kQuantBlock) == 0;
}

void repack_q4_0_r16(const BlockQ4_0* src, int64_t rows, size_t blocks, BlockQ4_0x16* dst) {
  repack(src, rows, blocks, dst);
}

void repack_q8_0_r16(const BlockQ8_0* src, int64_t rows, size_t blocks, BlockQ8_0x16* dst) {
  repack(src, rows, blocks, dst);
}

void unpack_q4_0_r16_group(const BlockQ4_0x16* group, size_t blocks, BlockQ4_0* rows) {
  unpack_group(group, blocks, rows);
}

void unpack_q8_0_r16_group(const BlockQ8_0x16* group, size_t blocks, BlockQ8_0* rows) {
  unpack_group(group, blocks, rows);
}

void repack_r16(DType plain, const void* src, int64_t rows, size_t blocks, void* dst) {
  if (plain == DType::Q4_0)
    return repack_q4_0_r16(static_cast<const BlockQ4_0*>(src), rows, blocks,
                           static_cast<BlockQ4_0x16*>(dst));
  if (plain == DType::Q8_0)
    return repack_q8_0_r16(static_cast<const BlockQ8_0*>(src), rows, blocks,
                           static_cast<BlockQ8_0x16*>(dst));
  fail("repack_r16: ", dtype_name(plain), " has no 16-row layout (Q4_0 and Q8_0 do)");
}

void unpack_r16_group(DType interleaved, const void* group, size_t blocks, void* rows) {
  if (interleaved == DType::Q4_0_R16)
    return unpack_q4_0_r16_group(static_cast<const BlockQ4_0x16*>(group), blocks,
                                 static_cast<BlockQ4_0*>(rows));
  if (interleaved == DType::Q8_0_R16)
    return unpack_q8_0_r16_group(static_cast<const BlockQ8_0x16*>(group), blocks,
                                 static_cast<BlockQ8_0*>(rows));
  fail("unpack_r16_group: ", dtype_name(interleaved), " is not a 16-row layout");
}

}  // namespace tulu
