// K-quant integer dot products (kernels/quant_dot_k.h): the Q8_K activation quantizer's
// rules, ggml_quants.py's transcription of quantize_row_q8_K_ref and the generic
// vec_dot_q{4,6}_K_q8_K (bit for bit), the SIMD dots against the scalar references on every
// path this CPU has, the references against the float dot of the dequantized operands, and
// matmul() on Q4_K / Q6_K weights. TULU_KQUANT_BENCH=1 adds a single-thread benchmark of
// the integer path against the previous dequantize-to-fp32 path.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/error.h"
#include "core/file_io.h"
#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/quant_dot_k.h"
#include "tensor/half.h"
#include "tensor/quant_blocks.h"

namespace tulu {
namespace {

namespace fs = std::filesystem;

const QuantPath kPaths[] = {QuantPath::kVnni, QuantPath::kAvx2, QuantPath::kGeneric};

// Blocks of 256 normals with a random scale 10^[−4, 3] each; some blocks all zero.
std::vector<float> activations(size_t blocks, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-4.0f, 3.0f);
  std::vector<float> v(blocks * kSuperBlock);
  for (size_t b = 0; b < blocks; ++b) {
    const float scale = b % 11 == 5 ? 0.0f : std::pow(10.0f, exponent(gen));
    for (size_t j = 0; j < kSuperBlock; ++j) v[b * kSuperBlock + j] = scale * normal(gen);
  }
  return v;
}

// Random K-quant blocks: every byte random (all 6-bit scales/mins, all quants, negative
// Q6_K scales), f16 super-block scales finite of either sign. `extreme` blocks hold the
// largest magnitudes instead (nibbles 15, scales/mins 63; Q6_K quants 0 (−32) and scales
// −128), where an int16 saturation or overflow in a SIMD path would show.
template <typename Block>
std::vector<Block> k_blocks(size_t count, uint32_t seed, bool extreme = false) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  std::vector<Block> blocks(count);
  for (Block& b : blocks) {
    auto* raw = reinterpret_cast<uint8_t*>(&b);
    for (size_t i = 0; i < sizeof(Block); ++i) raw[i] = static_cast<uint8_t>(gen());
    if constexpr (requires { b.dmin; }) {
      if (extreme) {
        std::memset(b.scales, 0xFF, sizeof(b.scales));
        std::memset(b.qs, 0xFF, sizeof(b.qs));
      }
      b.dmin = f32_to_f16(scale(gen));
    } else if (extreme) {
      std::memset(b.ql, 0, sizeof(b.ql));
      std::memset(b.qh, 0, sizeof(b.qh));
      std::memset(b.scales, 0x80, sizeof(b.scales));
    }
    b.d = f32_to_f16(scale(gen));
  }
  return blocks;
}

std::vector<BlockQ8_K> quantize_q8_k(const std::vector<float>& x) {
  std::vector<BlockQ8_K> q(x.size() / kSuperBlock);
  quantize_row_q8_K_ref(x.data(), q.data(), x.size());
  return q;
}

