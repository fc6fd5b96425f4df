// The web chat page served at GET /: one static HTML file (no external resources) that
// talks to /v1/chat/completions with streaming — multi-turn chat, a system prompt, sampling
// settings and an optional API key.
#pragma once

#include <string_view>

namespace tulu {

std::string_view chat_page_html();

}  // namespace tulu
