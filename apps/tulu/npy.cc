#include "npy.h"

#include <bit>

#include "core/error.h"
#include "core/file_io.h"

namespace tulu::cli {

static_assert(std::endian::native == std::endian::little,
              "the .npy writer emits the host's bytes as '<f4'");

std::string npy_header(const std::string& descr, const std::vector<int64_t>& shape) {
  std::string dims;  // "()", "(3,)", "(3, 4)"
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic (6) + version (2) + length (2) + dict + '\n' is a multiple of 64.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  TULU_CHECK(dict.size() <= 0xffff, ".npy header too long for format 1.0 (", dict.size(),
             " bytes)");
  std::string header = "\x93NUMPY";
  header += '\x01';
  header += '\x00';
  header += static_cast<char>(dict.size() & 0xff);
  header += static_cast<char>(dict.size() >> 8);
  return header + dict;
}

void write_npy_f32(const std::string& path, const std::vector<float>& values,
                   const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  TULU_CHECK(count >= 0 && static_cast<size_t>(count) == values.size(), path, ": array of ",
             values.size(), " values does not have shape ", shape.size(), "-d with ", count,
             " elements");
  std::string bytes = npy_header("<f4", shape);
  bytes.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  write_file_atomic(path, bytes);
}

}  // namespace tulu::cli
