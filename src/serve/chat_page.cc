#include "serve/chat_page.h"

namespace tulu {

std::string_view chat_page_html() {
  static constexpr std::string_view kPage = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tulu chat</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; height: 100vh; }
  #settings { width: 260px; padding: 12px; border-right: 1px solid #ccc; background: #f7f7f7; }
  #settings label { display: block; margin-top: 10px; font-size: 13px; }
  #settings input, #settings textarea { width: 100%; box-sizing: border-box; }
  #main { flex: 1; display: flex; flex-direction: column; }
  #messages { flex: 1; overflow-y: auto; padding: 12px; }
  .message { margin: 8px 0; padding: 8px 10px; border-radius: 6px; white-space: pre-wrap; }
  .user { background: #dbeafe; }
  .assistant { background: #eee; }
  .error { background: #fde2e2; color: #900; }
  #composer { display: flex; padding: 8px; border-top: 1px solid #ccc; }
  #input { flex: 1; min-height: 48px; }
</style>
</head>
<body>
<div id="settings">
  <h3>tulu chat</h3>
  <label>System prompt <textarea id="system" rows="4"></textarea></label>
  <label>Temperature (0 = greedy) <input id="temperature" type="number" min="0" max="2" step="0.1" value="0"></label>
  <label>Top p <input id="top_p" type="number" min="0.01" max="1" step="0.05" value="1"></label>
  <label>Max tokens <input id="max_tokens" type="number" min="1" value="256"></label>
  <label>Seed (optional) <input id="seed" type="number" min="0"></label>
  <label>API key (optional) <input id="api_key" type="password"></label>
  <p><button id="reset">New chat</button></p>
</div>
<div id="main">
  <div id="messages"></div>
  <div id="composer">
    <textarea id="input" placeholder="Message (Enter sends, Shift+Enter: new line)"></textarea>
    <button id="send">Send</button>
  </div>
</div>
<script>
"use strict";
const history = [];
const $ = (id) => document.getElementById(id);
let busy = false;

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "message " + role;
  div.textContent = text;
  $("messages").appendChild(div);
  $("messages").scrollTop = $("messages").scrollHeight;
  return div;
}

async function send() {
  const text = $("input").value.trim();
  if (!text || busy) return;
  busy = true;
  $("send").disabled = true;
  $("input").value = "";
  addMessage("user", text);
  history.push({ role: "user", content: text });
  const messages = [];
  if ($("system").value.trim()) messages.push({ role: "system", content: $("system").value });
  messages.push(...history);
  const body = { messages, stream: true, temperature: Number($("temperature").value),
                 top_p: Number($("top_p").value), max_tokens: Number($("max_tokens").value) };
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  const headers = { "Content-Type": "application/json" };
  if ($("api_key").value) headers["Authorization"] = "Bearer " + $("api_key").value;
  const bubble = addMessage("assistant", "");
  let reply = "";
  try {
    const response = await fetch("/v1/chat/completions", { method: "POST", headers, body: JSON.stringify(body) });
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      throw new Error((error.error && error.error.message) || ("HTTP " + response.status));
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!event.startsWith("data: ")) continue;
        const payload = event.slice(6);
        if (payload === "[DONE]") continue;
        const chunk = JSON.parse(payload);
        if (chunk.error) throw new Error(chunk.error.message);
        for (const choice of chunk.choices || []) {
          reply += (choice.delta && choice.delta.content) || "";
        }
        bubble.textContent = reply;
      }
    }
    history.push({ role: "assistant", content: reply });
    bubble.dataset.done = "true";
  } catch (e) {
    bubble.className = "message error";
    bubble.textContent = "Error: " + e.message;
    history.pop();
  }
  busy = false;
  $("send").disabled = false;
}

$("send").addEventListener("click", send);
$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); }
});
$("reset").addEventListener("click", () => { history.length = 0; $("messages").innerHTML = ""; });
</script>
</body>
</html>
)HTML";
  return kPage;
}

}  // namespace tulu
