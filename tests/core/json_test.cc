#include "core/json.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace tulu {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Json, SyntaxErrorNamesSourceAndOffset) {
  std::string msg = error_of([] { parse_json("{\"a\": 1,,}", "config.json"); });
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("byte"), std::string::npos) << msg;
}

TEST(Json, TypedAccessorsNameTheField) {
  Json j = parse_json(R"({"hidden_size": "4096", "eps": 1e-6, "n": 8.0, "frac": 8.5, "flag": true})", "c.json");
  EXPECT_EQ(json_int(j, "n", "c.json"), 8);
  EXPECT_DOUBLE_EQ(json_number(j, "eps", "c.json"), 1e-6);
  EXPECT_TRUE(json_bool(j, "flag", "c.json"));
  std::string msg = error_of([&] { json_int(j, "hidden_size", "c.json"); });
  EXPECT_NE(msg.find("'hidden_size'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"4096\""), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { json_int(j, "frac", "c.json"); }).find("integer"), std::string::npos);
  EXPECT_NE(error_of([&] { json_int(j, "absent", "c.json"); }).find("missing required field 'absent'"),
            std::string::npos);
  EXPECT_FALSE(json_opt_int(j, "absent", "c.json").has_value());
  EXPECT_THROW(json_opt_string(j, "eps", "c.json"), Error);
  EXPECT_THROW(json_int(Json::array(), "x", "c.json"), Error);
}

TEST(Json, PreviewIsShortAndSafeOnDeepNesting) {
  // 100,000 levels: Json::dump would recurse once per level and overflow the stack.
  const std::string deep = std::string(100000, '[') + "1" + std::string(100000, ']');
  const Json j = parse_json(deep, "deep.json");
  EXPECT_EQ(json_preview(j), "[[[[...]]]]");
  EXPECT_EQ(json_preview(Json::parse(R"({"a": [1, 2], "b": "x"})")), R"({"a":[1,2],"b":"x"})");
  const std::string long_text = json_preview(Json(std::string(200, 'z')));
  EXPECT_EQ(long_text.size(), 60u);
  EXPECT_EQ(long_text.substr(57), "...");
}

}  // namespace
}  // namespace tulu
