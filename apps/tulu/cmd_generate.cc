// tulu generate: continue a prompt (or answer it as one chat turn with --chat), streaming
// the text to stdout; a statistics line goes to stderr at the end.
//
//   tulu generate -m DIR -p "Once upon a time" -n 64
//   tulu generate -m DIR -p "What is 2+2?" --chat [--system "Be brief."] --temperature 0.7
//   tulu generate -m DIR -p TEXT --output-json     one JSON object instead of streaming:
//     {"text", "ids" (generated, EOS excluded), "prompt_ids" (with BOS), "finish_reason"
//      ("eos" | "stop" | "length" | "context_full"), "prompt_tokens", "generated_tokens",
//      "prompt_seconds", "generate_seconds", "seed", "chat_format" (with --chat)}
// Decoding is greedy unless the model's generation_config.json asks for sampling or a
// --temperature > 0 is given (see generation_cli.h for every option and its default).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "command.h"
#include "model_tokenizer.h"
#include "core/error.h"
#include "core/json.h"
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

struct GenerateCommand {
  ModelOptions model;
  GenerationCli generation;
  std::string prompt;
  bool chat = false;
  std::string system;
  bool output_json = false;
};

double per_second(int tokens, double seconds) { return seconds > 0.0 ? tokens / seconds : 0.0; }

int run_generate(const GenerateCommand& c) {
  TULU_CHECK(c.chat || c.system.empty(), "--system needs --chat");
  TULU_CHECK(c.chat || c.generation.chat_format.empty(), "--chat-format needs --chat");
  const KvType kv_type = c.generation.kv_type.resolve();
  const std::unique_ptr<Tokenizer> tokenizer = load_model_tokenizer(c.model.model_dir);
  std::string text = c.prompt;
  std::string format_name;
  if (c.chat) {
    const ChatFormat format = c.generation.chat_format.empty()
                                  ? chat_format_for_model(c.model.model_dir)
                                  : parse_chat_format(c.generation.chat_format);
    format_name = chat_format_name(format);
    std::vector<ChatMessage> messages;
    if (!c.system.empty()) messages.push_back({"system", c.system});
    messages.push_back({"user", c.prompt});
    text = render_chat(format, messages, /*add_generation_prompt=*/true);
  }
  const std::vector<int> prompt_ids = tokenizer->encode(text, /*add_bos=*/true);

  const std::unique_ptr<LlamaModel> model = LlamaModel::load(c.model.model_dir);
  const GenerationOverrides overrides = c.generation.overrides();
  const GenerateOptions options = resolve_generate_options(
      model->generation_config(), overrides, resolve_eos_ids(*model, *tokenizer));
  for (const std::string& name : ignored_in_greedy(overrides, options.sampling)) {
    std::cerr << "tulu generate: note: " << name
              << " has no effect with greedy decoding (--temperature 0)\n";
  }

  // The cache holds the prompt and what may follow it, within the model's positions.
  const int max_positions = model->config().max_position_embeddings;
  const int prompt_length = static_cast<int>(prompt_ids.size());
  TULU_CHECK(c.generation.ctx_size <= max_positions, "--ctx-size ", c.generation.ctx_size,
             " exceeds the model's max_position_embeddings (", max_positions, ")");
  const int ctx_size =
      c.generation.ctx_size > 0
          ? c.generation.ctx_size
          : static_cast<int>(std::min<int64_t>(max_positions, int64_t{prompt_length} + options.max_new_tokens));
  TULU_CHECK(prompt_length <= ctx_size, "the prompt has ", prompt_length,
             " tokens but the context holds only ", ctx_size,
             c.generation.ctx_size > 0 ? " (--ctx-size)" : " (the model's max_position_embeddings)");

  ThreadPool pool(resolve_threads(c.model.threads));
  Session session(*model, ctx_size, pool, Session::kDefaultMaxBatch, kv_type);
  const bool stream = !c.output_json;
  const GenerateResult result =
      generate(session, *tokenizer, prompt_ids, options, [&](std::string_view piece) {
        if (stream) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
        }
        return true;
      });

  const int generated = static_cast<int>(result.ids.size());
  if (c.output_json) {
    Json out = {{"text", result.text},
                {"ids", result.ids},
                {"prompt_ids", prompt_ids},
                {"finish_reason", std::string(finish_reason_name(result.finish_reason))},
                {"prompt_tokens", result.prompt_tokens},
                {"generated_tokens", generated},
                {"prompt_seconds", result.prompt_seconds},
                {"generate_seconds", result.generate_seconds},
                {"seed", options.sampling.seed}};
    if (c.chat) out["chat_format"] = format_name;
    std::cout << out.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  } else if (isatty(STDOUT_FILENO)) {
    std::cout << "\n";  // keep the shell prompt off the last line; pipes get the exact text
  }
  std::cout.flush();
  const std::string decoding =
      options.sampling.temperature == 0.0
          ? std::string("greedy")
          : "sampling, seed " + std::to_string(options.sampling.seed);
  std::fprintf(stderr,
               "prompt: %d tokens, %.1f tokens/s | generated: %d tokens, %.1f tokens/s | "
               "finish: %s | %s, %d threads\n",
               result.prompt_tokens,
               per_second(result.prompt_tokens - result.cached_tokens, result.prompt_seconds),
               generated, per_second(generated, result.generate_seconds),
               std::string(finish_reason_name(result.finish_reason)).c_str(), decoding.c_str(),
               pool.num_threads());
  return 0;
}

RunFunction setup(CLI::App& app) {
  auto c = std::make_shared<GenerateCommand>();
  add_model_options(app, c->model);
  app.add_option("-p,--prompt", c->prompt, "the prompt text (BOS is prepended)")->required();
  app.add_flag("--chat", c->chat,
               "wrap the prompt as one user turn in the model's chat format, with the "
               "assistant header after it");
  app.add_option("--system", c->system, "with --chat: a system message before the user turn");
  c->generation.add_to(app, "prompt tokens + --max-new-tokens, at most max_position_embeddings");
  app.add_flag("--output-json", c->output_json,
               "print one JSON object (text, generated ids, prompt ids, finish reason, counts, "
               "timings) instead of streaming the text");
  return [c] { return run_generate(*c); };
}

const bool registered = register_command(
    {"generate", "generate text from a prompt (streamed), greedy or sampled", 200, setup});

}  // namespace

}  // namespace tulu::cli
