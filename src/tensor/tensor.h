// A non-owning view of a stored tensor: dtype, row-major shape, pointer. Whoever creates a
// view keeps the memory alive (a MappedFile or an owned buffer in a TensorStore).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace tulu {

struct TensorView {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // row-major, outermost first (PyTorch order)
  const void* data = nullptr;

  int64_t numel() const;
  // Block-aware: the innermost dimension must hold whole blocks (throws tulu::Error if not).
  size_t nbytes() const { return dtype_row_bytes(dtype, static_cast<uint64_t>(numel())); }
  int64_t dim(int i) const { return shape.at(static_cast<size_t>(i)); }
  int rank() const { return static_cast<int>(shape.size()); }
  const float* f32() const { return static_cast<const float*>(data); }
  const uint16_t* u16() const { return static_cast<const uint16_t*>(data); }
};

// "[4096, 11008]"
std::string shape_to_string(const std::vector<int64_t>& shape);

// Converts any view to fp32 values (copy); quantized types are dequantized exactly as ggml.
std::vector<float> to_f32(const TensorView& view);

}  // namespace tulu
