#include "llama/gguf_writer.h"

#include <algorithm>
#include <cstring>
#include <ostream>

#include "core/error.h"
#include "core/file_io.h"
#include "llama/gguf_types.h"

namespace tulu {

namespace {

constexpr uint64_t kAlignment = 32;

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // little-endian targets
  out.append(bytes, sizeof(T));
}
void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}
uint32_t code(GgufValueType t) {
  return static_cast<uint32_t>(t);
}
uint64_t align_up(uint64_t n) {
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

// The encoding of a value without its type code (arrays: element type, count, elements).
void put_value(std::string& out, const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::Uint8:
      put<uint8_t>(out, static_cast<uint8_t>(v.u));
      break;
    case GgufValueType::Uint16:
      put<uint16_t>(out, static_cast<uint16_t>(v.u));
      break;
    case GgufValueType::Uint32:
      put<uint32_t>(out, static_cast<uint32_t>(v.u));
      break;
    case GgufValueType::Uint64:
      put<uint64_t>(out, v.u);
      break;
    case GgufValueType::Int8:
      put<int8_t>(out, static_cast<int8_t>(v.i));
      break;
    case GgufValueType::Int16:
      put<int16_t>(out, static_cast<int16_t>(v.i));
      break;
    case GgufValueType::Int32:
      put<int32_t>(out, static_cast<int32_t>(v.i));
      break;
    case GgufValueType::Int64:
      put<int64_t>(out, v.i);
      break;
    case GgufValueType::Float32:
      put<float>(out, static_cast<float>(v.f));
      break;
    case GgufValueType::Float64:
      put<double>(out, v.f);
      break;
    case GgufValueType::Bool:
      put<uint8_t>(out, v.b ? 1 : 0);
      break;
    case GgufValueType::String:
      put_string(out, v.s);
      break;
    case GgufValueType::Array:
      put<uint32_t>(out, code(v.array_type));
      put<uint64_t>(out, v.array.size());
      for (const auto& e : v.array) put_value(out, e);
      break;
  }
}

}  // namespace

void GgufWriter::add_key(const std::string& key, uint32_t type, const std::string& encoded) {
  TULU_CHECK(std::find(keys_.begin(), keys_.end(), key) == keys_.end(), "GGUF metadata key '", key,
             "' set twice");
  keys_.push_back(key);
  put_string(metadata_, key);
  put<uint32_t>(metadata_, type);
  metadata_ += encoded;
}

void GgufWriter::set_uint32(const std::string& key, uint32_t value) {
  std::string e;
  put(e, value);
  add_key(key, code(GgufValueType::Uint32), e);
}
void GgufWriter::set_int32(const std::string& key, int32_t value) {
  std::string e;
  put(e, value);
  add_key(key, code(GgufValueType::Int32), e);
}
void GgufWriter::set_float32(const std::string& key, float value) {
  std::string e;
  put(e, value);
  add_key(key, code(GgufValueType::Float32), e);
}
void GgufWriter::set_bool(const std::string& key, bool value) {
  std::string e;
  put<uint8_t>(e, value ? 1 : 0);
  add_key(key, code(GgufValueType::Bool), e);
}
void GgufWriter::set_string(const std::string& key, const std::string& value) {
  std::string e;
  put_string(e, value);
  add_key(key, code(GgufValueType::String), e);
}
void GgufWriter::set_string_array(const std::string& key, const std::vector<std::string>& values) {
  std::string e;
  put<uint32_t>(e, code(GgufValueType::String));
  put<uint64_t>(e, values.size());
  for (const auto& v : values) put_string(e, v);
  add_key(key, code(GgufValueType::Array), e);
}
void GgufWriter::set_float32_array(const std::string& key, const std::vector<float>& values) {
  std::string e;
  put<uint32_t>(e, code(GgufValueType::Float32));
  put<uint64_t>(e, values.size());
  for (float v : values) put(e, v);
  add_key(key, code(GgufValueType::Array), e);
}
void GgufWriter::set_int32_array(const std::string& key, const std::vector<int32_t>& values) {
  std::string e;
  put<uint32_t>(e, code(GgufValueType::Int32));
  put<uint64_t>(e, values.size());
  for (int32_t v : values) put(e, v);
  add_key(key, code(GgufValueType::Array), e);
}

void GgufWriter::set_value(const std::string& key, const GgufValue& value) {
  std::string e;
  put_value(e, value);
  add_key(key, code(value.type), e);
}

void GgufWriter::add_tensor(const std::string& name, DType dtype,
                            const std::vector<int64_t>& shape) {
  for (const auto& t : tensors_) TULU_CHECK(t.name != name, "GGUF tensor '", name, "' added twice");
  TULU_CHECK(!shape.empty() && shape.size() <= 4, "GGUF tensor '", name, "': rank ", shape.size(),
             " (must be 1..4)");
  const auto info = ggml_type_info(ggml_from_dtype(dtype));
  uint64_t numel = 1;
  for (int64_t d : shape) {
    TULU_CHECK(d > 0, "GGUF tensor '", name, "': dimension ", d, " is not positive");
    numel *= static_cast<uint64_t>(d);
  }
  TULU_CHECK(static_cast<uint64_t>(shape.back()) % info->block_elements == 0, "GGUF tensor '", name,
             "': innermost dimension ", shape.back(), " is not a multiple of the ", info->name,
             " block size ", info->block_elements);
  tensors_.push_back({name, dtype, shape, numel / info->block_elements * info->block_bytes});
}

void GgufWriter::write(const std::string& path, const Fill& fill,
                       const std::function<void(size_t)>& progress) const {
  std::string header;
  put<uint32_t>(header, 0x46554747);  // "GGUF"
  put<uint32_t>(header, 3);
  put<uint64_t>(header, tensors_.size());
  put<uint64_t>(header, keys_.size());
  header += metadata_;
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_string(header, t.name);
    put<uint32_t>(header, static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it)
      put<uint64_t>(header, static_cast<uint64_t>(*it));
    put<uint32_t>(header, ggml_from_dtype(t.dtype));
    put<uint64_t>(header, offset);
    offset = align_up(offset + t.nbytes);
  }
  header.resize(align_up(header.size()), '\0');

  write_file_atomic(path, [&](std::ostream& out) {
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    std::vector<char> buffer;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const uint64_t padded = align_up(tensors_[i].nbytes);
      buffer.assign(padded, '\0');
      fill(i, buffer.data());
      out.write(buffer.data(), static_cast<std::streamsize>(padded));
      TULU_CHECK(out.good(), path, ": write failed at tensor '", tensors_[i].name, "'");
      if (progress) progress(i);
    }
  });
}

}  // namespace tulu
