// tulu logits: float32 logits of every position for a given list of token ids, written as
// a NumPy .npy array [T, vocab] ('<f4', C order). The black-box forward-pass tests compare
// it with a PyTorch implementation of Hugging Face's LlamaForCausalLM.
//
//   tulu logits -m DIR --ids 1,15043,3186 -o logits.npy                 one batch (prompt path)
//   tulu logits -m DIR --ids ... -o logits.npy --incremental             one token at a time
//   tulu logits -m DIR --ids ... -o logits.npy --incremental --prefill 64   first 64 as one
//                                                       batch, then one token at a time
//   tulu logits ... --dump-activations DIR   also writes DIR/<name>.npy for every traced
//                                            intermediate (Session::set_activation_trace),
//                                            rows of all evaluations concatenated
#include <charconv>
#include <filesystem>
#include <iostream>
#include <map>

#include "command.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "llama/model.h"
#include "kv_type_option.h"
#include "llama/session.h"
#include "npy.h"

namespace tulu::cli {

namespace {

struct LogitsOptions {
  ModelOptions model;
  std::string ids;
  std::string output;
  bool incremental = false;
  int prefill = 0;
  int max_batch = Session::kDefaultMaxBatch;
  KvTypeOption kv_type;
  std::string dump_dir;
};

// Collects traced activations by name, appending the rows of successive evaluations.
struct ActivationDump {
  std::vector<std::string> order;  // first-seen order, for the summary line
  std::map<std::string, std::pair<int64_t, std::vector<float>>>
      arrays;  // name → (cols, rows × cols)

  void add(const std::string& name, int64_t rows, int64_t cols, const float* data) {
    auto [it, inserted] = arrays.try_emplace(name, cols, std::vector<float>());
    if (inserted) order.push_back(name);
    TULU_CHECK(it->second.first == cols, "activation '", name, "' changed width from ",
               it->second.first, " to ", cols);
    it->second.second.insert(it->second.second.end(), data, data + rows * cols);
  }

  void write(const std::string& dir) const {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    TULU_CHECK(!error, "--dump-activations: cannot create directory '", dir,
               "': ", error.message());
    for (const auto& [name, array] : arrays) {
      const auto& [cols, values] = array;
      write_npy_f32(dir + "/" + name + ".npy", values,
                    {static_cast<int64_t>(values.size()) / cols, cols});
    }
  }
};

// "1,15043, 3186" → {1, 15043, 3186}; every item must be a whole non-negative integer.
std::vector<int> parse_ids(const std::string& text) {
  std::vector<int> ids;
  size_t start = 0;
  for (int item = 1;; ++item) {
    const size_t comma = text.find(',', start);
    std::string piece =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t first = piece.find_first_not_of(" \t"), last = piece.find_last_not_of(" \t");
    piece = first == std::string::npos ? "" : piece.substr(first, last - first + 1);
    int value = 0;
    const auto [end, error] = std::from_chars(piece.data(), piece.data() + piece.size(), value);
    TULU_CHECK(!piece.empty() && error == std::errc() && end == piece.data() + piece.size(),
               "--ids: item ", item, " ('", piece, "') is not an integer token id");
    ids.push_back(value);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return ids;
}

int run_logits(const LogitsOptions& o) {
  const std::vector<int> ids = parse_ids(o.ids);
  TULU_CHECK(!o.incremental || o.prefill <= static_cast<int>(ids.size()), "--prefill ", o.prefill,
             " is larger than the number of ids (", ids.size(), ")");
  TULU_CHECK(o.incremental || o.prefill == 0, "--prefill needs --incremental");
  const KvType kv_type = o.kv_type.resolve();
  const std::unique_ptr<LlamaModel> model = LlamaModel::load(o.model.model_dir);
  const auto vocab = static_cast<size_t>(model->config().vocab_size);
  ThreadPool pool(resolve_threads(o.model.threads));
  Session session(*model, static_cast<int>(ids.size()), pool, o.max_batch, kv_type);
  ActivationDump dump;
  if (!o.dump_dir.empty()) {
    session.set_activation_trace([&dump](const std::string& name, int64_t rows, int64_t cols,
                                         const float* data) { dump.add(name, rows, cols, data); });
  }

  std::vector<float> logits;
  logits.reserve(ids.size() * vocab);
  const std::span<const int> all(ids);
  const size_t batched = o.incremental ? static_cast<size_t>(o.prefill) : ids.size();
  if (batched > 0) {
    const std::span<const float> rows = session.eval(all.first(batched), /*all_logits=*/true);
    logits.insert(logits.end(), rows.begin(), rows.end());
  }
  for (size_t i = batched; i < ids.size(); ++i) {
    const std::span<const float> row = session.eval(all.subspan(i, 1), /*all_logits=*/false);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  write_npy_f32(o.output, logits, {static_cast<int64_t>(ids.size()), static_cast<int64_t>(vocab)});
  if (!o.dump_dir.empty()) {
    dump.write(o.dump_dir);
    std::cout << o.dump_dir << ": " << dump.order.size() << " activations (" << dump.order.front()
              << " … " << dump.order.back() << ")\n";
  }
  std::cout << o.output << ": float32 logits [" << ids.size() << ", " << vocab << "] ("
            << (o.incremental ? "incremental" : "one batch") << ", " << kv_type_name(kv_type)
            << " KV cache, " << pool.num_threads() << " threads)\n";
  return 0;
}

RunFunction setup(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  add_model_options(app, o->model);
  app.add_option("--ids", o->ids, "comma-separated token ids, e.g. 1,15043,3186")->required();
  app.add_option("-o,--output", o->output, ".npy file to write: float32 [len(ids), vocab]")
      ->required();
  app.add_flag("--incremental", o->incremental, "feed the ids one at a time through the KV cache");
  app.add_option("--prefill", o->prefill,
                 "with --incremental: evaluate the first N ids as one batch first")
      ->check(CLI::Range(0, 1 << 30));
  app.add_option("--max-batch", o->max_batch,
                 "tokens per forward batch (longer prompts run in chunks)")
      ->check(CLI::Range(1, 1 << 20));
  o->kv_type.add_to(app);
  app.add_option("--dump-activations", o->dump_dir,
                 "debugging: also write every traced intermediate activation as DIR/<name>.npy");
  return [o] { return run_logits(*o); };
}

const bool registered = register_command(
    {"logits", "write the float32 logits of every position for given token ids as .npy", 150,
     setup});

}  // namespace

}  // namespace tulu::cli
