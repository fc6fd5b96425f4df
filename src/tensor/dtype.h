// Element types of stored weights. Compute is always fp32; F16/BF16 are storage formats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tulu {

enum class DType : uint8_t { F32, F16, BF16 };

size_t dtype_size(DType dtype);
// Names as safetensors spells them: "F32", "F16", "BF16".
std::string_view dtype_name(DType dtype);
// Parses a safetensors dtype name; false if it is not one we compute with.
bool parse_dtype(std::string_view name, DType* out);

}  // namespace tulu
