// A restricted unpickler for the data.pkl of a torch.save'd state dict. It is a small stack
// machine that understands only the opcodes torch.save emits for a {name: tensor} dict
// (protocols 2–4) and only these globals:
//   collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter,
//   torch.FloatStorage / HalfStorage / BFloat16Storage.
// Nothing is ever executed: a global is a name, REDUCE on an allowed name builds a record.
// Any other opcode or global is refused with an error naming the file, the opcode (or the
// global) and its byte offset.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tensor/dtype.h"

namespace tulu {

// One tensor of the state dict: a strided view of a storage (a zip entry data/<key>).
struct PickledTensor {
  std::string storage_key;  // entry "<archive>/data/<storage_key>"
  DType dtype = DType::F32;
  int64_t storage_numel = 0;  // elements in the storage, from the persistent id
  int64_t storage_offset = 0;  // in elements
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;  // in elements
};

// Parses data.pkl; returns the state dict's entries in file order. `source` names the file
// in errors. Throws tulu::Error for anything outside the accepted subset, for a top-level
// object that is not a dict of string → tensor, and for malformed input.
std::vector<std::pair<std::string, PickledTensor>> unpickle_state_dict(std::string_view pickle,
                                                                        const std::string& source);

}  // namespace tulu
