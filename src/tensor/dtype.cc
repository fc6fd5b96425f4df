#include "tensor/dtype.h"

#include "core/error.h"

namespace tulu {

bool dtype_is_quantized(DType dtype) {
  switch (dtype) {
    case DType::F32:
    case DType::F16:
    case DType::BF16: return false;
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_K:
    case DType::Q6_K:
    case DType::Q4_0_R16:
    case DType::Q8_0_R16: return true;
  }
  return false;
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_K:
    case DType::Q6_K:
    case DType::Q4_0_R16:
    case DType::Q8_0_R16: break;
  }
  fail("dtype_size: ", dtype_name(dtype),
       " is block-quantized and has no per-element size (use dtype_row_bytes)");
}

size_t dtype_block_elements(DType dtype) {
  switch (dtype) {
    case DType::F32:
    case DType::F16:
    case DType::BF16: return 1;
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_0_R16:
    case DType::Q8_0_R16: return 32;
    case DType::Q4_K:
    case DType::Q6_K: return 256;
  }
  return 1;
}

size_t dtype_block_bytes(DType dtype) {
  switch (dtype) {
    case DType::F32:
    case DType::F16:
    case DType::BF16: return dtype_size(dtype);
    case DType::Q8_0:
    case DType::Q8_0_R16: return 2 + 32;
    case DType::Q4_0:
    case DType::Q4_0_R16: return 2 + 16;
    case DType::Q4_K: return 2 + 2 + 12 + 128;
    case DType::Q6_K: return 128 + 64 + 16 + 2;
  }
  return 0;
}

size_t dtype_row_bytes(DType dtype, uint64_t n) {
  const uint64_t block = dtype_block_elements(dtype);
  TULU_CHECK(n % block == 0, dtype_name(dtype), ": ", n,
             " elements is not a whole number of blocks of ", block);
  uint64_t bytes = 0;
  TULU_CHECK(!__builtin_mul_overflow(n / block, uint64_t{dtype_block_bytes(dtype)}, &bytes),
             dtype_name(dtype), ": byte size of ", n, " elements overflows");
  TULU_CHECK(bytes <= SIZE_MAX, dtype_name(dtype), ": byte size of ", n, " elements overflows");
  return static_cast<size_t>(bytes);
}

size_t dtype_alignment(DType dtype) { return dtype_is_quantized(dtype) ? 2 : dtype_size(dtype); }

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_0: return "Q4_0";
    case DType::Q4_K: return "Q4_K";
    case DType::Q6_K: return "Q6_K";
    case DType::Q4_0_R16: return "Q4_0_R16";
    case DType::Q8_0_R16: return "Q8_0_R16";
  }
  return "?";
}

bool parse_dtype(std::string_view name, DType* out) {
  if (name == "F32") *out = DType::F32;
  else if (name == "F16") *out = DType::F16;
  else if (name == "BF16") *out = DType::BF16;
  else return false;
  return true;
}

bool parse_any_dtype(std::string_view name, DType* out) {
  if (parse_dtype(name, out)) return true;
  if (name == "Q8_0") *out = DType::Q8_0;
  else if (name == "Q4_0") *out = DType::Q4_0;
  else if (name == "Q4_K") *out = DType::Q4_K;
  else if (name == "Q6_K") *out = DType::Q6_K;
  else return false;
  return true;
}

}  // namespace tulu
