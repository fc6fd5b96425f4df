// Training attention (attention_train.h): the double references against attention_ref (the
// forward) and against central differences of attention_ref (the backward: dq, dk, dv); the
// blocked-GEMM paths against the double references on MHA / GQA (kv_heads 1 and 2), seq_len
// 1 to 200 (one to four row blocks, odd tails), head_dim 64 and odd ones, 1–3 threads and
// every Highway target; bit-identical results for every thread count.
#include <cmath>
#include <vector>

#include "core/error.h"
#include "gradient_check_util.h"
#include "kernel_test_util.h"
#include "kernels/attention_ref.h"
#include "kernels/attention_train.h"
#include "kernels/attention_train_ref.h"

namespace tulu {
namespace {

using testing::to_double;

struct Inputs {
  std::vector<float> q, k, v, dout;
  Inputs(int64_t seq_len, const AttentionShape& shape, uint32_t seed) {
    const auto q_size = static_cast<size_t>(seq_len * shape.q_dim());
    const auto kv_size = static_cast<size_t>(seq_len * shape.kv_dim());
    q = testing::random_floats(q_size, seed);
    k = testing::random_floats(kv_size, seed + 1);
    v = testing::random_floats(kv_size, seed + 2);
    dout = testing::random_floats(q_size, seed + 3);
  }
};

TEST(AttentionTrain, ReferenceForwardIsAttention) {
  const AttentionShape shape{6, 2, 5};
  const int64_t seq_len = 9;
  Inputs in(seq_len, shape, 1);
  const auto q = to_double(in.q), k = to_double(in.k), v = to_double(in.v);
  std::vector<double> out(q.size()), lse(static_cast<size_t>(shape.heads * seq_len)),
      expected(q.size());
  attention_train_forward_ref(q.data(), k.data(), v.data(), seq_len, shape, out.data(), lse.data());
  attention_ref(q.data(), seq_len, 0, k.data(), v.data(), shape, expected.data());
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], expected[i], 1e-13) << i;
  // lse of head 1 (kv head 0), row 4: log Σ_{c ≤ 4} exp(q·k_c / sqrt(5)).
  double sum = 0;
  for (int64_t c = 0; c <= 4; ++c) {
    double dot = 0;
    for (int64_t i = 0; i < 5; ++i)
      dot += q[static_cast<size_t>(4 * shape.q_dim() + 5 + i)] *
             k[static_cast<size_t>(c * shape.kv_dim() + i)];
    sum += std::exp(dot / std::sqrt(5.0));
  }
  EXPECT_NEAR(lse[static_cast<size_t>(1 * seq_len + 4)], std::log(sum), 1e-13);
}

TEST(AttentionTrain, ReferenceBackwardMatchesFiniteDifferences) {
  const struct {
    AttentionShape shape;
    int64_t seq_len;
  } cases[] = {{{4, 2, 3}, 5}, {{3, 1, 4}, 4}, {{2, 2, 6}, 3}, {{2, 1, 2}, 1}};
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message() << "heads=" << c.shape.heads << " kv_heads="
                                      << c.shape.kv_heads << " head_dim=" << c.shape.head_dim
                                      << " seq_len=" << c.seq_len);
    Inputs in(c.seq_len, c.shape, 7);
    auto q = to_double(in.q), k = to_double(in.k), v = to_double(in.v);
    const auto dout = to_double(in.dout);
    std::vector<double> out(q.size()), lse(static_cast<size_t>(c.shape.heads * c.seq_len));
    auto loss = [&] {
      attention_ref(q.data(), c.seq_len, 0, k.data(), v.data(), c.shape, out.data());
      return testing::dot(dout, out);
    };
    attention_train_forward_ref(q.data(), k.data(), v.data(), c.seq_len, c.shape, out.data(),
                                lse.data());
    std::vector<double> dq(q.size()), dk(k.size()), dv(v.size());
    attention_train_backward_ref(q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(),
                                 c.seq_len, c.shape, dq.data(), dk.data(), dv.data());
    testing::expect_gradients_match(testing::numeric_gradient(v, loss), dv, "dv");
    if (c.seq_len > 1) {
      testing::expect_gradients_match(testing::numeric_gradient(q, loss), dq, "dq");
      testing::expect_gradients_match(testing::numeric_gradient(k, loss), dk, "dk");
    } else {  // one position: the softmax is constant, dq and dk are exactly 0
      for (double g : dq) EXPECT_EQ(g, 0.0);
      for (double g : dk) EXPECT_EQ(g, 0.0);
    }
  }
}

// Fast fp32 path vs the double reference. Inputs N(0, 1); outputs are convex combinations
// (|out| ≲ 3) and gradients sums of ≤ seq_len·heads/kv_heads terms of O(1): fp32 dot
// products of length head_dim and seq_len give ≲ 1e-5 relative to (1 + |value|) at these
// sizes; kGradTolerance leaves room for the longer dK/dV sums over a GQA group.
constexpr double kOutTolerance = 1e-5;
constexpr double kGradTolerance = 4e-5;

struct Result {
  std::vector<float> out, lse, dq, dk, dv;
};

