// The sampler against Hugging Face's logits processors in PyTorch
// (tests/reference/hf_sampling.py, run with /usr/bin/python3): for many random logits,
// histories and parameter combinations, the distribution the draw is made from must agree
// in every probability and in the set of surviving tokens; greedy's choice must equal
// argmax after the repetition penalty.
// Bounds: the processed scores are float32 in both; the final softmax of HF's processed
// scores is compared in float64 (≤ 1e-6: it tests the filters and the softmax, not float32
// rounding) and as torch evaluates it in float32 (≤ 1e-5: torch's float32 sum over 32000
// ids is off by up to ~3e-6 from the exact value).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/json.h"
#include "generate/sampler.h"

namespace tulu {
namespace {

struct Case {
  std::vector<float> logits;
  std::vector<int> history;
  SamplingParams params;
};

// Logits of several shapes: broad normal, peaked, and coarsely quantised (many exact ties,
// including ties at the top-k boundary).
std::vector<float> random_logits(std::mt19937& rng, int vocab, int kind) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> scale_dist(0.5f, 6.0f);
  const float scale = scale_dist(rng);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (float& x : logits) x = normal(rng) * scale;
  if (kind == 1) {  // one or two dominant tokens
    std::uniform_int_distribution<int> pick(0, vocab - 1);
    logits[static_cast<size_t>(pick(rng))] += 4.0f * scale;
    logits[static_cast<size_t>(pick(rng))] += 3.0f * scale;
  } else if (kind == 2) {  // quantised: ties everywhere
    for (float& x : logits) x = std::round(x * 2.0f) / 2.0f;
  }
  return logits;
}

std::vector<Case> make_cases() {
  std::mt19937 rng(20240601);
  const std::vector<int> vocabs = {1, 2, 3, 7, 50, 257, 1000, 4096};
  const std::vector<double> temperatures = {0.0, 0.25, 0.7, 1.0, 1.0, 1.6};
  const std::vector<int> top_ks = {0, 0, 1, 2, 5, 40, 100000};
  const std::vector<double> top_ps = {1.0, 1.0, 0.999, 0.95, 0.8, 0.5, 0.1};
  const std::vector<double> min_ps = {0.0, 0.0, 0.01, 0.05, 0.3};
  const std::vector<double> penalties = {1.0, 1.0, 1.1, 1.3, 0.8, 2.0};
  auto pick = [&](const auto& values) {
    std::uniform_int_distribution<size_t> index(0, values.size() - 1);
    return values[index(rng)];
  };
  std::vector<Case> cases;
  for (int i = 0; i < 600; ++i) {
    Case c;
    const int vocab = i < 8 ? 32000 : pick(vocabs);  // a few at Llama's vocabulary size
    c.logits = random_logits(rng, vocab, i % 3);
    std::uniform_int_distribution<int> length(0, 40), id(0, vocab - 1);
    const int history_length = length(rng);
    for (int j = 0; j < history_length; ++j) c.history.push_back(id(rng));
    c.params.temperature = pick(temperatures);
    c.params.top_k = pick(top_ks);
    // Ties in the top-p ordering depend on the sort's tie order, which torch does not
    // promise: quantised logits are tested with top-k, min-p and the penalty only.
    c.params.top_p = i % 3 == 2 ? 1.0 : pick(top_ps);
    c.params.min_p = pick(min_ps);
    c.params.repetition_penalty = pick(penalties);
    c.params.seed = static_cast<uint64_t>(i);
    cases.push_back(std::move(c));
  }
  return cases;
}

std::string run_reference(const std::vector<Case>& cases) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("tulu_sampler_ref_" + std::to_string(getpid()));
  fs::create_directories(dir);
  Json input = Json::array();
  for (const Case& c : cases) {
    input.push_back({{"logits", c.logits},
                     {"history", c.history},
                     {"temperature", c.params.temperature},
                     {"top_k", c.params.top_k},
                     {"top_p", c.params.top_p},
                     {"min_p", c.params.min_p},
                     {"repetition_penalty", c.params.repetition_penalty}});
  }
  const std::string in_path = (dir / "cases.json").string();
  const std::string out_path = (dir / "reference.json").string();
  write_file_atomic(in_path, input.dump());
  const std::string command = "/usr/bin/python3 '" TULU_SOURCE_DIR
                              "/tests/reference/hf_sampling.py' '" +
                              in_path + "' '" + out_path + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  std::string output;
  char buffer[512];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  EXPECT_EQ(status, 0) << "reference script failed: " << command << "\n" << output;
  std::string text = file_exists(out_path) ? read_text_file(out_path) : "";
  fs::remove_all(dir);
  return text;
}

constexpr double kUnderflow = 1e-35;

TEST(SamplerReference, DistributionsMatchHuggingFaceProcessors) {
  const std::vector<Case> cases = make_cases();
  const std::string text = run_reference(cases);
  ASSERT_FALSE(text.empty());
  const Json reference = parse_json(text, "hf_sampling.py output");
  ASSERT_EQ(reference.size(), cases.size());

  double max_delta = 0.0, max_delta_f32 = 0.0;
  size_t worst_case = 0, support_mismatches = 0, greedy_cases = 0, sampled_cases = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::vector<float> logits = c.logits;
    Sampler sampler(c.params);
    if (c.params.temperature == 0.0) {
      ++greedy_cases;
      EXPECT_EQ(sampler.sample(logits, c.history), reference[i]["argmax"].get<int>())
          << "case " << i;
      continue;
    }
    ++sampled_cases;
    const auto& expected = reference[i]["probs64"];
    const auto& expected_f32 = reference[i]["probs"];
    std::vector<double> ours(c.logits.size(), 0.0);
    for (const TokenProb& t : sampler.distribution(logits, c.history)) {
      ours[static_cast<size_t>(t.id)] = t.prob;
    }
    for (size_t id = 0; id < ours.size(); ++id) {
      const double theirs = expected[id].get<double>();
      const double delta = std::fabs(ours[id] - theirs);
      max_delta_f32 = std::max(max_delta_f32, std::fabs(ours[id] - expected_f32[id].get<double>()));
      if (delta > max_delta) {
        max_delta = delta;
        worst_case = i;
      }
      // A token kept by one side and filtered by the other; below 1e-35 a probability is
      // lost to float32 underflow in torch's softmax, not to a filter.
      if ((ours[id] > kUnderflow && theirs == 0.0) || (theirs > kUnderflow && ours[id] == 0.0)) {
        ++support_mismatches;
        ADD_FAILURE() << "case " << i << " id " << id << ": ours " << ours[id] << ", HF "
                      << theirs << " (T=" << c.params.temperature << " k=" << c.params.top_k
                      << " p=" << c.params.top_p << " min_p=" << c.params.min_p
                      << " rp=" << c.params.repetition_penalty << ")";
      }
    }
  }
  std::printf("sampler vs HF processors: %zu sampled + %zu greedy cases, max |dp| = %.3g "
              "(case %zu; vs torch's float32 softmax %.3g), support mismatches %zu\n",
              sampled_cases, greedy_cases, max_delta, worst_case, max_delta_f32,
              support_mismatches);
  EXPECT_LE(max_delta, 1e-6) << "worst case " << worst_case;
  EXPECT_LE(max_delta_f32, 1e-5);
  EXPECT_EQ(support_mismatches, 0u);
}

}  // namespace
}  // namespace tulu
