// Training attention (attention_train.h): the double references against attention_ref (the
// forward) and against central differences of attention_ref (the backward: dq, dk, dv); the
// blocked-GEMM paths against the double references on MHA / GQA (kv_heads 1 and 2), seq_len
// 1 to 200 (one to four row blocks, odd tails), head_dim 64 and odd ones, 1–3 threads and
// every Highway target; bit-identical results for every thread count.
#include <algorithm>
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
    SCOPED_TRACE(::testing::Message()
                 << "heads=" << c.shape.heads << " kv_heads=" << c.shape.kv_heads
                 << " head_dim=" << c.shape.head_dim << " seq_len=" << c.seq_len);
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

// The double references for one input set: forward, then the backward from the exact out
// and lse (the fast backward sees its own fp32 ones; the difference, ≲ 1e-6 relative, is
// inside kGradTolerance). Computed once per shape, compared against every target and pool.
struct Expected {
  std::vector<double> out, lse, dq, dk, dv;
};

Expected reference(const Inputs& in, int64_t seq_len, const AttentionShape& shape) {
  const auto q = to_double(in.q), k = to_double(in.k), v = to_double(in.v),
             dout = to_double(in.dout);
  Expected e{std::vector<double>(q.size()),
             std::vector<double>(static_cast<size_t>(shape.heads * seq_len)),
             std::vector<double>(q.size()), std::vector<double>(k.size()),
             std::vector<double>(v.size())};
  attention_train_forward_ref(q.data(), k.data(), v.data(), seq_len, shape, e.out.data(),
                              e.lse.data());
  attention_train_backward_ref(q.data(), k.data(), v.data(), e.out.data(), e.lse.data(),
                               dout.data(), seq_len, shape, e.dq.data(), e.dk.data(), e.dv.data());
  return e;
}

void check_attention_train(const AttentionShape& shape, int64_t seq_len, const Inputs& in,
                           const Expected& e, ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message() << "heads=" << shape.heads << " kv_heads=" << shape.kv_heads
                                    << " head_dim=" << shape.head_dim << " seq_len=" << seq_len
                                    << " threads=" << pool.num_threads());
  const Result r = run_fast(in, seq_len, shape, pool);
  expect_near_all(r.out, e.out, kOutTolerance, "out");
  expect_near_all(r.lse, e.lse, kOutTolerance, "lse");
  expect_near_all(r.dq, e.dq, kGradTolerance, "dq");
  expect_near_all(r.dk, e.dk, kGradTolerance, "dk");
  expect_near_all(r.dv, e.dv, kGradTolerance, "dv");
}

const struct {
  AttentionShape shape;
  int64_t seq_len;
} kShapes[] = {
    {{4, 2, 16}, 5},      // GQA, one short block
    {{4, 4, 8}, 1},       // one position
    {{6, 1, 35}, 70},     // MQA, odd head_dim, a block and a 6-row tail
    {{2, 2, 64}, 130},    // three blocks
    {{4, 2, 64}, 128},    // whole blocks only
    {{3, 3, 24}, 64},     // exactly one block
    {{12, 12, 64}, 200},  // the 110M head layout, four blocks
    {{8, 2, 192}, 33},    // head_dim an odd multiple of 64
};

TEST(AttentionTrain, BlockedGemmsMatchReference) {
  ThreadPool one(1), two(2), three(3);
  for (const auto& c : kShapes) {
    const Inputs in(c.seq_len, c.shape, 21);
    const Expected e = reference(in, c.seq_len, c.shape);
    testing::for_each_target([&] {
      for (ThreadPool* pool : {&one, &two, &three})
        check_attention_train(c.shape, c.seq_len, in, e, *pool);
    });
  }
}