Result run_fast(const Inputs& in, int64_t seq_len, const AttentionShape& shape, ThreadPool& pool) {
  Result r;
  r.out.assign(in.q.size(), -9.0f);
  r.lse.assign(static_cast<size_t>(shape.heads * seq_len), -9.0f);
  r.dq.assign(in.q.size(), -9.0f);
  r.dk.assign(in.k.size(), -9.0f);  // "overwritten": garbage before must not leak in
  r.dv.assign(in.v.size(), -9.0f);
  std::vector<float> scratch(
      static_cast<size_t>(attention_train_scratch_floats(seq_len, shape, pool.num_threads())),
      std::nanf(""));
  attention_train_forward(in.q.data(), in.k.data(), in.v.data(), seq_len, shape, r.out.data(),
                          r.lse.data(), scratch.data(), pool);
  attention_train_backward(in.q.data(), in.k.data(), in.v.data(), r.out.data(), r.lse.data(),
                           in.dout.data(), seq_len, shape, r.dq.data(), r.dk.data(), r.dv.data(),
                           scratch.data(), pool);
  return r;
}

void expect_near_all(const std::vector<float>& got, const std::vector<double>& expected,
                     double tolerance, const char* name) {
  ASSERT_EQ(got.size(), expected.size()) << name;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], expected[i], tolerance * (1 + std::fabs(expected[i]))) << name << " " << i;
}

void check_attention_train(const AttentionShape& shape, int64_t seq_len, ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message() << "heads=" << shape.heads << " kv_heads=" << shape.kv_heads
                                    << " head_dim=" << shape.head_dim << " seq_len=" << seq_len
                                    << " threads=" << pool.num_threads());
  Inputs in(seq_len, shape, 21);
  const Result r = run_fast(in, seq_len, shape, pool);
  const auto q = to_double(in.q), k = to_double(in.k), v = to_double(in.v),
             dout = to_double(in.dout);
  std::vector<double> out(q.size()), lse(r.lse.size()), dq(q.size()), dk(k.size()), dv(v.size());
  attention_train_forward_ref(q.data(), k.data(), v.data(), seq_len, shape, out.data(), lse.data());
  expect_near_all(r.out, out, kOutTolerance, "out");
  expect_near_all(r.lse, lse, kOutTolerance, "lse");
  // The backward reference from the fast forward's own out and lse (what the kernel sees).
  const auto out_fast = to_double(r.out), lse_fast = to_double(r.lse);
  attention_train_backward_ref(q.data(), k.data(), v.data(), out_fast.data(), lse_fast.data(),
                               dout.data(), seq_len, shape, dq.data(), dk.data(), dv.data());
  expect_near_all(r.dq, dq, kGradTolerance, "dq");
  expect_near_all(r.dk, dk, kGradTolerance, "dk");
  expect_near_all(r.dv, dv, kGradTolerance, "dv");
}

const struct {
  AttentionShape shape;
  int64_t seq_len;
} kShapes[] = {
    {{4, 2, 16}, 5},     // GQA, one short block
    {{4, 4, 8}, 1},      // one position
    {{6, 1, 35}, 70},    // MQA, odd head_dim, a block and a 6-row tail
    {{2, 2, 64}, 130},   // three blocks
    {{4, 2, 64}, 128},   // whole blocks only
    {{3, 3, 24}, 64},    // exactly one block
    {{12, 12, 64}, 200}, // the 110M head layout, four blocks
    {{8, 2, 192}, 33},   // head_dim an odd multiple of 64
};

TEST(AttentionTrain, BlockedGemmsMatchReference) {
  ThreadPool one(1), two(2), three(3);
  testing::for_each_target([&] {
    for (const auto& c : kShapes)
      for (ThreadPool* pool : {&one, &two, &three}) check_attention_train(c.shape, c.seq_len, *pool);
  });
}

TEST(AttentionTrain, ScalarPath) {
  testing::ForceGeneric generic;
  ThreadPool two(2);
  check_attention_train({4, 2, 16}, 9, two);
  check_attention_train({3, 1, 7}, 4, two);
}

TEST(AttentionTrain, SameBitsForEveryThreadCount) {
  for (const AttentionShape& shape : {AttentionShape{4, 1, 32}, AttentionShape{5, 5, 16}}) {
    const int64_t seq_len = 150;
    Inputs in(seq_len, shape, 31);
    ThreadPool one(1);
    const Result reference = run_fast(in, seq_len, shape, one);
    for (int threads : {2, 3}) {
      ThreadPool pool(threads);
      const Result r = run_fast(in, seq_len, shape, pool);
      EXPECT_EQ(r.out, reference.out) << threads;
      EXPECT_EQ(r.lse, reference.lse) << threads;
      EXPECT_EQ(r.dq, reference.dq) << threads;
      EXPECT_EQ(r.dk, reference.dk) << threads;
      EXPECT_EQ(r.dv, reference.dv) << threads;
    }
  }
}

TEST(AttentionTrain, BadShapeIsAnError) {
  ThreadPool one(1);
  std::vector<float> buffer(64, 0.0f);
  EXPECT_THROW(attention_train_forward(buffer.data(), buffer.data(), buffer.data(), 2,
                                       AttentionShape{3, 2, 4}, buffer.data(), buffer.data(),
                                       buffer.data(), one),
               Error);
}

}  // namespace
}  // namespace tulu
