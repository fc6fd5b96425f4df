// safetensors writer: header with __metadata__ first and tensors in the given order, padded
// with spaces so the data buffer starts 8-aligned; written atomically.
#include <cstring>
#include <memory>

#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"
#include "llama/checkpoint.h"

namespace tulu {

namespace {

uint64_t byte_size(const TensorSpecToWrite& t, const std::string& path) {
  uint64_t n = dtype_size(t.dtype);
  for (int64_t d : t.shape) {
    TULU_CHECK(d >= 0, path, ": tensor '", t.name, "' has a negative dimension");
    TULU_CHECK(!__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n), path, ": tensor '", t.name, "' is too large");
  }
  return n;
}

}  // namespace

void write_safetensors_streamed(const std::string& path, const std::vector<TensorSpecToWrite>& tensors,
                                const FillTensor& fill,
                                const std::vector<std::pair<std::string, std::string>>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0, largest = 0;
  for (const auto& t : tensors) {
    TULU_CHECK(!t.name.empty() && t.name != "__metadata__", path, ": invalid tensor name '", t.name, "'");
    TULU_CHECK(!header.contains(t.name), path, ": tensor '", t.name, "' given twice");
    const uint64_t nbytes = byte_size(t, path);
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    largest = std::max(largest, nbytes);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  write_file_atomic(path, [&](std::ostream& out) {
    uint8_t length[8];
    const uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(length), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    // One buffer reused for every tensor (float-aligned for fill functions that write floats).
    std::unique_ptr<float[]> buffer(new float[largest / sizeof(float) + 1]);
    for (size_t i = 0; i < tensors.size(); ++i) {
      fill(i, buffer.get());
      out.write(reinterpret_cast<const char*>(buffer.get()), static_cast<std::streamsize>(byte_size(tensors[i], path)));
    }
  });
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::vector<TensorSpecToWrite> specs;
  for (const auto& t : tensors) {
    specs.push_back({t.name, t.dtype, t.shape});
    TULU_CHECK(t.data != nullptr || byte_size(specs.back(), path) == 0, path, ": tensor '", t.name, "' has no data");
  }
  write_safetensors_streamed(
      path, specs,
      [&](size_t i, void* out) {
        const uint64_t n = byte_size(specs[i], path);
        if (n != 0) std::memcpy(out, tensors[i].data, n);
      },
      metadata);
}

}  // namespace tulu
