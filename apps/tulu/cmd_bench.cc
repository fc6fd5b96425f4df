// tulu bench: prompt-processing (pp) and generation (tg) speed in the manner of llama.cpp's
// llama-bench. pp<P> evaluates P tokens as one batch into an empty KV cache; tg<N> generates
// N tokens one at a time (each a one-token eval, as llama-bench's test_gen does, no
// sampling). Each test runs one untimed warm-up, then -r timed repetitions; tokens/s is
// reported as mean ± sample standard deviation over the repetitions. Model load time is
// measured separately and excluded. `-o json` writes llama-bench's JSON fields.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <cctype>

#include "command.h"
#include "core/error.h"
#include "core/json.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "llama/model.h"
#include "llama/session.h"
#include "kv_type_option.h"

namespace tulu::cli {

namespace {

struct BenchOptions {
  ModelOptions model;
  int n_prompt = 512;
  int n_gen = 128;
  int reps = 5;
  std::string output = "md";
  KvTypeOption kv_type;
};

struct TestResult {
  int n_prompt = 0;
  int n_gen = 0;
  std::vector<uint64_t> samples_ns;
  std::string test_time;  // UTC, ISO 8601, when the test started
};

struct ModelFacts {
  std::string type;      // "llama 1.1B BF16", as llama-bench's model_type
  std::string dtype;     // the weights' stored dtype(s), e.g. "BF16" or "F32+BF16"
  uint64_t size = 0;     // bytes of the weights the model uses (a tied lm_head once)
  // Bytes of weights read per generated token: all but the embedding table, of which one
  // row is read (unless it is tied to lm_head, which reads all of it). Decode's ceiling is
  // memory bandwidth ÷ this.
  uint64_t bytes_per_token = 0;
  int64_t n_params = 0;
};

using Clock = std::chrono::steady_clock;

uint64_t elapsed_ns(Clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

uint64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
    }
  }
  return "";
}

