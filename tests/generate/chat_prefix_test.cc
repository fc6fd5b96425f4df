// What `tulu chat` relies on to reuse the KV cache across turns, checked with the real Llama 2
// tokenizer and the chat formats: the ids of turn k's prompt (conversation so far plus the
// generation prompt) are a prefix of the ids of turn k+1's prompt. And when the model's
// reply is the tokenizer's own spelling of the reply text after the prompt, the reply's ids
// are part of that prefix too (so a trained model's reply is not re-evaluated).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace tulu {
namespace {

bool is_prefix(const std::vector<int>& prefix, const std::vector<int>& ids) {
  return prefix.size() <= ids.size() && std::equal(prefix.begin(), prefix.end(), ids.begin());
}

std::string stripped(const std::string& s) {
  const size_t first = s.find_first_not_of(" \n");
  return first == std::string::npos ? "" : s.substr(first, s.find_last_not_of(" \n") + 1 - first);
}

TEST(ChatPrefix, EachTurnsPromptIsAPrefixOfTheNext) {
  const auto tokenizer = Tokenizer::load_dir(TULU_SOURCE_DIR "/data/llama2-tokenizer");
  const std::vector<std::vector<std::string>> conversations = {
      {"Hello there", "Hi! How can I help?", "What is 2+2?", "4.", "Thanks"},
      {"Write code", "def f(x):\n    return x * 2\n", "Explain it", "It doubles x.", "ok"},
      {"  spaces  ", "  padded reply with trailing newline\n\n", "ünïcödé 你好", "🙂 sure", "bye"},
  };
  for (const ChatFormat format :
       {ChatFormat::Tulu, ChatFormat::Zephyr, ChatFormat::ChatML, ChatFormat::Llama2Chat}) {
    for (const auto& turns : conversations) {
      std::vector<ChatMessage> messages = {{"system", "You are concise."}};
      std::vector<int> previous_prompt;
      for (size_t i = 0; i < turns.size(); i += 2) {
        messages.push_back({"user", turns[i]});
        const std::string prompt_text = render_chat(format, messages, /*add_generation_prompt=*/true);
        const std::vector<int> prompt = tokenizer->encode(prompt_text, /*add_bos=*/true);
        EXPECT_TRUE(is_prefix(previous_prompt, prompt))
            << chat_format_name(format) << " turn " << i / 2 << ": " << prompt_text;
        if (i + 1 >= turns.size()) break;
        // The reply as the tokenizer spells it after the prompt (what a trained model emits).
        const std::string reply = turns[i + 1];
        const std::vector<int> with_reply = tokenizer->encode(prompt_text + reply, true);
        messages.push_back({"assistant", reply});
        const std::vector<int> next = tokenizer->encode(
            render_chat(format, messages, /*add_generation_prompt=*/false), true);
        if (format == ChatFormat::Tulu) {
          // Tulu stores the reply stripped, then "</s>\n": prompt + reply ids carry over
          // whenever the reply has no surrounding whitespace.
          if (reply == stripped(reply)) {
            EXPECT_TRUE(is_prefix(with_reply, next)) << "reply '" << reply << "'";
          }
        }
        previous_prompt = prompt;
      }
    }
  }
}

}  // namespace
}  // namespace tulu
