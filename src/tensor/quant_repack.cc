#include "tensor/quant_repack.h"

#include <cstring>

namespace tulu {

namespace {
constexpr size_t kBytesPerLane = 4;  // qs bytes of one row per 64-byte step
constexpr size_t kSteps = kQuantBlock / 2 / kBytesPerLane;
}  // namespace

bool q4_0_rows16_repackable(int64_t rows, int64_t cols) {
  return rows > 0 && rows % kRepackRows == 0 && cols > 0 &&
         cols % static_cast<int64_t>(kQuantBlock) == 0;
}

void repack_q4_0_r16(const BlockQ4_0* src, int64_t rows, size_t blocks, BlockQ4_0x16* dst) {
  const auto groups = static_cast<size_t>(rows / kRepackRows);
  for (size_t g = 0; g < groups; ++g) {
    const BlockQ4_0* first_row = src + g * kRepackRows * blocks;
    for (size_t b = 0; b < blocks; ++b) {
      BlockQ4_0x16& out = dst[g * blocks + b];
      for (size_t r = 0; r < kRepackRows; ++r) {
        const BlockQ4_0& in = first_row[r * blocks + b];
        out.d[r] = in.d;
        for (size_t q = 0; q < kSteps; ++q)
          std::memcpy(out.qs + (q * kRepackRows + r) * kBytesPerLane, in.qs + q * kBytesPerLane,
                      kBytesPerLane);
      }
    }
  }
}

void unpack_q4_0_r16_group(const BlockQ4_0x16* group, size_t blocks, BlockQ4_0* rows) {
  for (size_t b = 0; b < blocks; ++b) {
    const BlockQ4_0x16& in = group[b];
    for (size_t r = 0; r < kRepackRows; ++r) {
      BlockQ4_0& out = rows[r * blocks + b];
      out.d = in.d[r];
      for (size_t q = 0; q < kSteps; ++q)
        std::memcpy(out.qs + q * kBytesPerLane, in.qs + (q * kRepackRows + r) * kBytesPerLane,
                    kBytesPerLane);
    }
  }
}

}  // namespace tulu
