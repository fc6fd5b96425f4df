// NumPy .npy files (format version 1.0), for handing arrays to Python tests and tools:
// magic "\x93NUMPY", version 1.0, a little-endian uint16 header length, then a Python dict
// literal {'descr', 'fortran_order', 'shape'} padded with spaces to a 64-byte boundary and
// ended by '\n', then the raw C-order data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tulu::cli {

// The header for an array of `descr` ('<f4', '<f2', '<u2', ...) with this shape.
std::string npy_header(const std::string& descr, const std::vector<int64_t>& shape);

// Writes float32 values ('<f4', C order) of the given shape atomically (temporary file,
// rename). values.size() must equal the product of shape (checked: tulu::Error).
void write_npy_f32(const std::string& path, const std::vector<float>& values,
                   const std::vector<int64_t>& shape);

}  // namespace tulu::cli