TEST(AttentionTrain, ScalarPath) {
  testing::ForceGeneric generic;
  ThreadPool two(2);
  for (const auto& c : {kShapes[0], kShapes[2]}) {
    const Inputs in(c.seq_len, c.shape, 21);
    check_attention_train(c.shape, c.seq_len, in, reference(in, c.seq_len, c.shape), two);
  }
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

TEST(AttentionTrain, PackedEqualsOneCallPerSequence) {
  const std::vector<int64_t> starts = {0, 5, 5, 70, 71, 200};  // an empty and a 1-row one
  const int64_t total = starts.back();
  for (const AttentionShape& shape : {AttentionShape{4, 2, 16}, AttentionShape{3, 3, 64}}) {
    SCOPED_TRACE(::testing::Message() << "heads=" << shape.heads << " kv_heads=" << shape.kv_heads);
    Inputs in(total, shape, 41);
    ThreadPool three(3);
    Result packed;
    packed.out.assign(in.q.size(), -9.0f);
    packed.lse.assign(static_cast<size_t>(shape.heads * total), -9.0f);
    packed.dq.assign(in.q.size(), -9.0f);
    packed.dk.assign(in.k.size(), -9.0f);
    packed.dv.assign(in.v.size(), -9.0f);
    std::vector<float> scratch(static_cast<size_t>(
        attention_train_packed_scratch_floats(starts, shape, three.num_threads())));
    attention_train_forward_packed(in.q.data(), in.k.data(), in.v.data(), starts, shape,
                                   packed.out.data(), packed.lse.data(), scratch.data(), three);
    attention_train_backward_packed(
        in.q.data(), in.k.data(), in.v.data(), packed.out.data(), packed.lse.data(), in.dout.data(),
        starts, shape, packed.dq.data(), packed.dk.data(), packed.dv.data(), scratch.data(), three);
    Result single = packed;  // same sizes; every element is rewritten below
    for (auto* values : {&single.out, &single.lse, &single.dq, &single.dk, &single.dv})
      std::fill(values->begin(), values->end(), -7.0f);
    const int64_t q_dim = shape.q_dim(), kv_dim = shape.kv_dim();
    for (size_t s = 0; s + 1 < starts.size(); ++s) {
      const int64_t first = starts[s], length = starts[s + 1] - first;
      std::vector<float> one_scratch(
          static_cast<size_t>(attention_train_scratch_floats(length, shape, three.num_threads())));
      attention_train_forward(in.q.data() + first * q_dim, in.k.data() + first * kv_dim,
                              in.v.data() + first * kv_dim, length, shape,
                              single.out.data() + first * q_dim,
                              single.lse.data() + first * shape.heads, one_scratch.data(), three);
      attention_train_backward(in.q.data() + first * q_dim, in.k.data() + first * kv_dim,
                               in.v.data() + first * kv_dim, single.out.data() + first * q_dim,
                               single.lse.data() + first * shape.heads,
                               in.dout.data() + first * q_dim, length, shape,
                               single.dq.data() + first * q_dim, single.dk.data() + first * kv_dim,
                               single.dv.data() + first * kv_dim, one_scratch.data(), three);
    }
    EXPECT_EQ(packed.out, single.out);
    EXPECT_EQ(packed.lse, single.lse);
    EXPECT_EQ(packed.dq, single.dq);
    EXPECT_EQ(packed.dk, single.dk);
    EXPECT_EQ(packed.dv, single.dv);
    // And the packed result is right: sequence 3 (rows 5..69) against the double reference.
    const int64_t first = 5, length = 65;
    auto slice = [](const std::vector<float>& source, int64_t begin, int64_t count) {
      return to_double(std::vector<float>(source.begin() + begin, source.begin() + begin + count));
    };
    const auto q = slice(in.q, first * q_dim, length * q_dim);
    const auto k = slice(in.k, first * kv_dim, length * kv_dim);
    const auto v = slice(in.v, first * kv_dim, length * kv_dim);
    const auto dout = slice(in.dout, first * q_dim, length * q_dim);
    const auto out_fast = slice(packed.out, first * q_dim, length * q_dim);
    const auto lse_fast = slice(packed.lse, first * shape.heads, length * shape.heads);
    std::vector<double> dq(q.size()), dk(k.size()), dv(v.size());
    attention_train_backward_ref(q.data(), k.data(), v.data(), out_fast.data(), lse_fast.data(),
                                 dout.data(), length, shape, dq.data(), dk.data(), dv.data());
    auto fslice = [](const std::vector<float>& source, int64_t begin, int64_t count) {
      return std::vector<float>(source.begin() + begin, source.begin() + begin + count);
    };
    expect_near_all(fslice(packed.dq, first * q_dim, length * q_dim), dq, kGradTolerance, "dq");
    expect_near_all(fslice(packed.dk, first * kv_dim, length * kv_dim), dk, kGradTolerance, "dk");
    expect_near_all(fslice(packed.dv, first * kv_dim, length * kv_dim), dv, kGradTolerance, "dv");
  }
}

TEST(AttentionTrain, PackedStartsAreChecked) {
  ThreadPool one(1);
  std::vector<float> buffer(4096, 0.0f);
  const std::vector<int64_t> backwards = {0, 8, 4};
  EXPECT_THROW(attention_train_forward_packed(buffer.data(), buffer.data(), buffer.data(),
                                              backwards, AttentionShape{2, 1, 4}, buffer.data(),
                                              buffer.data(), buffer.data(), one),
               Error);
  EXPECT_THROW(attention_train_backward_packed(
                   buffer.data(), buffer.data(), buffer.data(), buffer.data(), buffer.data(),
                   buffer.data(), std::vector<int64_t>{}, AttentionShape{2, 1, 4}, buffer.data(),
                   buffer.data(), buffer.data(), buffer.data(), one),
               Error);
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
