// The scalar block codecs (tensor/quant_blocks.h) against tests/reference/ggml_quants.py,
// an independent numpy restatement of ggml's reference quantizers / dequantizers (run with
// /usr/bin/python3): quantized bytes must be identical, dequantized values bit-identical
// (NaN where both are NaN). Rows cover random scales, all-zero blocks, ties of |x| with
// opposite signs, exact halves (roundf's away-from-zero case), huge and tiny magnitudes.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/file_io.h"
#include "tensor/half.h"
#include "tensor/quant_blocks.h"

namespace tulu {
namespace {

namespace fs = std::filesystem;

std::vector<float> special_rows() {
  std::mt19937 gen(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-12.0f, 12.0f);
  std::vector<float> rows;
  auto block = [&](auto value) {
    for (int j = 0; j < 32; ++j) rows.push_back(value(j));
  };
  for (int b = 0; b < 400; ++b) {  // random blocks, scales 1e-12 .. 1e12
    const float scale = std::pow(10.0f, exponent(gen));
    block([&](int) { return scale * normal(gen); });
  }
  block([](int) { return 0.0f; });                                      // all zero
  block([](int j) { return j == 5 ? -0.0f : 0.0f; });                   // signed zeros
  block([](int j) { return j == 3 ? 2.0f : j == 9 ? -2.0f : 0.5f; });   // tie: +max first
  block([](int j) { return j == 3 ? -2.0f : j == 9 ? 2.0f : 0.25f; });  // tie: −max first
  block([](int j) { return static_cast<float>(j) - 15.5f; });           // halves after scaling
  block([](int j) { return j == 0 ? 127.0f : static_cast<float>(j % 8) + 0.5f; });  // d = 1
  block([](int j) { return j == 0 ? -8.0f : static_cast<float>(j % 16) * 0.5f - 4.0f; });
  block([](int j) { return j == 31 ? 1e30f : 1.0f; });          // huge: f16(d) = inf
  block([](int j) { return j % 2 ? 3e-30f : -1e-30f; });        // tiny: f16(d) = 0
  block([](int j) { return j == 7 ? 1e-3f : 0.0f; });           // one non-zero
  block([&](int) { return 65504.0f * 100.0f * normal(gen); });  // near f16 overflow of d
  return rows;
}

template <typename Block>
std::vector<uint8_t> random_k_blocks(size_t count, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.0f, 0.05f);
  std::vector<Block> blocks(count);
  for (Block& b : blocks) {
    auto* raw = reinterpret_cast<uint8_t*>(&b);
    for (size_t i = 0; i < sizeof(Block); ++i) raw[i] = static_cast<uint8_t>(byte(gen));
    b.d = f32_to_f16(scale(gen));
    if constexpr (requires { b.dmin; }) b.dmin = f32_to_f16(scale(gen));
  }
  std::vector<uint8_t> bytes(count * sizeof(Block));
  std::memcpy(bytes.data(), blocks.data(), bytes.size());
  return bytes;
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  const std::string text = read_text_file(path.string());
  return std::vector<uint8_t>(text.begin(), text.end());
}

std::vector<float> read_floats(const fs::path& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

void write_bytes(const fs::path& path, const void* data, size_t n) {
  write_file_atomic(path.string(), std::string(static_cast<const char*>(data), n));
}

// Counts elements whose bits differ (NaN matches NaN); reports the first.
size_t count_mismatches(const std::vector<float>& got, const std::vector<float>& want,
                        const char* what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const bool same = std::bit_cast<uint32_t>(got[i]) == std::bit_cast<uint32_t>(want[i]) ||
                      (std::isnan(got[i]) && std::isnan(want[i]));
    if (!same && bad++ == 0)
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", reference " << want[i];
  }
  return bad;
}

TEST(QuantReference, CodecsMatchGgmlQuantsPy) {
  const fs::path dir = fs::temp_directory_path() / ("tulu_quant_ref_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::vector<float> rows = special_rows();
  const std::vector<uint8_t> q4_k = random_k_blocks<BlockQ4_K>(64, 7);
  const std::vector<uint8_t> q6_k = random_k_blocks<BlockQ6_K>(64, 8);
  write_bytes(dir / "rows.f32", rows.data(), rows.size() * sizeof(float));
  write_bytes(dir / "q4_k.bin", q4_k.data(), q4_k.size());
  write_bytes(dir / "q6_k.bin", q6_k.data(), q6_k.size());
  const std::string command = "/usr/bin/python3 '" TULU_SOURCE_DIR
                              "/tests/reference/ggml_quants.py' '" +
                              dir.string() + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  ASSERT_EQ(pclose(pipe), 0) << command << "\n" << output;

  const size_t n = rows.size(), blocks = n / kQuantBlock;
  std::vector<BlockQ8_0> q8(blocks);
  std::vector<BlockQ4_0> q4(blocks);
  quantize_row_q8_0_ref(rows.data(), q8.data(), n);
  quantize_row_q4_0_ref(rows.data(), q4.data(), n);
  const std::vector<uint8_t> want_q8 = read_bytes(dir / "q8_0.bin");
  const std::vector<uint8_t> want_q4 = read_bytes(dir / "q4_0.bin");
  ASSERT_EQ(want_q8.size(), blocks * sizeof(BlockQ8_0));
  ASSERT_EQ(want_q4.size(), blocks * sizeof(BlockQ4_0));
  size_t bad_blocks = 0;
  for (size_t b = 0; b < blocks; ++b) {
    const bool q8_same =
        std::memcmp(&q8[b], want_q8.data() + b * sizeof(BlockQ8_0), sizeof(BlockQ8_0)) == 0;
    const bool q4_same =
        std::memcmp(&q4[b], want_q4.data() + b * sizeof(BlockQ4_0), sizeof(BlockQ4_0)) == 0;
    EXPECT_TRUE(q8_same) << "Q8_0 block " << b << " differs from ggml_quants.py";
    EXPECT_TRUE(q4_same) << "Q4_0 block " << b << " differs from ggml_quants.py";
    bad_blocks += !q8_same + !q4_same;
  }
  std::printf("quantized %zu blocks to Q8_0 and Q4_0: %zu differ from ggml_quants.py\n", blocks,
              bad_blocks);

  struct Case {
    const char* name;
    DType dtype;
    const void* data;
    size_t elements;
  };
  const Case cases[] = {
      {"q8_0", DType::Q8_0, q8.data(), n},
      {"q4_0", DType::Q4_0, q4.data(), n},
      {"q4_k", DType::Q4_K, q4_k.data(), q4_k.size() / sizeof(BlockQ4_K) * kSuperBlock},
      {"q6_k", DType::Q6_K, q6_k.data(), q6_k.size() / sizeof(BlockQ6_K) * kSuperBlock},
  };
  for (const Case& c : cases) {
    std::vector<float> got(c.elements);
    dequantize_row(c.data, c.dtype, c.elements, got.data());
    const size_t bad =
        count_mismatches(got, read_floats(dir / (std::string(c.name) + ".deq.f32")), c.name);
    EXPECT_EQ(bad, 0u);
    // dequantize_element (the per-element reference the scalar matmul uses) agrees too.
    size_t element_bad = 0;
    for (size_t i = 0; i < c.elements; i += 37)
      element_bad += std::bit_cast<uint32_t>(dequantize_element(c.data, c.dtype, i)) !=
                         std::bit_cast<uint32_t>(got[i]) &&
                     !std::isnan(got[i]);
    EXPECT_EQ(element_bad, 0u) << c.name;
    std::printf("dequantized %zu %s elements: %zu differ from ggml_quants.py\n", c.elements, c.name,
                bad);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tulu
