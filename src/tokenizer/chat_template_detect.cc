// Recognising a tokenizer_config.json chat_template as one of the known formats. The
// template text is compared, after a normalization that cannot change what it renders,
// with the published templates: inside {{ }} / {% %} tags, whitespace outside string
// literals is dropped and literal escapes (\n, \t, \\, \', \") are resolved; text between
// tags is kept byte for byte (trim_blocks makes its newlines significant).
#include "tokenizer/chat_format.h"

#include <array>

namespace tulu {

namespace {

// The published templates, as their tokenizer_config.json strings decode.
struct KnownTemplate {
  ChatFormat format;
  const char* text;
};

// allenai/tulu-2-dpo-70b (and data/llama2-tokenizer/tokenizer_config.json).
constexpr const char* kTulu2Template =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] }}\n{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n' + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
    "{% endfor %}";

// HuggingFaceH4/zephyr-7b-beta: like Tulu 2's but with eos_token after every turn and
// system turns kept.
constexpr const char* kZephyrTemplate =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
    "{% endfor %}";

// meta-llama/Llama-2-7b-chat-hf (the same in the 13b/70b chat repos).
constexpr const char* kLlama2ChatTemplate =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}";

// The standard ChatML template (as in transformers' ChatML default and many repos).
constexpr const char* kChatMLTemplate =
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

constexpr std::array<KnownTemplate, 4> kKnownTemplates{{
    {ChatFormat::Tulu, kTulu2Template},
    {ChatFormat::Zephyr, kZephyrTemplate},
    {ChatFormat::Llama2Chat, kLlama2ChatTemplate},
    {ChatFormat::ChatML, kChatMLTemplate},
}};

char resolve_escape(char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 't':
      return '\t';
    case 'r':
      return '\r';
    default:
      return c;  // \\, \', \" and anything else: the character itself
  }
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Normal form described above; literals are re-emitted between \x01 markers so that
// quote style does not matter.
std::string normalize_template(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const bool opens_tag = text[pos] == '{' && pos + 1 < text.size() &&
                           (text[pos + 1] == '{' || text[pos + 1] == '%' || text[pos + 1] == '#');
    if (!opens_tag) {
      out.push_back(text[pos++]);
      continue;
    }
    const char kind = text[pos + 1];
    const char closer = kind == '{' ? '}' : kind;
    out += text.substr(pos, 2);
    pos += 2;
    while (pos < text.size()) {
      const char c = text[pos];
      if (c == closer && pos + 1 < text.size() && text[pos + 1] == '}') {
        out += text.substr(pos, 2);
        pos += 2;
        break;
      }
      if (c == '\'' || c == '"') {
        out.push_back('\x01');
        ++pos;
        while (pos < text.size() && text[pos] != c) {
          if (text[pos] == '\\' && pos + 1 < text.size()) {
            out.push_back(resolve_escape(text[pos + 1]));
            pos += 2;
          } else {
            out.push_back(text[pos++]);
          }
        }
        ++pos;  // closing quote
        out.push_back('\x01');
        continue;
      }
      if (!is_space(c)) out.push_back(c);
      ++pos;
    }
  }
  return out;
}

}  // namespace

std::optional<ChatFormat> detect_chat_format(std::string_view chat_template) {
  const std::string normalized = normalize_template(chat_template);
  for (const KnownTemplate& known : kKnownTemplates) {
    if (normalize_template(known.text) == normalized) return known.format;
  }
  return std::nullopt;
}

}  // namespace tulu