// Σ_i (|w-terms_i|)·|x̂_i| over the dequantized operands, with w-terms the parts of the
// dequantized weight before they are summed (Q4_K: |d·sc·q| + |dmin·m|; Q6_K: |d·sc·(q−32)|):
// T of quant_dot_k.h up to rounding. ref and fast lie within (blocks + 16)·2⁻²⁴·T of the
// exact sum (quant_dot_k.h); the fp32 dequantization of the weights (≤ 3 roundings) and the
// product d_w·d_x add 4·2⁻²⁴·T, so (blocks + 20)·2⁻²⁴·T bounds |ref − Σ ŵ_i·x̂_i| (double)
// and twice that |fast − ref|.
struct Exact {
  double sum = 0.0, magnitude = 0.0;
};
Exact exact_dot(const BlockQ4_K* w, const BlockQ8_K* x, size_t blocks) {
  Exact e;
  for (size_t b = 0; b < blocks; ++b) {
    float wv[kSuperBlock], xv[kSuperBlock];
    dequantize_row(&w[b], DType::Q4_K, kSuperBlock, wv);
    dequantize_row_q8_K(&x[b], kSuperBlock, xv);
    for (size_t i = 0; i < kSuperBlock; ++i) {
      uint8_t sc = 0, m = 0;
      q4_k_scale_min(static_cast<int>(i / 32), w[b].scales, &sc, &m);
      const int pair = static_cast<int>(i / 64), high = (i / 32) % 2;
      const int q = high ? w[b].qs[32 * pair + i % 32] >> 4 : w[b].qs[32 * pair + i % 32] & 15;
      e.sum += static_cast<double>(wv[i]) * xv[i];
      e.magnitude += (std::fabs(static_cast<double>(f16_to_f32(w[b].d)) * sc * q) +
                      std::fabs(static_cast<double>(f16_to_f32(w[b].dmin)) * m)) *
                     std::fabs(xv[i]);
    }
  }
  return e;
}
Exact exact_dot(const BlockQ6_K* w, const BlockQ8_K* x, size_t blocks) {
  Exact e;
  for (size_t b = 0; b < blocks; ++b) {
    float wv[kSuperBlock], xv[kSuperBlock];
    dequantize_row(&w[b], DType::Q6_K, kSuperBlock, wv);
    dequantize_row_q8_K(&x[b], kSuperBlock, xv);
    for (size_t i = 0; i < kSuperBlock; ++i) {
      e.sum += static_cast<double>(wv[i]) * xv[i];
      e.magnitude += std::fabs(static_cast<double>(wv[i]) * xv[i]);
    }
  }
  return e;
}
double dot_bound(const Exact& e, size_t blocks) {
  return static_cast<double>(blocks + 20) * 0x1p-24 * e.magnitude + 1e-35;
}

TEST(QuantizeQ8K, SignRoundingAndSums) {
  // Largest |x| is positive (127): iscale = −1, so d = −1 and q = −x rounded half to even.
  std::vector<float> x(kSuperBlock, 0.0f);
  x[3] = 127.0f;
  x[4] = 2.5f;      // → −2 (half to even)
  x[5] = 3.5f;      // → −4
  x[6] = -0.5f;     // → 0
  x[7] = -126.6f;   // → 127
  x[20] = -127.0f;  // a tie of |x| with opposite sign: the first one (x[3]) sets the sign
  BlockQ8_K q[1];
  quantize_row_q8_K_ref(x.data(), q, kSuperBlock);
  EXPECT_EQ(q[0].d, -1.0f);
  EXPECT_EQ(q[0].qs[3], -127);
  EXPECT_EQ(q[0].qs[4], -2);
  EXPECT_EQ(q[0].qs[5], -4);
  EXPECT_EQ(q[0].qs[6], 0);
  EXPECT_EQ(q[0].qs[7], 127);
  EXPECT_EQ(q[0].qs[20], 127);
  EXPECT_EQ(q[0].bsums[0], -127 - 2 - 4 + 127);
  EXPECT_EQ(q[0].bsums[1], 127);
  for (int k = 2; k < 16; ++k) EXPECT_EQ(q[0].bsums[k], 0);
  // All zero (and −0): d = 0, everything zero.
  std::vector<float> zeros(2 * kSuperBlock, 0.0f);
  zeros[9] = -0.0f;
  BlockQ8_K z[2];
  std::memset(z, 0x55, sizeof(z));
  quantize_row_q8_K_ref(zeros.data(), z, zeros.size());
  for (const BlockQ8_K& b : z) {
    EXPECT_EQ(b.d, 0.0f);
    for (int8_t v : b.qs) EXPECT_EQ(v, 0);
    for (int16_t s : b.bsums) EXPECT_EQ(s, 0);
  }
}

