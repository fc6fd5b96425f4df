// Chat-message rows shared by SFT and DPO data: parsing {"role", "content"} lists with errors
// naming the field, and open-instruct finetune.py's _concat_messages rendering of one message.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace tulu {

enum class Role { System, User, Assistant };

struct Message {
  Role role;
  std::string_view content;  // points into the row's Json, which must outlive it
};

// A field that is absent or null counts as absent (as core/json.h's optional accessors).
const Json* find_field(const Json& object, const char* key);

// Throws "<where>: field <field>: expected <expected>, got <preview of got>".
[[noreturn]] void field_error(const std::string& where, std::string_view field,
                              std::string_view expected, const Json& got);

// The string `value` holds, else field_error.
std::string_view string_field(const Json& value, const std::string& where, std::string_view field);

// A non-empty array of {"role": "system"|"user"|"assistant", "content": str}; errors name
// `field` (e.g. "messages[2].role").
std::vector<Message> parse_messages(const Json& messages, const std::string& where,
                                    std::string_view field = "messages");

// Appends finetune.py's rendering of one message: "<|system|>\n" c "\n", "<|user|>\n" c "\n"
// or "<|assistant|>\n" c `eos` "\n", with c .strip()'ed as Python does (every role, unlike
// the inference template). Returns the byte offset just after an assistant's `eos`
// (text.size() before the final "\n"), else text.size().
size_t append_tulu_message(std::string& text, const Message& message, std::string_view eos);

}  // namespace tulu
