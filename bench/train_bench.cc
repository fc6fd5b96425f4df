// Training throughput of TrainModel (forward + backward, and forward only) on random fp32
// weights of a Llama shape, for comparison with bench/torch_train_bench.py (PyTorch, same
// shape, same batch). Reports tokens/s (median of the runs after one warm-up), the
// FLOP-based utilisation estimate 6·params·tokens/s (forward+backward) and peak RSS.
// Usage: train_bench [threads] [batch] [seq] [runs] [--checkpoint]
//        [--hidden N --intermediate N --layers N --heads N --kv-heads N --vocab N]
// Defaults: 2 threads, batch 4, seq 512, 3 runs, the 110M shape (hidden 768, intermediate
// 2048, 12 layers, 12 heads, vocab 32000, untied).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cross_entropy.h"
#include "llama/random_init.h"
#include "train/param_set.h"
#include "train/train_model.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> positional;
  bool checkpoint = false;
  tulu::LlamaConfig c;
  c.hidden_size = 768;
  c.intermediate_size = 2048;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.num_key_value_heads = 0;
  c.vocab_size = 32000;
  c.rms_norm_eps = 1e-5;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> int {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return std::atoi(argv[++i]);
    };
    if (arg == "--checkpoint") checkpoint = true;
    else if (arg == "--hidden") c.hidden_size = next();
    else if (arg == "--intermediate") c.intermediate_size = next();
    else if (arg == "--layers") c.num_hidden_layers = next();
    else if (arg == "--heads") c.num_attention_heads = next();
    else if (arg == "--kv-heads") c.num_key_value_heads = next();
    else if (arg == "--vocab") c.vocab_size = next();
    else positional.push_back(std::atoll(arg.c_str()));
  }
  const int threads = positional.size() > 0 ? static_cast<int>(positional[0]) : 2;
  const int64_t batch = positional.size() > 1 ? positional[1] : 4;
  const int64_t seq = positional.size() > 2 ? positional[2] : 512;
  const int runs = positional.size() > 3 ? static_cast<int>(positional[3]) : 3;
  if (c.num_key_value_heads == 0) c.num_key_value_heads = c.num_attention_heads;
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.max_position_embeddings = static_cast<int>(std::max<int64_t>(seq, 2048));
  if (threads < 1 || batch < 1 || seq < 2 || runs < 1) {
    std::fprintf(stderr, "usage: train_bench [threads] [batch] [seq] [runs] [--checkpoint] [shape flags]\n");
    return 2;
  }

  const tulu::ParamLayout layout(c, tulu::DType::F32);
  std::vector<float> params(layout.total()), grads(layout.total());
  tulu::SplitMix64 rng(1);
  for (const tulu::ParamEntry& e : layout.entries()) {
    for (size_t i = 0; i < e.numel; ++i) {
      params[e.offset + i] =
          e.shape.size() == 1 ? 1.0f : static_cast<float>(0.02 * rng.normal());
    }
  }
  std::vector<std::vector<int>> ids(static_cast<size_t>(batch));
  for (auto& row : ids) {
    for (int64_t t = 0; t < seq; ++t) row.push_back(static_cast<int>(rng.next() % 32000 % c.vocab_size));
  }
  std::vector<tulu::TrainSequence> sequences;
  for (const auto& row : ids) sequences.push_back({row, row});  // every position a target

  tulu::ThreadPool pool(threads);
  tulu::TrainModel model(c, layout, pool, checkpoint);
  const double tokens = static_cast<double>(batch * seq);
  std::vector<double> train_s, forward_s;
  for (int r = 0; r <= runs; ++r) {  // run 0 is the warm-up
    auto start = std::chrono::steady_clock::now();
    model.forward_backward(sequences, params.data(), grads.data(), 1.0f / static_cast<float>(tokens));
    const double t = seconds_since(start);
    start = std::chrono::steady_clock::now();
    model.evaluate(sequences, params.data());
    const double f = seconds_since(start);
    if (r > 0) {
      train_s.push_back(t);
      forward_s.push_back(f);
    }
  }
  const double n_params = static_cast<double>(layout.total());
  const double train_tps = tokens / median(train_s), forward_tps = tokens / median(forward_s);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("shape: hidden %d, intermediate %d, layers %d, heads %d/%d, vocab %d, %.1f M params\n",
              c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads,
              c.num_key_value_heads, c.vocab_size, n_params / 1e6);
  std::printf("batch %lld x seq %lld, %d threads, %d runs, activation checkpointing %s\n",
              static_cast<long long>(batch), static_cast<long long>(seq), threads, runs,
              checkpoint ? "on" : "off");
  std::printf("forward+backward: %.1f tokens/s (median %.3f s), %.1f GFLOP/s (6 x params x tokens/s)\n",
              train_tps, median(train_s), 6.0 * n_params * train_tps / 1e9);
  std::printf("forward only:     %.1f tokens/s (median %.3f s)\n", forward_tps, median(forward_s));
  std::printf("peak RSS: %.0f MiB\n", static_cast<double>(usage.ru_maxrss) / 1024.0);
  return 0;
}
