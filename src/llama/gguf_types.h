// The type codes of GGUF files: metadata value types and ggml tensor types, with the
// block geometry of every ggml tensor type (so that any file's offsets can be checked) and
// the mapping to our DTypes for the types we compute with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "tensor/dtype.h"

namespace tulu {

enum class GgufValueType : uint32_t {
  Uint8 = 0,
  Int8 = 1,
  Uint16 = 2,
  Int16 = 3,
  Uint32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  Uint64 = 10,
  Int64 = 11,
  Float64 = 12,
};

// "uint32", "string", ... ; "type N" for an unknown code.
std::string gguf_value_type_name(uint32_t code);
bool gguf_value_type_known(uint32_t code);

// ggml_type codes as in ggml.h (GGML_TYPE_F32 = 0 ... GGML_TYPE_BF16 = 30).
inline constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ8_0 = 8, kGgmlQ4_K = 12,
                          kGgmlQ6_K = 14, kGgmlBF16 = 30;

struct GgmlTypeInfo {
  const char* name;  // "Q8_0"
  uint32_t block_elements;
  uint32_t block_bytes;
};

// Geometry of a ggml type, or nullopt for a code ggml does not define.
std::optional<GgmlTypeInfo> ggml_type_info(uint32_t code);
// "Q5_K (13)" or "unknown (99)".
std::string ggml_type_label(uint32_t code);
// Our DType for a ggml type we can compute with, nullopt otherwise.
std::optional<DType> dtype_from_ggml(uint32_t code);
// The ggml code of a DType (every DType has one).
uint32_t ggml_from_dtype(DType dtype);

}  // namespace tulu
