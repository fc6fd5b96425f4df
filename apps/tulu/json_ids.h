// Token-id lists as JSON arrays, for the commands that print encoded data (sft-data, dpo-data).
#pragma once

#include <string>
#include <vector>

namespace tulu::cli {

// Appends "[id,id,...]" (no spaces) to `out`.
inline void append_json_ids(std::string& out, const std::vector<int>& ids) {
  out += '[';
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(ids[i]);
  }
  out += ']';
}

}  // namespace tulu::cli
