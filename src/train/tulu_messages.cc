// See tulu_messages.h.
#include "train/tulu_messages.h"

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace tulu {

const Json* find_field(const Json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

void field_error(const std::string& where, std::string_view field, std::string_view expected,
                 const Json& got) {
  fail(where, ": field ", field, ": expected ", expected, ", got ", json_preview(got));
}

std::string_view string_field(const Json& value, const std::string& where, std::string_view field) {
  if (!value.is_string()) field_error(where, field, "a string", value);
  return value.get_ref<const std::string&>();
}

std::vector<Message> parse_messages(const Json& messages, const std::string& where,
                                    std::string_view field) {
  if (!messages.is_array()) field_error(where, field, "an array of messages", messages);
  TULU_CHECK(!messages.empty(), where, ": field ", field,
             ": expected at least one message, got []");
  std::vector<Message> parsed;
  parsed.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& message = messages[i];
    const std::string name = str_cat(field, "[", i, "]");
    if (!message.is_object()) {
      field_error(where, name, "an object {\"role\", \"content\"}", message);
    }
    const Json* role = find_field(message, "role");
    const Json* content = find_field(message, "content");
    TULU_CHECK(role != nullptr, where, ": field ", name, ".role: missing");
    TULU_CHECK(content != nullptr, where, ": field ", name, ".content: missing");
    const std::string_view role_name = string_field(*role, where, name + ".role");
    Message m{Role::User, string_field(*content, where, name + ".content")};
    if (role_name == "system") {
      m.role = Role::System;
    } else if (role_name == "user") {
      m.role = Role::User;
    } else if (role_name == "assistant") {
      m.role = Role::Assistant;
    } else {
      field_error(where, name + ".role", "\"system\", \"user\" or \"assistant\"", *role);
    }
    parsed.push_back(m);
  }
  return parsed;
}

size_t append_tulu_message(std::string& text, const Message& message, std::string_view eos) {
  const std::string_view content = utf8::python_strip(message.content);
  switch (message.role) {
    case Role::System:
      text.append("<|system|>\n").append(content).append("\n");
      return text.size();
    case Role::User:
      text.append("<|user|>\n").append(content).append("\n");
      return text.size();
    case Role::Assistant:
      break;
  }
  text.append("<|assistant|>\n").append(content).append(eos);
  const size_t after_eos = text.size();
  text += "\n";
  return after_eos;
}

}  // namespace tulu