// |x − q·d| ≤ |d|/2 (plus the rounding of x·iscale and of the product), |q| ≤ 127, the
// first largest |x| maps to −127, bsums are the sums of 16 quants.
TEST(QuantizeQ8K, RoundTripWithinHalfAStep) {
  const std::vector<float> x = activations(300, 1);
  const std::vector<BlockQ8_K> q = quantize_q8_k(x);
  std::vector<float> back(x.size());
  dequantize_row_q8_K(q.data(), x.size(), back.data());
  double worst = 0.0;
  for (size_t b = 0; b < q.size(); ++b) {
    const double d = std::fabs(static_cast<double>(q[b].d));
    size_t first_max = 0;
    for (size_t j = 0; j < kSuperBlock; ++j)
      if (std::fabs(x[b * kSuperBlock + j]) > std::fabs(x[b * kSuperBlock + first_max]))
        first_max = j;
    if (d != 0) {
      EXPECT_EQ(q[b].qs[first_max], -127) << "block " << b;
    }
    for (size_t j = 0; j < kSuperBlock; ++j) {
      const size_t i = b * kSuperBlock + j;
      ASSERT_LE(std::abs(q[b].qs[j]), 127);
      const double err = std::fabs(static_cast<double>(x[i]) - back[i]);
      ASSERT_LE(err, d * (0.5 + 0x1p-16) + 0x1p-23 * std::fabs(back[i])) << "element " << i;
      if (d > 0) worst = std::max(worst, err / d);
    }
    for (size_t k = 0; k < 16; ++k) {
      int sum = 0;
      for (size_t j = 0; j < 16; ++j) sum += q[b].qs[16 * k + j];
      ASSERT_EQ(q[b].bsums[k], sum);
    }
  }
  std::printf("Q8_K round trip: max |x − x̂| / |d| = %.4f (bound 0.5)\n", worst);
}

TEST(QuantDotK, FastMatchesScalarReferenceOnEveryPath) {
  for (QuantPath path : kPaths) {
    set_quant_dot_path_limit(path);
    SCOPED_TRACE("path " + quant_dot_target_name());
    double worst = 0.0;
    for (size_t blocks : {1u, 2u, 3u, 8u, 22u}) {
      for (bool extreme : {false, true}) {
        const auto seed = static_cast<uint32_t>(blocks * 2 + extreme);
        const std::vector<BlockQ4_K> w4 = k_blocks<BlockQ4_K>(blocks, seed, extreme);
        const std::vector<BlockQ6_K> w6 = k_blocks<BlockQ6_K>(blocks, seed + 50, extreme);
        std::vector<float> xf = activations(blocks, seed + 100);
        if (extreme)  // |q| = 127 everywhere, signs alternating in runs
          for (size_t i = 0; i < xf.size(); ++i) xf[i] = (i / 3) % 2 ? 1.0f : -1.0f;
        const std::vector<BlockQ8_K> x = quantize_q8_k(xf);
        const float f4 = vec_dot_q4_K_q8_K(w4.data(), x.data(), blocks);
        const float r4 = vec_dot_q4_K_q8_K_ref(w4.data(), x.data(), blocks);
        const float f6 = vec_dot_q6_K_q8_K(w6.data(), x.data(), blocks);
        const float r6 = vec_dot_q6_K_q8_K_ref(w6.data(), x.data(), blocks);
        const Exact e4 = exact_dot(w4.data(), x.data(), blocks);
        const Exact e6 = exact_dot(w6.data(), x.data(), blocks);
        const double b4 = 2 * dot_bound(e4, blocks), b6 = 2 * dot_bound(e6, blocks);
        const double d4 = std::fabs(static_cast<double>(f4) - r4);
        const double d6 = std::fabs(static_cast<double>(f6) - r6);
        EXPECT_LE(d4, b4) << "Q4_K blocks=" << blocks << " extreme=" << extreme;
        EXPECT_LE(d6, b6) << "Q6_K blocks=" << blocks << " extreme=" << extreme;
        if (path == QuantPath::kGeneric) {
          EXPECT_EQ(std::bit_cast<uint32_t>(f4), std::bit_cast<uint32_t>(r4));
          EXPECT_EQ(std::bit_cast<uint32_t>(f6), std::bit_cast<uint32_t>(r6));
        }
        worst = std::max({worst, d4 / b4, d6 / b6});
      }
    }
    std::printf("%s K-quant dots: worst |fast − ref| = %.3g of the bound\n",
                quant_dot_target_name().c_str(), worst);
  }
  set_quant_dot_path_limit(QuantPath::kVnni);
}

