// tulu chat: an interactive multi-turn conversation in the model's chat format, replies
// streamed to stdout. Each stdin line is one user turn; "/reset" clears the conversation
// (the system message stays), "/exit" or end of input quits. Works the same when stdin
// is a pipe (no prompt is printed then).
//
//   tulu chat -m DIR [--system TEXT] [--temperature T ...] [--verbose]
//
// The KV cache is kept across turns: each turn renders the whole conversation, and since
// the rendered text only grows at its end (Tulu: "...<|assistant|>\n{reply}</s>\n<|user|>
// \n{next}\n<|assistant|>\n"), the tokens of earlier turns are found in the cache and only
// the new ones are evaluated. --verbose prints per turn how many prompt tokens were reused.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>

#include "command.h"
#include "model_tokenizer.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "generate/generation_defaults.h"
#include "generate/generator.h"
#include "generation_cli.h"
#include "llama/model.h"
#include "llama/session.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace tulu::cli {

namespace {

// Default KV cache capacity for a conversation: the model's context, at most this many
// tokens (a 7B model's fp32 cache takes 0.5 MiB per token).
constexpr int kDefaultChatContext = 4096;

struct ChatCommand {
  ModelOptions model;
  GenerationCli generation;
  std::string system;
  bool verbose = false;
};

std::string trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const size_t last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

double per_second(int tokens, double seconds) { return seconds > 0.0 ? tokens / seconds : 0.0; }

int run_chat(const ChatCommand& c) {
  const KvType kv_type = c.generation.kv_type.resolve();
  const std::unique_ptr<Tokenizer> tokenizer = load_model_tokenizer(c.model.model_dir);
  const ChatFormat format = c.generation.chat_format.empty()
                                ? chat_format_for_model(c.model.model_dir)
                                : parse_chat_format(c.generation.chat_format);
  const std::unique_ptr<LlamaModel> model = LlamaModel::load(c.model.model_dir);
  const GenerationOverrides overrides = c.generation.overrides();
  const GenerateOptions options = resolve_generate_options(
      model->generation_config(), overrides, resolve_eos_ids(*model, *tokenizer));
  for (const std::string& name : ignored_in_greedy(overrides, options.sampling)) {
    std::cerr << "tulu chat: note: " << name
              << " has no effect with greedy decoding (--temperature 0)\n";
  }
  const int max_positions = model->config().max_position_embeddings;
  TULU_CHECK(c.generation.ctx_size <= max_positions, "--ctx-size ", c.generation.ctx_size,
             " exceeds the model's max_position_embeddings (", max_positions, ")");
  const int ctx_size = c.generation.ctx_size > 0 ? c.generation.ctx_size
                                                 : std::min(max_positions, kDefaultChatContext);
  ThreadPool pool(resolve_threads(c.model.threads));
  Session session(*model, ctx_size, pool, Session::kDefaultMaxBatch, kv_type);

  const bool interactive = isatty(STDIN_FILENO) != 0;
  if (interactive) {
    std::cerr << "tulu chat: " << chat_format_name(format) << " format, context " << ctx_size
              << " tokens, "
              << (options.sampling.temperature == 0.0 ? "greedy" : "sampling")
              << ". /reset clears the conversation, /exit quits.\n";
  }
  std::vector<ChatMessage> conversation;
  if (!c.system.empty()) conversation.push_back({"system", c.system});
  const size_t first_turn = conversation.size();

  int turn = 0;
  std::string line;
  for (;;) {
    if (interactive) std::cout << "> " << std::flush;
    if (!std::getline(std::cin, line)) break;
    const std::string input = trim(line);
    if (input.empty()) continue;
    if (input == "/exit") break;
    if (input == "/reset") {
      conversation.resize(first_turn);
      if (interactive || c.verbose) std::cerr << "(conversation cleared)\n";
      continue;
    }

    conversation.push_back({"user", input});
    const std::string text = render_chat(format, conversation, /*add_generation_prompt=*/true);
    const std::vector<int> prompt_ids = tokenizer->encode(text, /*add_bos=*/true);
    if (static_cast<int>(prompt_ids.size()) > ctx_size) {
      std::cerr << "tulu chat: the conversation has " << prompt_ids.size()
                << " tokens, more than the context holds (" << ctx_size
                << "); use /reset to start over, or a larger --ctx-size\n";
      conversation.pop_back();
      continue;
    }
    ++turn;
    const GenerateResult result =
        generate(session, *tokenizer, prompt_ids, options, [](std::string_view piece) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
          return true;
        });
    std::cout << "\n" << std::flush;
    conversation.push_back({"assistant", result.text});
    if (result.finish_reason == FinishReason::ContextFull) {
      std::cerr << "tulu chat: the context is full (" << ctx_size
                << " tokens); use /reset to start over\n";
    }
    if (c.verbose) {
      const int generated = static_cast<int>(result.ids.size());
      std::fprintf(stderr,
                   "turn %d: prompt %d tokens (cached %d), %.1f tokens/s | generated %d "
                   "tokens, %.1f tokens/s | finish: %s\n",
                   turn, result.prompt_tokens, result.cached_tokens,
                   per_second(result.prompt_tokens - result.cached_tokens, result.prompt_seconds),
                   generated, per_second(generated, result.generate_seconds),
                   std::string(finish_reason_name(result.finish_reason)).c_str());
    }
  }
  return 0;
}

RunFunction setup(CLI::App& app) {
  auto c = std::make_shared<ChatCommand>();
  add_model_options(app, c->model);
  app.add_option("--system", c->system, "a system message at the start of the conversation");
  c->generation.add_to(app, "max_position_embeddings, at most 4096");
  app.add_flag("-v,--verbose", c->verbose,
               "per turn on stderr: prompt tokens, tokens reused from the KV cache, speeds, "
               "finish reason");
  return [c] { return run_chat(*c); };
}

const bool registered = register_command(
    {"chat", "interactive multi-turn chat in the model's chat format (stdin may be a pipe)",
     210, setup});

}  // namespace

}  // namespace tulu::cli
