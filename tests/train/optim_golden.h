// Test helper: the PyTorch goldens of tests/data/optim/golden.json (written by
// tests/reference/make_optim_golden.py) and small utilities shared by the optimizer tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "llama/config.h"

namespace tulu::optim_test {

inline const Json& golden() {
  static const Json json = read_json_file(std::string(TULU_TEST_DATA) + "/optim/golden.json");
  return json;
}

// A float32 list written with 9 significant digits: exact after the double → float cast.
inline std::vector<float> floats(const Json& list) {
  std::vector<float> out;
  out.reserve(list.size());
  for (const Json& v : list) out.push_back(static_cast<float>(v.get<double>()));
  return out;
}

inline LlamaConfig config_from(const Json& fields) {
  return parse_llama_config(fields, "golden config");
}

// Elements where |got − want| > rel · max(|want|, floor); reports the first few by name.
inline size_t count_mismatches(const std::vector<float>& got, const std::vector<float>& want,
                               double rel, double floor, const std::string& what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const double tol = rel * std::max(std::fabs(static_cast<double>(want[i])), floor);
    if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= tol)) {
      if (bad < 5)
        ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", torch " << want[i];
      ++bad;
    }
  }
  return bad;
}

// Norm-wise per parameter: |got − want| ≤ rel · max |want| over the parameter's elements
// (the layout's entries). Used where torch's gradient norm enters (clipping): its fp32
// accumulation differs from ours by ~1e-7 relative, which scales whole gradients, so the
// error is proportional to the tensor's magnitude, not to each (possibly cancelled) element.
inline size_t count_mismatches_normwise(const std::vector<float>& got,
                                        const std::vector<float>& want,
                                        const std::vector<std::pair<size_t, size_t>>& ranges,
                                        double rel, const std::string& what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  if (got.size() != want.size()) return 1;
  size_t bad = 0;
  for (const auto& [begin, end] : ranges) {
    double scale = 0;
    for (size_t i = begin; i < end; ++i)
      scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
    for (size_t i = begin; i < end; ++i) {
      if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= rel * scale)) {
        if (bad < 5) {
          ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", torch " << want[i]
                        << " (tensor max " << scale << ")";
        }
        ++bad;
      }
    }
  }
  return bad;
}

inline size_t count_bit_equal(const std::vector<float>& got, const std::vector<float>& want) {
  size_t same = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) same += got[i] == want[i];
  return same;
}

}  // namespace tulu::optim_test
