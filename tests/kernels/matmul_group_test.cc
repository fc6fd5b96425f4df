// matmul_group (matmul.h): several products of one x in one pool dispatch must give exactly
// the values of one matmul() per output, bit for bit, for every weight dtype, on the fused
// decode paths (rows 1, and 1–3 for Q8_0/Q4_0) and on the per-output fallbacks (prompt
// batches, mixed dtypes, forced generic kernels), with outputs of sizes that put pool chunk
// boundaries inside and across weights, and 1–3 threads.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <optional>
#include <vector>

#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "quant_test_util.h"
#include "tensor/quant_blocks.h"

namespace tulu {
namespace {

// A weight [out, in] of any dtype: scalar ones through StoredMatrix, Q8_0/Q4_0 quantized
// from block-scaled normals.
struct GroupWeight {
  std::vector<uint8_t> quantized;
  std::optional<testing::StoredMatrix> stored;
  TensorView view;

  GroupWeight(DType dtype, int64_t out, int64_t in, uint32_t seed) {
    if (!dtype_is_quantized(dtype)) {
      stored.emplace(dtype, out, in, 0, seed);
      view = stored->view;
      return;
    }
    const std::vector<float> values =
        quant_test::scaled_normals(static_cast<size_t>(out * in), seed);
    quantized.resize(dtype_row_bytes(dtype, static_cast<uint64_t>(out * in)));
    encode_row(values.data(), values.size(), dtype, quantized.data());
    view = TensorView{dtype, {out, in}, quantized.data()};
  }
};

// Runs matmul_group over weights of the given dtypes and output sizes, then one matmul()
// per weight, and requires identical bits (NaN-filled outputs catch unwritten elements).
void check_group(const std::vector<DType>& dtypes, const std::vector<int64_t>& outs, int64_t in,
                 int64_t rows, ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dtypes[0]) << " rows=" << rows << " in=" << in
                                    << " threads=" << pool.num_threads());
  std::vector<GroupWeight> weights;
  for (size_t i = 0; i < outs.size(); ++i)
    weights.emplace_back(dtypes[i], outs[i], in, static_cast<uint32_t>(31 + i));
  const std::vector<float> x = quant_test::scaled_normals(static_cast<size_t>(rows * in), 7);
  std::vector<std::vector<float>> grouped, single;
  std::vector<MatmulOutput> outputs;
  for (size_t i = 0; i < outs.size(); ++i) {
    grouped.emplace_back(static_cast<size_t>(rows * outs[i]), NAN);
    single.emplace_back(static_cast<size_t>(rows * outs[i]), NAN);
  }
  for (size_t i = 0; i < outs.size(); ++i) outputs.push_back({&weights[i].view, grouped[i].data()});
  matmul_group(x.data(), rows, outputs, pool);
  for (size_t i = 0; i < outs.size(); ++i)
    matmul(x.data(), rows, weights[i].view, single[i].data(), pool);
  for (size_t i = 0; i < outs.size(); ++i)
    for (size_t j = 0; j < grouped[i].size(); ++j)
      ASSERT_EQ(std::bit_cast<uint32_t>(grouped[i][j]), std::bit_cast<uint32_t>(single[i][j]))
          << "output " << i << " element " << j << ": " << grouped[i][j] << " vs "
          << single[i][j];
}

constexpr DType kEveryDtype[] = {DType::F32, DType::BF16, DType::F16, DType::Q8_0, DType::Q4_0};

TEST(MatmulGroup, EqualsOneMatmulPerOutput) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (DType dtype : kEveryDtype) {
      // q/k/v-like (one large, two small) and gate/up-like groups; sizes not multiples of
      // the 16-row chunk or the 4-row tiles, so chunks straddle weights.
      for (int64_t rows : {1, 2, 3, 4, 9}) {
        check_group({dtype, dtype, dtype}, {70, 21, 5}, 96, rows, pool);
        check_group({dtype, dtype}, {37, 37}, 160, rows, pool);
        check_group({dtype}, {45}, 64, rows, pool);
      }
    }
  }
}

TEST(MatmulGroup, MixedDtypesAndGenericKernelsFallBack) {
  ThreadPool pool(2);
  for (int64_t rows : {1, 3})
    check_group({DType::Q8_0, DType::Q4_0, DType::F16}, {40, 24, 8}, 64, rows, pool);
  set_force_generic_kernels(true);
  for (DType dtype : kEveryDtype) check_group({dtype, dtype}, {19, 33}, 64, 1, pool);
  set_force_generic_kernels(false);
}

}  // namespace
}  // namespace tulu
