// The four chat formats, each transcribed from its reference:
//  * tulu: open-instruct eval/templates.py create_prompt_with_tulu_chat_format (system kept;
//    assistant content .strip()'ed and followed by "</s>\n"; generation prompt
//    "<|assistant|>\n"); add_generation_prompt=false leaves the prompt off, as
//    open-instruct's finetune.py concatenation does;
//  * llama-2-chat: meta-llama/Llama-2-7b-chat-hf's chat_template;
//  * zephyr: HuggingFaceH4/zephyr-7b-beta's chat_template;
//  * chatml: the standard ChatML template.
// HF templates render with trim_blocks/lstrip_blocks; where they write bos_token/eos_token
// the text here has the literal "<s>"/"</s>" (the tokenizer turns them into ids 1/2), and
// the leading BOS is left to the tokenizer.
#include "tokenizer/chat_format.h"

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/tokenizer_config.h"
#include "tokenizer/utf8.h"

namespace tulu {

namespace {

constexpr std::string_view kBos = "<s>";
constexpr std::string_view kEos = "</s>";

// Appends the parts in order (avoids operator+ chains, which GCC 12 warns about spuriously).
template <typename... Parts>
void append(std::string& text, const Parts&... parts) {
  (text.append(std::string_view(parts)), ...);
}

void check_roles(std::span<const ChatMessage> messages, ChatFormat format) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    TULU_CHECK(role == "system" || role == "user" || role == "assistant", "chat format '",
               chat_format_name(format), "': message ", i, " has role '", role,
               "' (expected system, user or assistant)");
  }
}

std::string render_tulu(std::span<const ChatMessage> messages, bool add_generation_prompt) {
  std::string text;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      append(text, "<|system|>\n", m.content, "\n");
    } else if (m.role == "user") {
      append(text, "<|user|>\n", m.content, "\n");
    } else {
      append(text, "<|assistant|>\n", utf8::python_strip(m.content), kEos, "\n");
    }
  }
  if (add_generation_prompt) text += "<|assistant|>\n";
  return text;
}

std::string render_zephyr(std::span<const ChatMessage> messages, bool add_generation_prompt) {
  std::string text;
  for (const ChatMessage& m : messages) {
    append(text, "<|", m.role, "|>\n", m.content, kEos, "\n");
  }
  // The template adds the prompt inside the loop, on its last iteration only.
  if (add_generation_prompt && !messages.empty()) text += "<|assistant|>\n";
  return text;
}

std::string render_chatml(std::span<const ChatMessage> messages, bool add_generation_prompt) {
  std::string text;
  for (const ChatMessage& m : messages) {
    append(text, "<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n");
  }
  if (add_generation_prompt) text += "<|im_start|>assistant\n";
  return text;
}

// The template has no generation prompt: a conversation ending in a user turn already ends
// with "[/INST]". Roles must alternate user/assistant after an optional leading system
// message, which is folded into the first user turn.
std::string render_llama2(std::span<const ChatMessage> messages) {
  TULU_CHECK(!messages.empty(), "chat format 'llama-2-chat': no messages");
  std::span<const ChatMessage> turns = messages;
  const ChatMessage* system = nullptr;
  if (messages[0].role == "system") {
    system = &messages[0];
    turns = messages.subspan(1);
  }
  std::string text;
  for (size_t i = 0; i < turns.size(); ++i) {
    const ChatMessage& m = turns[i];
    TULU_CHECK((m.role == "user") == (i % 2 == 0), "chat format 'llama-2-chat': message ",
               i + (system ? 1 : 0), " has role '", m.role,
               "': conversation roles must alternate user/assistant/user/assistant/...");
    std::string content;
    if (i == 0 && system) append(content, "<<SYS>>\n", system->content, "\n<</SYS>>\n\n");
    content += m.content;
    const std::string_view stripped = utf8::python_strip(content);
    if (m.role == "user") {
      append(text, kBos, "[INST] ", stripped, " [/INST]");
    } else if (m.role == "assistant") {
      append(text, " ", stripped, " ", kEos);
    }
    // A later "system" message at an odd position renders nothing, as in the template.
  }
  // The template begins with bos_token; the tokenizer adds that one.
  if (text.starts_with(kBos)) text.erase(0, kBos.size());
  return text;
}

}  // namespace

std::string_view chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::Tulu:
      return "tulu";
    case ChatFormat::Llama2Chat:
      return "llama-2-chat";
    case ChatFormat::Zephyr:
      return "zephyr";
    case ChatFormat::ChatML:
      return "chatml";
  }
  return "unknown";
}

ChatFormat parse_chat_format(std::string_view name) {
  for (ChatFormat format :
       {ChatFormat::Tulu, ChatFormat::Llama2Chat, ChatFormat::Zephyr, ChatFormat::ChatML}) {
    if (name == chat_format_name(format)) return format;
  }
  fail("unknown chat format '", name, "' (known: tulu, llama-2-chat, zephyr, chatml)");
}

std::string render_chat(ChatFormat format, std::span<const ChatMessage> messages,
                        bool add_generation_prompt) {
  check_roles(messages, format);
  switch (format) {
    case ChatFormat::Tulu:
      return render_tulu(messages, add_generation_prompt);
    case ChatFormat::Llama2Chat:
      return render_llama2(messages);
    case ChatFormat::Zephyr:
      return render_zephyr(messages, add_generation_prompt);
    case ChatFormat::ChatML:
      return render_chatml(messages, add_generation_prompt);
  }
  fail("chat format: invalid value");
}

ChatFormat chat_format_for_dir(const std::string& dir) {
  const std::optional<TokenizerConfig> config = read_tokenizer_config_in_dir(dir);
  if (config && config->chat_template) {
    if (const auto format = detect_chat_format(*config->chat_template)) return *format;
  }
  return ChatFormat::Tulu;
}

}  // namespace tulu