// The reference against Σ ŵ·x̂ in double over the dequantized weights (dequantize_row,
// itself checked against ggml_quants.py) and the dequantized Q8_K activations: the integer
// formulation (sub-block scales, mins via bsums, the −32 of Q6_K) is the same sum.
TEST(QuantDotK, ReferenceEqualsDotOfDequantizedOperands) {
  double worst = 0.0;
  for (size_t blocks : {1u, 4u, 8u, 22u}) {
    for (bool extreme : {false, true}) {
      const auto seed = static_cast<uint32_t>(blocks * 7 + extreme);
      const std::vector<BlockQ4_K> w4 = k_blocks<BlockQ4_K>(blocks, seed, extreme);
      const std::vector<BlockQ6_K> w6 = k_blocks<BlockQ6_K>(blocks, seed + 1, extreme);
      const std::vector<BlockQ8_K> x = quantize_q8_k(activations(blocks, seed + 2));
      const Exact e4 = exact_dot(w4.data(), x.data(), blocks);
      const Exact e6 = exact_dot(w6.data(), x.data(), blocks);
      const double d4 = std::fabs(vec_dot_q4_K_q8_K_ref(w4.data(), x.data(), blocks) - e4.sum);
      const double d6 = std::fabs(vec_dot_q6_K_q8_K_ref(w6.data(), x.data(), blocks) - e6.sum);
      EXPECT_LE(d4, dot_bound(e4, blocks)) << "Q4_K blocks=" << blocks;
      EXPECT_LE(d6, dot_bound(e6, blocks)) << "Q6_K blocks=" << blocks;
      worst = std::max({worst, d4 / dot_bound(e4, blocks), d6 / dot_bound(e6, blocks)});
    }
  }
  std::printf("K-quant reference vs dequantized dot: worst %.3g of the bound\n", worst);
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  const std::string text = read_text_file(path.string());
  return std::vector<uint8_t>(text.begin(), text.end());
}

void write_bytes(const fs::path& path, const void* data, size_t n) {
  write_file_atomic(path.string(), std::string(static_cast<const char*>(data), n));
}

// quantize_row_q8_K_ref and the generic dots bit for bit against ggml_quants.py (an
// independent numpy transcription, /usr/bin/python3).
TEST(QuantDotK, MatchesGgmlQuantsPy) {
  const fs::path dir = fs::temp_directory_path() / ("tulu_quant_dot_k_" + std::to_string(getpid()));
  fs::create_directories(dir);
  constexpr size_t kBlocks = 24;
  std::vector<float> rows = activations(kBlocks, 5);
  for (size_t j = 0; j < kSuperBlock; ++j)  // exact halves after scaling: ties to even
    rows[j] = j == 0 ? 127.0f : static_cast<float>(j % 16) - 7.5f;
  for (size_t j = 0; j < kSuperBlock; ++j)  // negative max
    rows[kSuperBlock + j] = j == 9 ? -1e-3f : 1e-4f * static_cast<float>(j % 7);
  const std::vector<BlockQ4_K> w4 = k_blocks<BlockQ4_K>(kBlocks, 6);
  const std::vector<BlockQ6_K> w6 = k_blocks<BlockQ6_K>(kBlocks, 7);
  write_bytes(dir / "rows.f32", rows.data(), rows.size() * sizeof(float));
  write_bytes(dir / "q4_k.bin", w4.data(), w4.size() * sizeof(BlockQ4_K));
  write_bytes(dir / "q6_k.bin", w6.data(), w6.size() * sizeof(BlockQ6_K));
  const std::string command = "/usr/bin/python3 '" TULU_SOURCE_DIR
                              "/tests/reference/ggml_quants.py' '" +
                              dir.string() + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  ASSERT_EQ(pclose(pipe), 0) << command << "\n" << output;

  const std::vector<BlockQ8_K> x = quantize_q8_k(rows);
  const std::vector<uint8_t> want = read_bytes(dir / "q8_k.bin");
  ASSERT_EQ(want.size(), x.size() * sizeof(BlockQ8_K));
  size_t bad_blocks = 0;
  for (size_t b = 0; b < x.size(); ++b) {
    const bool same =
        std::memcmp(&x[b], want.data() + b * sizeof(BlockQ8_K), sizeof(BlockQ8_K)) == 0;
    EXPECT_TRUE(same) << "Q8_K block " << b << " differs from ggml_quants.py";
    bad_blocks += !same;
  }
  auto check_dots = [&](const char* name, auto dot) {
    const std::vector<uint8_t> bytes = read_bytes(dir / (std::string(name) + "_q8_k.dot.f32"));
    std::vector<float> ref(bytes.size() / sizeof(float));
    std::memcpy(ref.data(), bytes.data(), ref.size() * sizeof(float));
    ASSERT_EQ(ref.size(), kBlocks + 1) << name;
    size_t bad = 0;
    for (size_t i = 0; i <= kBlocks; ++i) {
      const float got = i < kBlocks ? dot(i, 1) : dot(0, kBlocks);
      bad += std::bit_cast<uint32_t>(got) != std::bit_cast<uint32_t>(ref[i]);
      EXPECT_EQ(got, ref[i]) << name << (i < kBlocks ? " block " : " whole row ") << i;
    }
    std::printf("%s · Q8_K: %zu block dots + 1 row dot, %zu differ from ggml_quants.py\n", name,
                kBlocks, bad);
  };
  check_dots("q4_k", [&](size_t first, size_t n) {
    return vec_dot_q4_K_q8_K_ref(w4.data() + first, x.data() + first, n);
  });
  check_dots("q6_k", [&](size_t first, size_t n) {
    return vec_dot_q6_K_q8_K_ref(w6.data() + first, x.data() + first, n);
  });
  std::printf("quantized %zu blocks to Q8_K: %zu differ from ggml_quants.py\n", x.size(),
              bad_blocks);
  fs::remove_all(dir);
}

