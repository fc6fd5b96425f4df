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
  if (plain_dtype(view.dtype) == view.dtype) {
    dequantize_row(view.data, view.dtype, n, out.data());
    return out;
  }
  TULU_CHECK(view.shape.size() == 2 && rows16_repackable(view.dim(0), view.dim(1)),
             "to_f32: a ", dtype_name(view.dtype), " view must be [16k, 32m], not ",
             shape_to_string(view.shape));
  // Group by group back to plain rows, then the plain decoder.
  const auto blocks = static_cast<size_t>(view.dim(1)) / kQuantBlock;
  const size_t group_elements = static_cast<size_t>(kRepackRows * view.dim(1));
  const size_t group_bytes = static_cast<size_t>(kRepackRows) *
                             dtype_row_bytes(view.dtype, static_cast<uint64_t>(view.dim(1)));
  std::vector<uint8_t> rows(group_bytes);
  const auto* groups = static_cast<const uint8_t*>(view.data);
  for (int64_t g = 0; g < view.dim(0) / kRepackRows; ++g) {
    const uint8_t* group = groups + static_cast<size_t>(g) * group_bytes;
    unpack_r16_group(view.dtype, group, blocks, rows.data());
    dequantize_row(rows.data(), plain_dtype(view.dtype), group_elements,
                   out.data() + static_cast<size_t>(g) * group_elements);
  }
  return out;
}

}  // namespace tulu
