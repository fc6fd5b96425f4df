// Continuous-batching decode speed: tokens/s of one BatchDecoder::decode step over R
// sessions (R = 1, 2, 4, 8, 16 by default), each session already holding a prompt, for a
// model directory and thread count; the ratio to R = 1 is the batching gain that
// `tulu serve` can reach before scheduling and sampling overheads.
// With --kernels, also the per-call time of the few-row matrix product (matvec_multi.h)
// against the sgemm path and against R separate matrix–vector products, for every
// distinct weight shape of the model: the crossover that matmul() uses.
//
// Usage: bench_batch_decode -m MODEL_DIR [-t THREADS] [--rows 1,2,4,8,16] [--steps N]
//                           [--prompt P] [--repeats K] [--kernels]
// Each figure is the median of K repeats of N steps (decode) or N calls (kernels).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/matvec_multi.h"
#include "llama/batch_decode.h"
#include "llama/model.h"
#include "llama/session.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string model_dir;
  int threads = 2;
  std::vector<int> rows = {1, 2, 4, 8, 16};
  int steps = 16;
  int prompt = 32;
  int repeats = 3;
  bool kernels = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "bench_batch_decode: %s\nusage: bench_batch_decode -m MODEL_DIR [-t THREADS] "
               "[--rows 1,2,4,8,16] [--steps N] [--prompt P] [--repeats K] [--kernels]\n",
               why);
  std::exit(2);
}

int positive(const char* text, const char* name) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 1 || v > 100000) usage(name);
  return static_cast<int>(v);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "-m") {
      o.model_dir = value();
    } else if (a == "-t") {
      o.threads = positive(value(), "bad -t");
    } else if (a == "--steps") {
      o.steps = positive(value(), "bad --steps");
    } else if (a == "--prompt") {
      o.prompt = positive(value(), "bad --prompt");
    } else if (a == "--repeats") {
      o.repeats = positive(value(), "bad --repeats");
    } else if (a == "--kernels") {
      o.kernels = true;
    } else if (a == "--rows") {
      o.rows.clear();
      std::string list = value();
      size_t start = 0;
      while (start <= list.size()) {
        const size_t comma = std::min(list.find(',', start), list.size());
        o.rows.push_back(positive(list.substr(start, comma - start).c_str(), "bad --rows"));
        start = comma + 1;
      }
    } else {
      usage(("unknown option " + a).c_str());
    }
  }
  if (o.model_dir.empty()) usage("-m MODEL_DIR is required");
  return o;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename Fn>