// A K-quant weight [out, in] of random blocks.
struct KMatrix {
  std::vector<uint8_t> bytes;
  TensorView view;
  KMatrix(DType dtype, int64_t out, int64_t in, uint32_t seed) {
    const auto blocks = static_cast<size_t>(out * in) / kSuperBlock;
    if (dtype == DType::Q4_K) {
      const auto b = k_blocks<BlockQ4_K>(blocks, seed);
      bytes.assign(reinterpret_cast<const uint8_t*>(b.data()),
                   reinterpret_cast<const uint8_t*>(b.data() + b.size()));
    } else {
      const auto b = k_blocks<BlockQ6_K>(blocks, seed);
      bytes.assign(reinterpret_cast<const uint8_t*>(b.data()),
                   reinterpret_cast<const uint8_t*>(b.data() + b.size()));
    }
    view = TensorView{dtype, {out, in}, bytes.data()};
  }
};

// Every output of matmul() is the path's vec_dot on the row's Q8_K quantization, bit for
// bit, for 1 and 2 threads, prefetch on and off, batches of 1, 3 and 17 rows; the generic
// path is the reference dot.
TEST(QuantDotK, MatmulOutputsAreThePathsDots) {
  const int64_t out = 37, in = 768;
  const size_t blocks = static_cast<size_t>(in) / kSuperBlock;
  for (QuantPath path : kPaths) {
    set_quant_dot_path_limit(path);
    SCOPED_TRACE("path " + quant_dot_target_name());
    for (DType dtype : {DType::Q4_K, DType::Q6_K}) {
      const KMatrix w(dtype, out, in, 3);
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        for (int64_t rows : {1, 3, 17}) {
          const std::vector<float> x =
              activations(static_cast<size_t>(rows) * blocks, static_cast<uint32_t>(rows));
          const std::vector<BlockQ8_K> xq = quantize_q8_k(x);
          for (bool prefetch : {true, false}) {
            set_k_quant_prefetch(prefetch);
            std::vector<float> y(static_cast<size_t>(rows * out), NAN);
            matmul(x.data(), rows, w.view, y.data(), pool);
            for (int64_t r = 0; r < rows; ++r) {
              for (int64_t o = 0; o < out; ++o) {
                const BlockQ8_K* xr = xq.data() + static_cast<size_t>(r) * blocks;
                const uint8_t* wr =
                    w.bytes.data() + static_cast<size_t>(o) * dtype_row_bytes(dtype, in);
                const float want =
                    dtype == DType::Q4_K
                        ? vec_dot_q4_K_q8_K(reinterpret_cast<const BlockQ4_K*>(wr), xr, blocks)
                        : vec_dot_q6_K_q8_K(reinterpret_cast<const BlockQ6_K*>(wr), xr, blocks);
                ASSERT_EQ(std::bit_cast<uint32_t>(y[static_cast<size_t>(r * out + o)]),
                          std::bit_cast<uint32_t>(want))
                    << dtype_name(dtype) << " threads=" << threads << " rows=" << rows << " r=" << r
                    << " o=" << o;
              }
            }
          }
        }
      }
    }
  }
  set_k_quant_prefetch(true);
  set_quant_dot_path_limit(QuantPath::kVnni);
}

