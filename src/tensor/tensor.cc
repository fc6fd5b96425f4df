#include "tensor/tensor.h"

#include "core/error.h"
#include "tensor/quant_blocks.h"
#include "tensor/quant_repack.h"

namespace tulu {

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::vector<float> to_f32(const TensorView& view) {
  const auto n = static_cast<size_t>(view.numel());
  std::vector<float> out(n);
  if (n == 0) return out;  // an empty view may have a null data pointer
  (void)view.nbytes();  // checks that a quantized view holds whole blocks
  if (view.dtype != DType::Q4_0_R16) {
    dequantize_row(view.data, view.dtype, n, out.data());
    return out;
  }
  TULU_CHECK(view.shape.size() == 2 && q4_0_rows16_repackable(view.dim(0), view.dim(1)),
             "to_f32: a Q4_0_R16 view must be [16k, 32m], not ", shape_to_string(view.shape));
  // Group by group back to plain rows, then the Q4_0 decoder.
  const auto blocks = static_cast<size_t>(view.dim(1)) / kQuantBlock;
  const auto cols = static_cast<size_t>(view.dim(1));
  std::vector<BlockQ4_0> rows(static_cast<size_t>(kRepackRows) * blocks);
  const auto* groups = static_cast<const BlockQ4_0x16*>(view.data);
  for (int64_t g = 0; g < view.dim(0) / kRepackRows; ++g) {
    unpack_q4_0_r16_group(groups + static_cast<size_t>(g) * blocks, blocks, rows.data());
    dequantize_row(rows.data(), DType::Q4_0, static_cast<size_t>(kRepackRows) * cols,
                   out.data() + static_cast<size_t>(g * kRepackRows) * cols);
  }
  return out;
}

}  // namespace tulu
