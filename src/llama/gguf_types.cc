#include "llama/gguf_types.h"

#include "core/error.h"

namespace tulu {

namespace {

// ggml.c's type_traits: name, block size, type size. Codes 4, 5 (removed Q4_2/Q4_3) and
// 31–33 (removed Q4_0_4_4...) are not defined.
struct GgmlTypeEntry {
  uint32_t code;
  GgmlTypeInfo info;
};
constexpr GgmlTypeEntry kGgmlTypes[] = {
    {0, {"F32", 1, 4}},         {1, {"F16", 1, 2}},         {2, {"Q4_0", 32, 18}},
    {3, {"Q4_1", 32, 20}},      {6, {"Q5_0", 32, 22}},      {7, {"Q5_1", 32, 24}},
    {8, {"Q8_0", 32, 34}},      {9, {"Q8_1", 32, 36}},      {10, {"Q2_K", 256, 84}},
    {11, {"Q3_K", 256, 110}},   {12, {"Q4_K", 256, 144}},   {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}},   {15, {"Q8_K", 256, 292}},   {16, {"IQ2_XXS", 256, 66}},
    {17, {"IQ2_XS", 256, 74}},  {18, {"IQ3_XXS", 256, 98}}, {19, {"IQ1_S", 256, 50}},
    {20, {"IQ4_NL", 32, 18}},   {21, {"IQ3_S", 256, 110}},  {22, {"IQ2_S", 256, 82}},
    {23, {"IQ4_XS", 256, 136}}, {24, {"I8", 1, 1}},         {25, {"I16", 1, 2}},
    {26, {"I32", 1, 4}},        {27, {"I64", 1, 8}},        {28, {"F64", 1, 8}},
    {29, {"IQ1_M", 256, 56}},   {30, {"BF16", 1, 2}},       {34, {"TQ1_0", 256, 54}},
    {35, {"TQ2_0", 256, 66}},
};

}  // namespace

std::string gguf_value_type_name(uint32_t code) {
  static const char* const names[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                      "int32",  "float32", "bool",   "string", "array",
                                      "uint64", "int64",   "float64"};
  if (code < sizeof(names) / sizeof(names[0])) return names[code];
  return str_cat("type ", code);
}

bool gguf_value_type_known(uint32_t code) {
  return code <= static_cast<uint32_t>(GgufValueType::Float64);
}

std::optional<GgmlTypeInfo> ggml_type_info(uint32_t code) {
  for (const auto& entry : kGgmlTypes) {
    if (entry.code == code) return entry.info;
  }
  return std::nullopt;
}

std::string ggml_type_label(uint32_t code) {
  const auto info = ggml_type_info(code);
  return str_cat(info ? info->name : "unknown", " (", code, ")");
}

std::optional<DType> dtype_from_ggml(uint32_t code) {
  DType dtype;
  const auto info = ggml_type_info(code);
  if (info && parse_any_dtype(info->name, &dtype)) return dtype;
  return std::nullopt;
}

uint32_t ggml_from_dtype(DType dtype) {
  const std::string_view name = dtype_name(dtype);
  for (const auto& entry : kGgmlTypes) {
    if (name == entry.info.name) return entry.code;
  }
  fail("dtype ", name, " has no ggml type");
}

}  // namespace tulu
