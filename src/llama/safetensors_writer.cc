// safetensors writer: header with __metadata__ first and tensors in the given order, padded
// with spaces so the data buffer starts 8-aligned; written atomically.
#include <cstring>

#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"
#include "llama/checkpoint.h"

namespace tulu {

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    TULU_CHECK(!t.name.empty() && t.name != "__metadata__", path, ": invalid tensor name '", t.name, "'");
    TULU_CHECK(!header.contains(t.name), path, ": tensor '", t.name, "' given twice");
    TensorView view{t.dtype, t.shape, t.data};
    for (int64_t d : t.shape) TULU_CHECK(d >= 0, path, ": tensor '", t.name, "' has a negative dimension");
    const uint64_t nbytes = view.nbytes();
    TULU_CHECK(nbytes == 0 || t.data != nullptr, path, ": tensor '", t.name, "' has no data");
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  write_file_atomic(path, [&](std::ostream& out) {
    uint8_t length[8];
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(length), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : tensors) {
      const TensorView view{t.dtype, t.shape, t.data};
      out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(view.nbytes()));
    }
  });
}

}  // namespace tulu
