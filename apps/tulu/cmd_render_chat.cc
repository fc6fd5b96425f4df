// tulu render-chat: a conversation → the prompt text of a chat format, and its ids.
// Needs only the tokenizer files of the model directory.
//
//   tulu render-chat -m DIR [--chat-format NAME] < conversation.json
//   tulu render-chat -m DIR --jsonl              one conversation per stdin line
// Input: {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...],
//         "add_generation_prompt": bool = false (as Hugging Face's apply_chat_template)}.
// Output: {"text": str, "ids": [...] (with BOS), "chat_format": name, ...other fields}.
// The format is --chat-format, else tokenizer_config.json's chat_template when it is a
// known one, else tulu.
#include <iostream>
#include <sstream>

#include "command.h"
#include "model_tokenizer.h"
#include "core/error.h"
#include "core/json.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace tulu::cli {

namespace {

struct RenderChatOptions {
  std::string model;
  std::string chat_format;
  bool jsonl = false;
};

Json render_one(const Json& input, const std::string& source, ChatFormat format,
                const Tokenizer& tokenizer) {
  TULU_CHECK(input.is_object(), source, ": expected a JSON object, got ", json_preview(input));
  TULU_CHECK(input.contains("messages") && input.at("messages").is_array(), source,
             ": field 'messages': expected an array of {\"role\", \"content\"} objects");
  const Json& messages_json = input.at("messages");
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < messages_json.size(); ++i) {
    const Json& m = messages_json.at(i);
    const std::string where = source + ": messages[" + std::to_string(i) + "]";
    TULU_CHECK(m.is_object(), where, ": expected an object, got ", json_preview(m));
    messages.push_back({json_string(m, "role", where), json_string(m, "content", where)});
  }
  const bool generation_prompt =
      json_opt_bool(input, "add_generation_prompt", source).value_or(false);
  const std::string text = render_chat(format, messages, generation_prompt);
  Json output = {{"text", text},
                 {"ids", tokenizer.encode(text, /*add_bos=*/true)},
                 {"chat_format", std::string(chat_format_name(format))}};
  for (const auto& [key, value] : input.items()) {
    if (key != "messages" && key != "add_generation_prompt" && !output.contains(key)) {
      output[key] = value;
    }
  }
  return output;
}

int run_render_chat(const RenderChatOptions& o) {
  const auto tokenizer = load_model_tokenizer(o.model);
  const ChatFormat format =
      o.chat_format.empty() ? chat_format_for_model(o.model) : parse_chat_format(o.chat_format);
  if (!o.jsonl) {
    std::ostringstream all_stdin;
    all_stdin << std::cin.rdbuf();
    const std::string all = all_stdin.str();
    std::cout << render_one(parse_json(all, "stdin"), "stdin", format, *tokenizer).dump() << "\n";
    return 0;
  }
  std::string line;
  size_t line_number = 0;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string source = "stdin line " + std::to_string(line_number);
    std::cout << render_one(parse_json(line, source), source, format, *tokenizer).dump() << "\n";
  }
  return 0;
}

RunFunction setup(CLI::App& app) {
  auto o = std::make_shared<RenderChatOptions>();
  app.add_option("-m,--model", o->model, "model directory (its tokenizer files are used)")
      ->required();
  app.add_option("--chat-format", o->chat_format,
                 "tulu, llama-2-chat, zephyr or chatml (default: from tokenizer_config.json's "
                 "chat_template, else tulu)");
  app.add_flag("--jsonl", o->jsonl, "one conversation per stdin line");
  return [o] { return run_render_chat(*o); };
}

const bool registered = register_command(
    {"render-chat", "render a conversation in the model's chat format, with ids", 52, setup});

}  // namespace

}  // namespace tulu::cli
