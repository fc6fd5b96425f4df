// Chat-format structure (the layouts TULU2.md and the published templates define; the
// exact texts are checked against open-instruct and jinja2 in tests/py), names, detection
// and role errors.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"
#include "tokenizer/chat_format.h"

namespace tulu {
namespace {

const std::string kLlamaDir = std::string(TULU_SOURCE_DIR) + "/data/llama2-tokenizer";

const std::vector<ChatMessage> kConversation{
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "  Hello!\n"}, {"user", "Bye"}};

TEST(ChatFormat, TuluLayout) {
  const std::string text = render_chat(ChatFormat::Tulu, kConversation, true);
  EXPECT_EQ(text,
            "<|system|>\nBe "
            "brief.\n<|user|>\nHi\n<|assistant|>\nHello!</s>\n<|user|>\nBye\n<|assistant|>\n");
  const std::string without = render_chat(ChatFormat::Tulu, kConversation, false);
  EXPECT_EQ(without + "<|assistant|>\n", text);
}

TEST(ChatFormat, TuluStripsAssistantWithPythonWhitespace) {
  // U+3000 and U+00A0 are whitespace for Python's str.strip().
  const std::vector<ChatMessage> m{{"assistant", "\xE3\x80\x80 ok \xC2\xA0"}};
  EXPECT_EQ(render_chat(ChatFormat::Tulu, m, false), "<|assistant|>\nok</s>\n");
}

TEST(ChatFormat, OtherLayouts) {
  EXPECT_EQ(render_chat(ChatFormat::Zephyr, kConversation, true),
            "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n  "
            "Hello!\n</s>\n<|user|>\nBye</s>\n"
            "<|assistant|>\n");
  EXPECT_EQ(render_chat(ChatFormat::ChatML, kConversation, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n  Hello!\n<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
            "<|im_start|>assistant\n");
  // No leading <s> (the tokenizer adds it); later turns carry a literal "<s>".
  EXPECT_EQ(render_chat(ChatFormat::Llama2Chat, kConversation, true),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]");
}

TEST(ChatFormat, RoleErrors) {
  const std::vector<ChatMessage> bad_role{{"user", "a"}, {"tool", "b"}};
  for (ChatFormat f :
       {ChatFormat::Tulu, ChatFormat::Llama2Chat, ChatFormat::Zephyr, ChatFormat::ChatML}) {
    try {
      render_chat(f, bad_role, true);
      ADD_FAILURE() << "no error for role 'tool'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("message 1"), std::string::npos) << e.what();
    }
  }
  const std::vector<ChatMessage> not_alternating{{"user", "a"}, {"user", "b"}};
  EXPECT_THROW(render_chat(ChatFormat::Llama2Chat, not_alternating, true), Error);
  EXPECT_THROW(render_chat(ChatFormat::Llama2Chat, {}, true), Error);
}

TEST(ChatFormat, Names) {
  for (ChatFormat f :
       {ChatFormat::Tulu, ChatFormat::Llama2Chat, ChatFormat::Zephyr, ChatFormat::ChatML}) {
    EXPECT_EQ(parse_chat_format(chat_format_name(f)), f);
  }
  try {
    parse_chat_format("vicuna");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tulu, llama-2-chat, zephyr, chatml"), std::string::npos);
  }
}

TEST(ChatFormat, DetectsTheShippedTuluTemplate) {
  const Json config = read_json_file(kLlamaDir + "/tokenizer_config.json");
  const std::string tulu_template = config.at("chat_template").get<std::string>();
  EXPECT_EQ(detect_chat_format(tulu_template), ChatFormat::Tulu);
  EXPECT_EQ(chat_format_for_dir(kLlamaDir), ChatFormat::Tulu);
  // Whitespace inside tags does not matter; inside literals and between tags it does.
  std::string spaced = tulu_template;
  spaced.replace(spaced.find("{% for"), 6, "{%  for");
  EXPECT_EQ(detect_chat_format(spaced), ChatFormat::Tulu);
  std::string changed = tulu_template;
  changed.replace(changed.find("'<|user|>\n'"), 11, "'<|user|> \n'");
  EXPECT_EQ(detect_chat_format(changed), std::nullopt);
  // Zephyr's template is Tulu 2's plus eos_token after user/system turns.
  std::string zephyr_like = tulu_template;
  zephyr_like.replace(zephyr_like.find("message['content'] }}"), 21,
                      "message['content'] + eos_token }}");
  EXPECT_NE(detect_chat_format(zephyr_like), ChatFormat::Tulu);
  EXPECT_EQ(detect_chat_format("{{ messages }}"), std::nullopt);
}

}  // namespace
}  // namespace tulu
