#include "tensor/tensor.h"

#include <cstring>

#include "tensor/half.h"

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
  switch (view.dtype) {
    case DType::F32: std::memcpy(out.data(), view.data, n * sizeof(float)); break;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) out[i] = f16_to_f32(view.u16()[i]);
      break;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(view.u16()[i]);
      break;
  }
  return out;
}

}  // namespace tulu
