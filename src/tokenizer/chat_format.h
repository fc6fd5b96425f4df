// Chat formats: turning a list of messages into the prompt text a model was trained on.
// Tulu (open-instruct's create_prompt_with_tulu_chat_format) is the default for Llama
// models; llama-2-chat, zephyr and chatml are the named alternatives. The rendered text
// has no leading BOS: the tokenizer adds it (encode(text, add_bos=true)).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tulu {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

enum class ChatFormat { Tulu, Llama2Chat, Zephyr, ChatML };

// "tulu", "llama-2-chat", "zephyr", "chatml".
std::string_view chat_format_name(ChatFormat format);
// Throws tulu::Error listing the known names when `name` is none of them.
ChatFormat parse_chat_format(std::string_view name);

// Recognises a tokenizer_config.json chat_template that is one of the known formats;
// nullopt when it is none of them (callers then default to Tulu for Llama models).
std::optional<ChatFormat> detect_chat_format(std::string_view chat_template);

// Chooses the format for a model directory: tokenizer_config.json's chat_template if
// known, else Tulu.
ChatFormat chat_format_for_dir(const std::string& dir);

// Renders messages; add_generation_prompt appends the assistant header (for Tulu,
// "<|assistant|>\n"). Throws tulu::Error naming the index for an unknown role.
std::string render_chat(ChatFormat format, std::span<const ChatMessage> messages,
                        bool add_generation_prompt);

}  // namespace tulu