double median_seconds(int repeats, Fn fn) {
  std::vector<double> times;
  for (int k = 0; k < repeats; ++k) {
    const auto start = Clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  return median(times);
}

void bench_decode(const tulu::LlamaModel& model, const Options& o, tulu::ThreadPool& pool) {
  const int max_rows = *std::max_element(o.rows.begin(), o.rows.end());
  const int capacity = o.prompt + o.steps * (o.repeats + 1) + 1;
  const int vocab = model.config().vocab_size;
  std::vector<std::unique_ptr<tulu::Session>> sessions;
  std::vector<tulu::Session*> pointers;
  for (int s = 0; s < max_rows; ++s) {
    sessions.push_back(std::make_unique<tulu::Session>(model, capacity, pool));
    pointers.push_back(sessions.back().get());
  }
  tulu::BatchDecoder decoder(model, max_rows, capacity, pool);
  std::printf("%6s %12s %12s %8s\n", "rows", "ms/step", "tokens/s", "vs 1");
  double single = 0;
  for (const int rows : o.rows) {
    std::vector<int> prompt(static_cast<size_t>(o.prompt));
    for (int s = 0; s < rows; ++s) {
      for (int i = 0; i < o.prompt; ++i)
        prompt[static_cast<size_t>(i)] = (7 * i + 13 * s + 1) % vocab;
      sessions[static_cast<size_t>(s)]->reset();
      sessions[static_cast<size_t>(s)]->eval(prompt, false);
    }
    std::vector<int> tokens(static_cast<size_t>(rows));
    const std::span<tulu::Session* const> batch(pointers.data(), static_cast<size_t>(rows));
    int step = 0;
    const auto run_steps = [&] {
      for (int n = 0; n < o.steps; ++n, ++step) {
        for (int s = 0; s < rows; ++s)
          tokens[static_cast<size_t>(s)] = (31 * step + 5 * s + 2) % vocab;
        decoder.decode(batch, tokens);
      }
    };
    run_steps();  // warm-up (caches, page faults of the weights)
    const double seconds = median_seconds(o.repeats, run_steps) / o.steps;
    const double tokens_per_s = rows / seconds;
    if (rows == 1) single = tokens_per_s;
    std::printf(
        "%6d %12.2f %12.1f %8s\n", rows, 1e3 * seconds, tokens_per_s,
        single > 0 ? (std::to_string(tokens_per_s / single).substr(0, 4) + "x").c_str() : "-");
    std::fflush(stdout);
  }
}

// The crossover table: per weight shape, ms per product for matmul()'s few-row kernel, the
// sgemm path and `rows` separate matrix–vector products.
void bench_kernels(const tulu::LlamaModel& model, const Options& o, tulu::ThreadPool& pool) {
  const tulu::LlamaWeights& w = model.weights();
  const tulu::LayerWeights& layer = w.layers.front();
  const std::pair<const char*, const tulu::TensorView*> shapes[] = {{"q_proj", &layer.q_proj},
                                                                    {"gate_proj", &layer.gate_proj},
                                                                    {"down_proj", &layer.down_proj},
                                                                    {"lm_head", &w.lm_head}};
  if (tulu::dtype_is_quantized(layer.q_proj.dtype)) {
    std::printf("kernels: %s weights use the quantized kernels (skipped)\n",
                std::string(tulu::dtype_name(layer.q_proj.dtype)).c_str());
    return;
  }
  const int64_t max_in = std::max(layer.down_proj.dim(1), layer.q_proj.dim(1));
  tulu::MatmulScratch scratch(max_in, pool.num_threads());
  std::printf("\n%-10s %5s %14s %14s %14s   (ms per product, median)\n", "weight", "rows",
              "matvec_multi", "sgemm", "rows*matvec");
  for (const auto& [name, view] : shapes) {
    const int64_t out = view->dim(0), in = view->dim(1);
    for (const int rows : o.rows) {
      std::vector<float> x(static_cast<size_t>(rows * in), 0.01f);
      std::vector<float> y(static_cast<size_t>(rows * out));
      const auto time = [&](auto fn) {
        fn();
        return 1e3 *
               median_seconds(o.repeats,
                              [&] {
                                for (int n = 0; n < o.steps; ++n) fn();
                              }) /
               o.steps;
      };
      const double multi = time([&] { tulu::matvec_multi(x.data(), rows, *view, y.data(), pool); });
      const double gemm =
          time([&] { tulu::matmul_blas(x.data(), rows, *view, y.data(), pool, &scratch); });
      const double single = time([&] {
        for (int r = 0; r < rows; ++r)
          tulu::matmul(x.data() + r * in, 1, *view, y.data() + r * out, pool);
      });
      std::printf("%-10s %5d %14.3f %14.3f %14.3f\n", name, rows, multi, gemm, single);
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    const std::unique_ptr<tulu::LlamaModel> model = tulu::LlamaModel::load(o.model_dir);
    tulu::ThreadPool pool(o.threads);
    std::printf("model %s (%s), %d threads, kernels %s, prompt %d, %d steps x %d repeats\n",
                o.model_dir.c_str(),
                std::string(tulu::dtype_name(model->weights().layers[0].q_proj.dtype)).c_str(),
                o.threads, tulu::kernel_target_name().c_str(), o.prompt, o.steps, o.repeats);
    bench_decode(*model, o, pool);
    if (o.kernels) bench_kernels(*model, o, pool);
  } catch (const tulu::Error& e) {
    std::fprintf(stderr, "bench_batch_decode: %s\n", e.what());
    return 1;
  }
  return 0;
}
