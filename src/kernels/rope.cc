#include "kernels/rope.h"

#include <cmath>

#include "core/error.h"

namespace tulu {

RopeTable make_rope_table(int head_dim, double theta, double linear_factor, int positions) {
  TULU_CHECK(head_dim > 0 && head_dim % 2 == 0,
             "rotary embedding: head_dim must be positive and even, got ", head_dim);
  TULU_CHECK(positions >= 0, "rotary embedding: negative number of positions ", positions);
  TULU_CHECK(theta > 0 && linear_factor > 0, "rotary embedding: rope_theta (", theta,
             ") and scaling factor (", linear_factor, ") must be positive");
  RopeTable table;
  table.head_dim = head_dim;
  table.positions = positions;
  const int half = head_dim / 2;
  // Every step in float32, as torch does: arange(0, dim, 2).float() / dim, then
  // base ** that (base as float32), then 1 / that.
  const auto theta_f = static_cast<float>(theta);
  table.inv_freq.resize(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    table.inv_freq[static_cast<size_t>(i)] = 1.0f / std::pow(theta_f, exponent);
  }
  const auto factor_f = static_cast<float>(linear_factor);
  table.cos.resize(static_cast<size_t>(positions) * static_cast<size_t>(half));
  table.sin.resize(table.cos.size());
  for (int p = 0; p < positions; ++p) {
    const float t = static_cast<float>(p) / factor_f;
    for (int i = 0; i < half; ++i) {
      const float angle = t * table.inv_freq[static_cast<size_t>(i)];
      // cos/sin of the float32 angle, correctly rounded to float32 via double.
      const size_t at = static_cast<size_t>(p) * static_cast<size_t>(half) + static_cast<size_t>(i);
      table.cos[at] = static_cast<float>(std::cos(static_cast<double>(angle)));
      table.sin[at] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
  return table;
}

}  // namespace tulu
