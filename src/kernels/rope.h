// Rotary position embedding in Hugging Face's rotate-half layout (no weight permutation):
// for each head vector v of size head_dim, with half = head_dim / 2 and i < half,
//   v'[i]        = v[i]·cos[p, i]        − v[i + half]·sin[p, i]
//   v'[i + half] = v[i + half]·cos[p, i] + v[i]·sin[p, i]
// (HF: q·cos + rotate_half(q)·sin with cos = cat(freqs, freqs).cos()).
#pragma once

#include <cstdint>
#include <vector>

namespace tulu {

// cos/sin of position × inverse frequency for positions [0, positions), computed exactly as
// transformers' LlamaRotaryEmbedding does it, in float32:
//   inv_freq[i] = 1 / theta^(float(2i) / head_dim)
//   t = float(position) / linear_factor   (linear rope_scaling; factor 1 = none)
//   angle = t · inv_freq[i] (float32 product), cos/sin rounded to float32.
struct RopeTable {
  int head_dim = 0;
  int positions = 0;
  std::vector<float> inv_freq;  // [head_dim / 2]
  std::vector<float> cos;       // [positions, head_dim / 2]
  std::vector<float> sin;       // [positions, head_dim / 2]
};
// head_dim must be even and positive (checked: tulu::Error).
RopeTable make_rope_table(int head_dim, double theta, double linear_factor, int positions);

// Rotates `heads` head vectors in each of `rows` rows of x in place. Row r holds the token
// at position first_position + r; its heads start at x + r·row_stride, head_dim apart.
// first_position + rows must not exceed table.positions.
void rope_apply(float* x, int64_t rows, int64_t row_stride, int heads, int first_position,
                const RopeTable& table);

}  // namespace tulu