// The multi-row kernels give each row exactly the single-row result, for 0–9 rows.
TEST(QuantDotK, RowsKernelsEqualSingleRowDots) {
  const size_t blocks = 5;
  const std::vector<BlockQ4_K> w4 = k_blocks<BlockQ4_K>(blocks, 21);
  const std::vector<BlockQ6_K> w6 = k_blocks<BlockQ6_K>(blocks, 22);
  const std::vector<BlockQ8_K> x = quantize_q8_k(activations(9 * blocks, 23));
  for (QuantPath path : kPaths) {
    set_quant_dot_path_limit(path);
    SCOPED_TRACE("path " + quant_dot_target_name());
    for (int rows = 0; rows <= 9; ++rows) {
      std::vector<float> got4(10, NAN), got6(10, NAN);
      vec_dot_q4_K_q8_K_rows(w4.data(), x.data(), blocks, rows, got4.data());
      vec_dot_q6_K_q8_K_rows(w6.data(), x.data(), blocks, rows, got6.data());
      for (int r = 0; r < rows; ++r) {
        const BlockQ8_K* xr = x.data() + static_cast<size_t>(r) * blocks;
        EXPECT_EQ(std::bit_cast<uint32_t>(got4[static_cast<size_t>(r)]),
                  std::bit_cast<uint32_t>(vec_dot_q4_K_q8_K(w4.data(), xr, blocks)))
            << "Q4_K rows=" << rows << " r=" << r;
        EXPECT_EQ(std::bit_cast<uint32_t>(got6[static_cast<size_t>(r)]),
                  std::bit_cast<uint32_t>(vec_dot_q6_K_q8_K(w6.data(), xr, blocks)))
            << "Q6_K rows=" << rows << " r=" << r;
      }
      EXPECT_TRUE(std::isnan(got4[static_cast<size_t>(rows)])) << "wrote past row " << rows;
      EXPECT_TRUE(std::isnan(got6[static_cast<size_t>(rows)])) << "wrote past row " << rows;
    }
  }
  set_quant_dot_path_limit(QuantPath::kVnni);
}

TEST(QuantDotK, RowsThatAreNotWholeSuperBlocksAreAnError) {
  ThreadPool pool(1);
  std::vector<uint8_t> bytes(4096);
  std::vector<float> x(384), y(2);
  for (DType dtype : {DType::Q4_K, DType::Q6_K}) {
    const TensorView w{dtype, {2, 384}, bytes.data()};
    EXPECT_THROW(matmul(x.data(), 1, w, y.data(), pool), Error) << dtype_name(dtype);
    const TensorView w3{dtype, {2, 256, 1}, bytes.data()};
    EXPECT_THROW(matmul_k_quant(x.data(), 1, w3, y.data(), pool), Error) << dtype_name(dtype);
  }
}