std::string size_label(int64_t params) {
  char buf[32];
  if (params >= 1'000'000'000) std::snprintf(buf, sizeof buf, "%.1fB", static_cast<double>(params) / 1e9);
  else std::snprintf(buf, sizeof buf, "%.0fM", static_cast<double>(params) / 1e6);
  return buf;
}

ModelFacts model_facts(const LlamaModel& model) {
  ModelFacts facts;
  std::map<std::string, uint64_t> bytes_by_dtype;
  for (const auto& spec : llama_param_specs(model.config())) {
    const TensorView& view = model.store().get(spec.name).view;
    bytes_by_dtype[std::string(dtype_name(view.dtype))] += view.nbytes();
    facts.size += view.nbytes();
    const bool embedding_only =
        spec.name == "model.embed_tokens.weight" && !model.config().tie_word_embeddings;
    facts.bytes_per_token += embedding_only ? view.nbytes() / static_cast<uint64_t>(view.dim(0))
                                            : view.nbytes();
  }
  for (const auto& [name, bytes] : bytes_by_dtype) {
    if (!facts.dtype.empty()) facts.dtype += "+";
    for (char ch : name) facts.dtype += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  facts.n_params = model.parameter_count();
  facts.type = "llama " + size_label(facts.n_params) + " " + facts.dtype;
  return facts;
}

// Tokens fed to the model: the BOS id, as llama-bench feeds (speed does not depend on ids).
int bench_token(const LlamaModel& model) {
  const auto& bos = model.config().bos_token_ids;
  return !bos.empty() && bos[0] >= 0 && bos[0] < model.config().vocab_size ? bos[0] : 0;
}

void run_prompt(Session& session, int n_prompt, int token) {
  const std::vector<int> tokens(static_cast<size_t>(n_prompt), token);
  session.eval(tokens, false);
}

void run_gen(Session& session, int n_gen, int token) {
  for (int i = 0; i < n_gen; ++i) session.eval(std::span<const int>(&token, 1), false);
}

TestResult run_test(Session& session, int n_prompt, int n_gen, int reps, int token) {
  TestResult result;
  result.n_prompt = n_prompt;
  result.n_gen = n_gen;
  result.test_time = utc_now();
  // Warm-up as llama-bench: a short prompt or one generated token (pages in the weights).
  session.reset();
  if (n_prompt > 0) run_prompt(session, std::min(n_prompt, 32), token);
  if (n_gen > 0) run_gen(session, 1, token);
  for (int r = 0; r < reps; ++r) {
    session.reset();
    const auto start = Clock::now();
    if (n_prompt > 0) run_prompt(session, n_prompt, token);
    if (n_gen > 0) run_gen(session, n_gen, token);
    result.samples_ns.push_back(elapsed_ns(start));
  }
  return result;
}

std::vector<double> samples_ts(const TestResult& t) {
  std::vector<double> ts;
  for (uint64_t ns : t.samples_ns)
    ts.push_back(1e9 * static_cast<double>(t.n_prompt + t.n_gen) / static_cast<double>(ns));
  return ts;
}

template <typename T>
double mean(const std::vector<T>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// Sample standard deviation (n − 1), 0 for fewer than two samples, as llama-bench.
template <typename T>
double stddev(const std::vector<T>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean(v);
  double sq = 0;
  for (T x : v) sq += (static_cast<double>(x) - m) * (static_cast<double>(x) - m);
  return std::sqrt(sq / static_cast<double>(v.size() - 1));
}

struct RunInfo {
  std::string model_dir;
  int threads = 0;
  double load_ms = 0;
  uint64_t repacked_bytes = 0;  // weights copied into the 16-row layouts at load
  std::string repack_cache;     // the file they were mapped from ("" in memory)
  bool repack_cache_built = false;
  KvType kv_type = KvType::F32;
  uint64_t kv_cache_bytes = 0;
};

Json to_json(const TestResult& t, const ModelFacts& m, const RunInfo& run) {
  const std::vector<double> ts = samples_ts(t);
  Json j;
  j["build_commit"] = "";
  j["build_number"] = 0;
  j["cpu_info"] = cpu_model_name();
  j["gpu_info"] = "";
  j["backends"] = "CPU";
  j["model_filename"] = run.model_dir;
  j["model_type"] = m.type;
  j["model_size"] = m.size;
  j["model_n_params"] = m.n_params;
  j["n_batch"] = std::max(t.n_prompt, 1);
  j["n_ubatch"] = std::max(t.n_prompt, 1);
  j["n_threads"] = run.threads;
  j["type_k"] = std::string(kv_type_name(run.kv_type));  // llama-bench's names: "f32", "f16"
  j["type_v"] = std::string(kv_type_name(run.kv_type));
  j["use_mmap"] = !files_in_memory();  // --no-mmap
  j["n_prompt"] = t.n_prompt;
  j["n_gen"] = t.n_gen;
  j["test_time"] = t.test_time;
  j["avg_ns"] = static_cast<uint64_t>(mean(t.samples_ns));
  j["stddev_ns"] = static_cast<uint64_t>(stddev(t.samples_ns));
  j["avg_ts"] = mean(ts);
  j["stddev_ts"] = stddev(ts);
  j["samples_ns"] = t.samples_ns;
  j["samples_ts"] = ts;
  // Ours, beyond llama-bench's fields.
  j["load_time_ms"] = run.load_ms;
  j["repacked_bytes"] = run.repacked_bytes;  // 0 with --no-repack or on CPUs without AVX-512
  j["repack_cache"] = run.repack_cache;              // "" when repacked in memory
  j["repack_cache_built"] = run.repack_cache_built;  // this load wrote the cache file
  j["bf16_activations"] = bf16_activations();  // the model's (run_bench's scope)
  j["kv_cache_bytes"] = run.kv_cache_bytes;
  j["weight_bytes_per_token"] = m.bytes_per_token;
  j["peak_rss_bytes"] = peak_rss_bytes();
  j["blas_core"] = blas_core_name();
  j["prompt_gemm"] = prompt_gemm_name();
  j["kernel_target"] = kernel_target_name();
  return j;
}

std::string human_size(uint64_t bytes) {
  char buf[32];
  const double mib = static_cast<double>(bytes) / 1024.0 / 1024.0;
  if (mib < 1024) std::snprintf(buf, sizeof buf, "%.2f MiB", mib);
  else std::snprintf(buf, sizeof buf, "%.2f GiB", mib / 1024.0);
  return buf;
}

void print_markdown(const std::vector<TestResult>& tests, const ModelFacts& m, const RunInfo& run) {
  std::printf("| model | size | params | backend | threads | test | t/s |\n");
  std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
  for (const auto& t : tests) {
    const std::vector<double> ts = samples_ts(t);
    char test[32];
    std::snprintf(test, sizeof test, t.n_prompt > 0 ? "pp%d" : "tg%d",
                  t.n_prompt > 0 ? t.n_prompt : t.n_gen);
    char params[32];
    std::snprintf(params, sizeof params, "%.2f %s",
                  static_cast<double>(m.n_params) / (m.n_params >= 1'000'000'000 ? 1e9 : 1e6),
                  m.n_params >= 1'000'000'000 ? "B" : "M");
    std::printf("| %s | %s | %s | CPU | %d | %s | %.2f ± %.2f |\n", m.type.c_str(),
                human_size(m.size).c_str(), params, run.threads, test, mean(ts), stddev(ts));
  }
  const std::string repacked =
      run.repacked_bytes == 0 ? ""
      : ", " + human_size(run.repacked_bytes) + " in 16-row layout " +
            (run.repack_cache.empty() ? std::string("repacked in memory")
                                      : (run.repack_cache_built ? "written to " : "mapped from ") +
                                            run.repack_cache);
  std::printf("\nload: %.1f ms (weights %s%s); peak RSS: %s (weights %s + KV cache %s %s + "
              "workspaces); "
              "weights read per generated token: %s; kernels: %s; prompt GEMM: %s\n",
              run.load_ms, files_in_memory() ? "read into memory" : "mapped", repacked.c_str(),
              human_size(peak_rss_bytes()).c_str(), human_size(m.size).c_str(),
              human_size(run.kv_cache_bytes).c_str(), std::string(kv_type_name(run.kv_type)).c_str(),
              human_size(m.bytes_per_token).c_str(),
              kernel_target_name().c_str(), prompt_gemm_name().c_str());
}

int run_bench(const BenchOptions& o) {
  TULU_CHECK(o.output == "md" || o.output == "json", "-o: expected md or json, got '", o.output,
             "'");
  TULU_CHECK(o.n_prompt > 0 || o.n_gen > 0, "nothing to measure: -p and -n are both 0");
  RunInfo run;
  run.kv_type = o.kv_type.resolve();
  run.model_dir = o.model.model_dir;
  run.threads = resolve_threads(o.model.threads);
  const auto load_start = Clock::now();
  const std::unique_ptr<LlamaModel> model = LlamaModel::load(o.model.model_dir);
  run.load_ms = static_cast<double>(elapsed_ns(load_start)) / 1e6;
  run.repacked_bytes = model->repacked_bytes();
  run.repack_cache = model->repack_cache();
  run.repack_cache_built = model->repack_cache_built();
  // The model's BF16 activation choice, for the report (its forward passes set their own).
  const Bf16ActivationsScope precision(model->bf16_activations());
  const LlamaConfig& c = model->config();
  const int context = o.n_prompt + o.n_gen;
  TULU_CHECK(context <= c.max_position_embeddings, "-p ", o.n_prompt, " + -n ", o.n_gen,
             " tokens exceed the model's max_position_embeddings (", c.max_position_embeddings,
             ")");
  ThreadPool pool(run.threads);
  // The prompt is one batch, as llama-bench's (n_ubatch = 512 ≥ p by default).
  Session session(*model, std::max(o.n_prompt, o.n_gen), pool, std::max(o.n_prompt, 1),
                  run.kv_type);
  run.kv_cache_bytes = session.kv_cache_bytes();
  const ModelFacts facts = model_facts(*model);
  const int token = bench_token(*model);

  std::vector<TestResult> tests;
  if (o.n_prompt > 0) tests.push_back(run_test(session, o.n_prompt, 0, o.reps, token));
  if (o.n_gen > 0) tests.push_back(run_test(session, 0, o.n_gen, o.reps, token));

  if (o.output == "json") {
    Json all = Json::array();
    for (const auto& t : tests) all.push_back(to_json(t, facts, run));
    std::cout << all.dump(2) << "\n";
  } else {
    print_markdown(tests, facts, run);
  }
  return 0;
}

RunFunction setup(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  add_model_options(app, o->model);
  app.add_option("-p,--n-prompt", o->n_prompt, "prompt tokens processed as one batch (0 = skip)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("-n,--n-gen", o->n_gen, "tokens generated one at a time (0 = skip)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("-r,--repetitions", o->reps, "timed repetitions of each test")
      ->check(CLI::Range(1, 1000));
  app.add_option("-o,--output", o->output, "md (a table) or json (llama-bench's JSON fields)")
      ->check(CLI::IsMember({"md", "json"}));
  o->kv_type.add_to(app);
  return [o] { return run_bench(*o); };
}

const bool registered = register_command(
    {"bench", "prompt-processing and generation speed (tokens/s), like llama-bench", 900, setup});

}  // namespace

}  // namespace tulu::cli
