// StopStringMatcher: text is released only when it can no longer be part of a stop string;
// checked against a direct computation on the whole text for many random splits.
#include "generate/stop_strings.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace tulu {
namespace {

struct Streamed {
  std::string text;
  bool stopped = false;
};

// Feeds `text` in the given pieces; checks after each push that the released text so far
// never contains the start of a stop string that could still complete.
Streamed stream(const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
  StopStringMatcher matcher(stops);
  Streamed out;
  for (const std::string& piece : pieces) {
    out.text += matcher.push(piece);
    if (matcher.stopped()) break;
  }
  out.text += matcher.flush();
  out.stopped = matcher.stopped();
  return out;
}

// Expected result from the whole text: cut at the earliest occurrence of any stop string.
Streamed whole(const std::vector<std::string>& stops, const std::string& text) {
  size_t cut = std::string::npos;
  for (const std::string& stop : stops) cut = std::min(cut, text.find(stop));
  if (cut == std::string::npos) return {text, false};
  return {text.substr(0, cut), true};
}

TEST(StopStrings, StopStringSpanningSeveralPiecesIsCutAndNotEmitted) {
  const Streamed out = stream({"<|user|>"}, {"Hello", " there<", "|us", "er", "|>\nmore"});
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.text, "Hello there");
}

TEST(StopStrings, PossibleStartIsHeldBackUntilDecided) {
  StopStringMatcher matcher({"###"});
  EXPECT_EQ(matcher.push("a#"), "a");
  EXPECT_EQ(matcher.push("#"), "");
  EXPECT_EQ(matcher.push("b"), "##b");  // not a stop string after all
  EXPECT_EQ(matcher.push("##"), "");
  EXPECT_EQ(matcher.flush(), "##");  // end of stream: held text is final
  EXPECT_FALSE(matcher.stopped());
}

TEST(StopStrings, EarliestOfSeveralStopStringsWins) {
  const Streamed out = stream({"World", "lo W"}, {"Hel", "lo Wor", "ld"});
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.text, "Hel");
}

TEST(StopStrings, NoStopStringsReleasesEverything) {
  StopStringMatcher matcher({});
  EXPECT_EQ(matcher.push("abc"), "abc");
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopStrings, EmptyStopStringIsAnError) {
  try {
    StopStringMatcher matcher({"x", ""});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--stop"), std::string::npos) << e.what();
  }
}

TEST(StopStrings, RandomSplitsMatchWholeTextCut) {
  std::mt19937 rng(5);
  const std::string alphabet = "ab#\n";
  const std::vector<std::vector<std::string>> stop_sets = {
      {"##"}, {"a#b"}, {"\n\n", "b#"}, {"aaa", "ab"}, {"#a#a#"}};
  for (int trial = 0; trial < 3000; ++trial) {
    std::uniform_int_distribution<int> length(0, 30), letter(0, 3), cut(1, 4);
    std::string text;
    for (int i = length(rng); i > 0; --i) text += alphabet[static_cast<size_t>(letter(rng))];
    std::vector<std::string> pieces;
    for (size_t pos = 0; pos < text.size();) {
      const size_t n = std::min(text.size() - pos, static_cast<size_t>(cut(rng)));
      pieces.push_back(text.substr(pos, n));
      pos += n;
    }
    const auto& stops = stop_sets[static_cast<size_t>(trial) % stop_sets.size()];
    const Streamed got = stream(stops, pieces);
    const Streamed expected = whole(stops, text);
    ASSERT_EQ(got.text, expected.text) << "text '" << text << "'";
    ASSERT_EQ(got.stopped, expected.stopped) << "text '" << text << "'";
  }
}

TEST(StopStrings, MultiByteCharactersAreNeverSplit) {
  // "é" is C3 A9; the stop string starts with the same lead byte as "é" but differs after.
  StopStringMatcher matcher({"\xC3\xA8nd"});
  const std::string released = matcher.push("caf\xC3\xA9");
  EXPECT_EQ(released, "caf\xC3\xA9");
  EXPECT_EQ(matcher.push("\xC3\xA8n"), "");
  EXPECT_EQ(matcher.push("d!"), "");
  EXPECT_TRUE(matcher.stopped());
}

}  // namespace
}  // namespace tulu