// The product before this kernel existed: each weight row dequantized to fp32 once and
// dotted with each fp32 activation row (matvec_rows), one thread.
void matmul_dequantized(const float* x, int64_t rows, const TensorView& w, float* y) {
  const int64_t out = w.dim(0), in = w.dim(1);
  const size_t row_bytes = dtype_row_bytes(w.dtype, static_cast<uint64_t>(in));
  std::vector<float> row(static_cast<size_t>(in));
  const TensorView row_view{DType::F32, {1, in}, row.data()};
  for (int64_t o = 0; o < out; ++o) {
    dequantize_row(static_cast<const uint8_t*>(w.data) + static_cast<size_t>(o) * row_bytes,
                   w.dtype, static_cast<size_t>(in), row.data());
    for (int64_t r = 0; r < rows; ++r) matvec_rows(x + r * in, row_view, 0, 1, y + r * out + o);
  }
}

// Single-thread products with W [5632 × 2048], the variants interleaved in one run (median
// of the rounds): the dequantize path against the integer path (best SIMD path, prefetch on
// and off; AVX2). "warm": the same matrix every time (it stays in L2/L3); "cold": 16
// matrices in turn (104–151 MB, streamed from DRAM as in decoding a real model); "batch 32":
// 32 activation rows, warm. Only with TULU_KQUANT_BENCH=1 (timings need an idle machine).
TEST(QuantDotK, Benchmark) {
  const char* env = std::getenv("TULU_KQUANT_BENCH");
  if (env == nullptr || std::string(env) != "1") GTEST_SKIP() << "set TULU_KQUANT_BENCH=1";
  const int64_t out = 5632, in = 2048, batch = 32;
  constexpr int kColdMatrices = 16, kRounds = 31;
  ThreadPool pool(1);
  const std::vector<float> x = activations(static_cast<size_t>(batch * in) / kSuperBlock, 9);
  std::vector<float> y(static_cast<size_t>(batch * out));
  using Clock = std::chrono::steady_clock;
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (DType dtype : {DType::Q4_K, DType::Q6_K}) {
    std::vector<KMatrix> matrices;
    for (int m = 0; m < kColdMatrices; ++m)
      matrices.emplace_back(dtype, out, in, static_cast<uint32_t>(11 + m));
    struct Variant {
      std::string name;
      QuantPath path;
      bool prefetch, dequantized;
    };
    const Variant variants[] = {{"dequantize+fp32", QuantPath::kVnni, false, true},
                                {"int prefetch", QuantPath::kVnni, true, false},
                                {"int no-prefetch", QuantPath::kVnni, false, false},
                                {"int AVX2 prefetch", QuantPath::kAvx2, true, false}};
    for (const char* mode : {"warm", "cold", "batch 32"}) {
      const bool cold = mode[0] == 'c';
      const int64_t rows = mode[0] == 'b' ? batch : 1;
      std::vector<std::vector<double>> ms(std::size(variants));
      int next = 0;
      for (int round = 0; round < kRounds; ++round) {
        for (size_t v = 0; v < std::size(variants); ++v) {
          const TensorView& w =
              matrices[cold ? static_cast<size_t>(next++ % kColdMatrices) : 0].view;
          set_quant_dot_path_limit(variants[v].path);
          set_k_quant_prefetch(variants[v].prefetch);
          const auto t0 = Clock::now();
          if (variants[v].dequantized)
            matmul_dequantized(x.data(), rows, w, y.data());
          else
            matmul(x.data(), rows, w, y.data(), pool);
          const double t = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
          if (round > 0) ms[v].push_back(t);  // round 0 warms caches and page tables
        }
      }
      const double base = median(ms[0]);
      for (size_t v = 0; v < std::size(variants); ++v) {
        set_quant_dot_path_limit(variants[v].path);
        std::printf("%s [%lld x %lld] x %lld rows, 1 thread, %-8s %-18s (%s): %8.3f ms  x%.2f\n",
                    std::string(dtype_name(dtype)).c_str(), static_cast<long long>(out),
                    static_cast<long long>(in), static_cast<long long>(rows), mode,
                    variants[v].name.c_str(), quant_dot_target_name().c_str(), median(ms[v]),
                    base / median(ms[v]));
      }
    }
  }
  set_k_quant_prefetch(true);
  set_quant_dot_path_limit(QuantPath::kVnni);
}

}  // namespace
}  // namespace tulu
