#include "tensor/tensor.h"

#include "tensor/quant_blocks.h"

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
  dequantize_row(view.data, view.dtype, n, out.data());
  return out;
}

}  // namespace tulu
