// TrainModel's internal consistency (its agreement with PyTorch autograd is
// tests/py/test_train_parity.py): activation checkpointing changes nothing, a packed batch equals
// its sequences one by one, thread counts agree, evaluate equals the training forward's loss,
// gradients accumulate linearly in the loss scale, and bad ids/labels are refused.
#include "train/train_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/cross_entropy.h"
#include "llama/random_init.h"

namespace tulu {
namespace {

LlamaConfig small_config(bool tied, int kv_heads) {
  LlamaConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 72;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.head_dim = 8;
  c.vocab_size = 97;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = tied;
  return c;
}

std::vector<float> random_params(const ParamLayout& layout, uint64_t seed) {
  std::vector<float> values(layout.total());
  SplitMix64 rng(seed);
  for (const ParamEntry& e : layout.entries()) {
    const double scale = e.shape.size() == 1 ? 0.1 : 1.0 / std::sqrt(static_cast<double>(e.shape.back()));
    for (size_t i = 0; i < e.numel; ++i) {
      const double base = e.shape.size() == 1 ? 1.0 : 0.0;
      values[e.offset + i] = static_cast<float>(base + scale * rng.normal());
    }
  }
  return values;
}

struct Batch {
  std::vector<std::vector<int>> ids, labels;
  std::vector<TrainSequence> sequences() const {
    std::vector<TrainSequence> out;
    for (size_t i = 0; i < ids.size(); ++i) out.push_back({ids[i], labels[i]});
    return out;
  }
};

Batch random_batch(const std::vector<int>& lengths, int vocab, uint64_t seed) {
  Batch b;
  SplitMix64 rng(seed);
  for (int length : lengths) {
    std::vector<int> ids, labels;
    for (int t = 0; t < length; ++t) {
      const int id = static_cast<int>(rng.next() % static_cast<uint64_t>(vocab));
      ids.push_back(id);
      labels.push_back(rng.next() % 4 == 0 ? kIgnoreIndex : id);
    }
    b.ids.push_back(ids);
    b.labels.push_back(labels);
  }
  return b;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
  return worst;
}

double max_abs(const std::vector<float>& a) {
  double worst = 0;
  for (float v : a) worst = std::max(worst, std::fabs(double(v)));
  return worst;
}

TEST(TrainModel, CheckpointingGivesIdenticalGradients) {
  for (bool tied : {false, true}) {
    const LlamaConfig c = small_config(tied, 2);
    const ParamLayout layout(c, DType::F32);
    const std::vector<float> params = random_params(layout, 7);
    const Batch batch = random_batch({9, 17, 4}, c.vocab_size, 3);
    ThreadPool pool(2);
    std::vector<float> plain(layout.total()), checkpointed(layout.total());
    TrainModel a(c, layout, pool, false), b(c, layout, pool, true);
    const LossStats sa = a.forward_backward(batch.sequences(), params.data(), plain.data(), 0.1f);
    const LossStats sb = b.forward_backward(batch.sequences(), params.data(), checkpointed.data(), 0.1f);
    EXPECT_EQ(sa.loss_sum, sb.loss_sum);
    EXPECT_EQ(sa.tokens, sb.tokens);
    EXPECT_EQ(plain, checkpointed) << "tied " << tied;
    EXPECT_GT(max_abs(plain), 1e-4);
  }
}

TEST(TrainModel, PackedBatchEqualsSequencesOneByOne) {
  const LlamaConfig c = small_config(false, 1);
  const ParamLayout layout(c, DType::F32);
  const std::vector<float> params = random_params(layout, 11);
  const Batch batch = random_batch({5, 1, 23, 12}, c.vocab_size, 5);
  ThreadPool pool(3);
  TrainModel model(c, layout, pool, false);
  std::vector<float> packed(layout.total()), separate(layout.total());
  const std::vector<TrainSequence> sequences = batch.sequences();
  const LossStats all = model.forward_backward(sequences, params.data(), packed.data(), 1.0f);
  double loss_sum = 0;
  int64_t tokens = 0;
  for (const TrainSequence& s : sequences) {
    const LossStats one = model.forward_backward({&s, 1}, params.data(), separate.data(), 1.0f);
    EXPECT_EQ(one.tokens, count_target_tokens(s));
    loss_sum += one.loss_sum;
    tokens += one.tokens;
  }
  EXPECT_EQ(all.tokens, tokens);
  EXPECT_NEAR(all.loss_sum, loss_sum, 1e-4 * std::fabs(loss_sum));
  EXPECT_LE(max_abs_diff(packed, separate), 2e-5 * max_abs(packed));
}

TEST(TrainModel, ThreadCountsAgreeAndEvaluateMatches) {
  const LlamaConfig c = small_config(true, 4);
  const ParamLayout layout(c, DType::F32);
  const std::vector<float> params = random_params(layout, 13);
  const Batch batch = random_batch({31, 8}, c.vocab_size, 9);
  std::vector<std::vector<float>> grads;
  std::vector<LossStats> stats;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    TrainModel model(c, layout, pool, false);
    grads.emplace_back(layout.total());
    stats.push_back(model.forward_backward(batch.sequences(), params.data(), grads.back().data(), 1.0f));
    const LossStats eval = model.evaluate(batch.sequences(), params.data());
    EXPECT_NEAR(eval.loss_sum, stats.back().loss_sum, 1e-6 * std::fabs(eval.loss_sum));
    EXPECT_EQ(eval.tokens, stats.back().tokens);
    EXPECT_EQ(eval.correct, stats.back().correct);
  }
  for (size_t i = 1; i < grads.size(); ++i) {
    EXPECT_LE(max_abs_diff(grads[0], grads[i]), 1e-5 * max_abs(grads[0]));
    EXPECT_NEAR(stats[0].loss_sum, stats[i].loss_sum, 1e-5 * std::fabs(stats[0].loss_sum));
  }
}

TEST(TrainModel, GradientsAccumulateAndScale) {
  const LlamaConfig c = small_config(false, 2);
  const ParamLayout layout(c, DType::F32);
  const std::vector<float> params = random_params(layout, 17);
  const Batch batch = random_batch({10, 6}, c.vocab_size, 21);
  ThreadPool pool(2);
  TrainModel model(c, layout, pool, false);
  std::vector<float> once(layout.total()), twice(layout.total());
  model.forward_backward(batch.sequences(), params.data(), once.data(), 2.0f);
  model.forward_backward(batch.sequences(), params.data(), twice.data(), 1.0f);
  model.forward_backward(batch.sequences(), params.data(), twice.data(), 1.0f);
  EXPECT_LE(max_abs_diff(once, twice), 1e-5 * max_abs(once));
}

TEST(TrainModel, RefusesBadIdsAndLabels) {
  const LlamaConfig c = small_config(false, 2);
  const ParamLayout layout(c, DType::F32);
  const std::vector<float> params = random_params(layout, 1);
  ThreadPool pool(1);
  TrainModel model(c, layout, pool, false);
  std::vector<float> grads(layout.total());
  const std::vector<int> ok_ids{1, 2, 3}, bad_ids{1, 97, 3}, labels{1, 2, 3}, bad_labels{1, -5, 3},
      short_labels{1, 2};
  const auto message = [&](const std::vector<int>& ids, const std::vector<int>& l) {
    const TrainSequence s{ids, l};
    try {
      model.forward_backward({&s, 1}, params.data(), grads.data(), 1.0f);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(bad_ids, labels).find("token id 97"), std::string::npos);
  EXPECT_NE(message(ok_ids, bad_labels).find("label -5"), std::string::npos);
  EXPECT_NE(message(ok_ids, short_labels).find("labels"), std::string::npos);
  EXPECT_NE(message({}, {}).find("empty"), std::string::npos);
}

TEST(TrainModel, LogProbsMatchTheLossAndWeightedBackwardMatchesPerSequenceGradients) {
  for (bool checkpoint : {false, true}) {
    const LlamaConfig c = small_config(true, 2);
    const ParamLayout layout(c, DType::F32);
    const std::vector<float> params = random_params(layout, 23);
    const Batch batch = random_batch({12, 7, 19}, c.vocab_size, 31);
    const std::vector<TrainSequence> sequences = batch.sequences();
    ThreadPool pool(2);
    TrainModel model(c, layout, pool, checkpoint);
    const std::vector<double> weights{0.7, -1.3, 0.25};
    std::vector<float> expected(layout.total()), got(layout.total());
    for (size_t s = 0; s < sequences.size(); ++s) {
      // forward_backward adds scale · ∂(Σ cross-entropy) = −scale · ∂ logp.
      const LossStats one = model.forward_backward({&sequences[s], 1}, params.data(), expected.data(),
                                                   static_cast<float>(-weights[s]));
      const std::vector<SequenceLogProb> lp =
          model.forward_logprobs({&sequences[s], 1}, params.data(), false);
      EXPECT_NEAR(lp[0].logp_sum, -one.loss_sum, 1e-6 * one.loss_sum);
      EXPECT_EQ(lp[0].tokens, one.tokens);
      EXPECT_EQ(lp[0].correct, one.correct);
    }
    const std::vector<SequenceLogProb> all = model.forward_logprobs(sequences, params.data(), true);
    ASSERT_EQ(all.size(), 3u);
    for (size_t s = 0; s < all.size(); ++s) EXPECT_EQ(all[s].tokens, count_target_tokens(sequences[s]));
    model.backward_logprobs(weights, params.data(), got.data());
    EXPECT_LE(max_abs_diff(expected, got), 2e-5 * max_abs(expected)) << "checkpoint " << checkpoint;
    // A second backward without a new forward is refused.
    EXPECT_THROW(model.backward_logprobs(weights, params.data(), got.data()), Error);
  }
}

TEST(TrainModel, MeanLogitIsTheAverageOverVocabularyOfCountedRows) {
  LlamaConfig c = small_config(false, 2);
  c.num_hidden_layers = 1;
  const ParamLayout layout(c, DType::F32);
  std::vector<float> params = random_params(layout, 5);
  const ParamEntry& head = layout.at("lm_head.weight");
  const auto hidden = static_cast<size_t>(c.hidden_size);
  const Batch batch = random_batch({9, 4}, c.vocab_size, 2);
  ThreadPool pool(1);
  TrainModel model(c, layout, pool, false);
  const auto mean_logits = [&]() {
    const auto lp = model.forward_logprobs(batch.sequences(), params.data(), false);
    return std::vector<double>{lp[0].logits_sum, lp[1].logits_sum};
  };
  // lm_head rows centred (Σ_v W[v, :] = 0): every row's mean logit is 0.
  for (size_t j = 0; j < hidden; ++j) {
    double mean = 0;
    for (size_t v = 0; v < 97; ++v) mean += params[head.offset + v * hidden + j];
    mean /= 97;
    for (size_t v = 0; v < 97; ++v) params[head.offset + v * hidden + j] -= static_cast<float>(mean);
  }
  for (double m : mean_logits()) EXPECT_NEAR(m, 0.0, 1e-5);
  // Adding u to every row adds u · x to every logit, hence to the mean logit: linear in u.
  for (size_t v = 0; v < 97; ++v) params[head.offset + v * hidden + 3] += 0.5f;
  const std::vector<double> once = mean_logits();
  for (size_t v = 0; v < 97; ++v) params[head.offset + v * hidden + 3] += 0.5f;
  const std::vector<double> twice = mean_logits();
  for (size_t s = 0; s < 2; ++s) {
    EXPECT_GT(std::fabs(once[s]), 1e-3);
    EXPECT_NEAR(twice[s], 2 * once[s], 1e-4 * std::fabs(once[s]));
  }
}

}  // namespace
}  // namespace tulu
