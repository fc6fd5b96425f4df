// OpenAI routes (see openai_routes.h). Field semantics follow the OpenAI API reference;
// logprobs are the model's log-softmax (after presence / frequency penalties) of each
// chosen token and its top alternatives.
#include "serve/openai_routes.h"

#include <httplib.h>

#include <functional>
#include <memory>

#include "core/error.h"
#include "serve/request_fields.h"

namespace tulu {

namespace {

constexpr int kMaxChoices = 16;
constexpr size_t kMaxStopStrings = 4;  // OpenAI's limit

// The request fields chat and completions share (parse_sampling, parse_stream, and
// model / user, which are checked and ignored); each endpoint adds its own.
constexpr const char* kSharedFields[] = {
    "model", "temperature",        "top_p",  "top_k",         "min_p",
    "n",     "repetition_penalty", "stop",   "seed",          "presence_penalty",
    "user",  "frequency_penalty",  "stream", "stream_options"};

// The sampling fields both endpoints share, into spec.
void parse_sampling(const RequestFields& f, GenerationSpec& spec, const char* max_tokens_key) {
  if (auto v = f.integer(max_tokens_key, 1, 1 << 30))
    spec.overrides.max_new_tokens = static_cast<int>(*v);
  if (auto v = f.number("temperature", 0.0, 2.0)) spec.overrides.temperature = *v;
  if (auto v = f.number("top_p", 0.0, 1.0)) {
    if (*v <= 0.0) f.fail("top_p", "must be in (0, 1]");
    spec.overrides.top_p = *v;
  }
  // Extensions many OpenAI-compatible servers accept (vLLM, llama.cpp).
  if (auto v = f.integer("top_k", 0, 1 << 30)) spec.overrides.top_k = static_cast<int>(*v);
  if (auto v = f.number("min_p", 0.0, 1.0)) spec.overrides.min_p = *v;
  if (auto v = f.number("repetition_penalty", 1e-6, 1e6)) spec.overrides.repetition_penalty = *v;
  if (auto v = f.integer("n", 1, kMaxChoices)) spec.n = static_cast<int>(*v);
  if (auto v = f.integer("seed", 0, INT64_MAX)) spec.overrides.seed = static_cast<uint64_t>(*v);
  spec.overrides.stop_strings = f.string_or_list("stop", kMaxStopStrings);
  if (auto v = f.number("presence_penalty", -2.0, 2.0)) spec.presence_penalty = *v;
  if (auto v = f.number("frequency_penalty", -2.0, 2.0)) spec.frequency_penalty = *v;
  if (f.has("model")) (void)f.string("model");
  if (f.has("user")) (void)f.string("user");
}

struct StreamFlags {
  bool stream = false;
  bool include_usage = false;
};

StreamFlags parse_stream(const RequestFields& f) {
  StreamFlags flags;
  flags.stream = f.boolean("stream").value_or(false);
  if (f.has("stream_options")) {
    if (!flags.stream) f.fail("stream_options", "only allowed when stream is true");
    const RequestFields options(f.raw("stream_options"), "stream_options", 400);
    options.reject_unknown({"include_usage"});
    flags.include_usage = options.boolean("include_usage").value_or(false);
  }
  return flags;
}

// cached_tokens < 0: not reported (streams).
Json usage_json(int prompt_tokens, int completion_tokens, int cached_tokens = -1) {
  Json usage{{"prompt_tokens", prompt_tokens},
             {"completion_tokens", completion_tokens},
             {"total_tokens", prompt_tokens + completion_tokens}};
  if (cached_tokens >= 0) usage["prompt_tokens_details"] = {{"cached_tokens", cached_tokens}};
  return usage;
}

Json bytes_of(const std::string& text) {
  Json bytes = Json::array();
  for (const char c : text) bytes.push_back(static_cast<int>(static_cast<unsigned char>(c)));
  return bytes;
}

// Chat logprobs entries ({"token", "logprob", "bytes", "top_logprobs"}) for tokens.
Json chat_logprobs(const Tokenizer& tokenizer, const std::vector<SampledToken>& tokens) {
  Json content = Json::array();
  for (const SampledToken& t : tokens) {
    const std::string text = token_text(tokenizer, t.id);
    Json top = Json::array();
    for (const auto& [id, logprob] : t.top) {
      const std::string alt = token_text(tokenizer, id);
      top.push_back({{"token", alt}, {"logprob", logprob}, {"bytes", bytes_of(alt)}});
    }
    content.push_back({{"token", text},
                       {"logprob", t.logprob},
                       {"bytes", bytes_of(text)},
                       {"top_logprobs", top}});
  }
  return Json{{"content", content}};
}

// Legacy completions logprobs: {"tokens", "token_logprobs", "top_logprobs", "text_offset"}.
Json completion_logprobs(const Tokenizer& tokenizer, const std::vector<SampledToken>& tokens,
                         size_t text_offset) {
  Json out = {{"tokens", Json::array()},
              {"token_logprobs", Json::array()},
              {"top_logprobs", Json::array()},
              {"text_offset", Json::array()}};
  for (const SampledToken& t : tokens) {
    const std::string text = token_text(tokenizer, t.id);
    out["tokens"].push_back(text);
    out["token_logprobs"].push_back(t.logprob);
    Json top = Json::object();
    for (const auto& [id, logprob] : t.top) top[token_text(tokenizer, id)] = logprob;
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(text_offset);
    text_offset += text.size();
  }
  return out;
}

std::string message_content(const Json& content, size_t index) {
  const std::string where = str_cat("messages[", index, "].content");
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    // Content parts: only text parts are supported.
    std::string text;
    for (const Json& part : content) {
      if (!part.is_object() || part.value("type", Json()) != "text" || !part.contains("text") ||
          !part["text"].is_string()) {
        throw ApiError(
            400, str_cat(where, ": only {\"type\": \"text\", \"text\": ...} parts are supported"),
            "invalid_request_error", where);
      }
      text += part["text"].get<std::string>();
    }
    return text;
  }
  throw ApiError(
      400,
      str_cat(where, ": expected a string or a list of text parts, got ", json_preview(content)),
      "invalid_request_error", where);
}

std::vector<ChatMessage> parse_messages(const RequestFields& f) {
  if (!f.has("messages")) f.fail("messages", "is required");
  const Json& list = f.raw("messages");
  if (!list.is_array())
    f.fail("messages", str_cat("expected a list of messages, got ", json_preview(list)));
  if (list.empty()) f.fail("messages", "must contain at least one message");
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < list.size(); ++i) {
    const RequestFields m(list[i], str_cat("messages[", i, "]"), 400);
    m.reject_unknown({"role", "content", "name"});
    const std::string where = str_cat("messages[", i, "].role");
    const std::optional<std::string> role = m.string("role");
    if (!role) throw ApiError(400, where + " is required", "invalid_request_error", where);
    std::string r = *role == "developer" ? "system" : *role;
    if (r != "system" && r != "user" && r != "assistant") {
      throw ApiError(400, str_cat(where, ": must be system, user or assistant, got '", *role, "'"),
                     "invalid_request_error", where);
    }
    if (!m.has("content")) {
      throw ApiError(400, str_cat("messages[", i, "].content is required"), "invalid_request_error",
                     str_cat("messages[", i, "].content"));
    }
    messages.push_back({r, message_content(m.raw("content"), i)});
  }
  return messages;
}

Json chunk_base(const std::string& id, const char* object, int64_t created,
                const std::string& model) {
  return Json{{"id", id}, {"object", object}, {"created", created}, {"model", model}};
}

// A whole (non-streamed) response: the envelope, the choices and the usage summed over
// them (cached tokens: those of the first choice; each choice may land in another slot).
Json full_response(const std::string& id, const char* object, int64_t created,
                   const ServeContext& context, const GenerationSpec& spec,
                   const std::vector<ChoiceResult>& results,
                   const std::function<Json(const ChoiceResult&)>& choice_body) {
  Json choices = Json::array();
  int completion_tokens = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    completion_tokens += results[i].completion_tokens;
    Json choice = {{"index", i}};
    choice.update(choice_body(results[i]));
    choice["finish_reason"] = openai_finish_reason(results[i].finish_reason);
    choices.push_back(std::move(choice));
  }
  Json out = chunk_base(id, object, created, context.model_name);
  out["choices"] = choices;
  out["usage"] = usage_json(static_cast<int>(spec.prompt_ids.size()), completion_tokens,
                            results.empty() ? 0 : results[0].cached_tokens);
  out["system_fingerprint"] = nullptr;
  return out;
}

// Streams: renders one choice as a chunk of the stream (usage: null on every chunk when
// the client asked for the usage chunk, as OpenAI does).
std::function<std::string(Json)> chunk_writer(const Json& base, StreamFlags flags) {
  return [base, flags](Json choice) {
    Json c = base;
    c["choices"] = Json::array({std::move(choice)});
    if (flags.include_usage) c["usage"] = nullptr;
    return sse_data(c);
  };
}

// Streams: what follows the last choice's end: the usage chunk (when asked), [DONE].
std::function<std::string()> stream_end(const Json& base, StreamFlags flags, int prompt_tokens,
                                        std::shared_ptr<int> completion_tokens) {
  return [=]() {
    std::string out;
    if (flags.include_usage) {
      Json c = base;
      c["choices"] = Json::array();
      c["usage"] = usage_json(prompt_tokens, *completion_tokens);
      out += sse_data(c);
    }
    return out + "data: [DONE]\n\n";
  };
}

// Streams: a choice's end: its token count, an error event if it failed, and the chunk
// with finish_reason (`choice_end` gives the empty delta / text fields of that chunk).
std::string end_of_choice(const SequenceEvent& e, int& completion_tokens,
                          const std::function<std::string(Json)>& chunk, Json choice_end) {
  completion_tokens += e.completion_tokens;
  std::string out;
  if (!e.error.empty()) {
    out += sse_data(error_body(ApiStyle::OpenAI, ApiError(500, e.error, "server_error")));
  }
  Json choice = {{"index", e.choice}};
  choice.update(choice_end);
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = openai_finish_reason(e.finish_reason);
  return out + chunk(std::move(choice));
}

void handle_chat(ServeContext& context, const httplib::Request& req, httplib::Response& res) {
  const Json body = parse_request_body(req.body);
  const RequestFields f(body, "the request body", 400);
  static constexpr const char* kChatFields[] = {"messages", "max_tokens", "max_completion_tokens",
                                                "logprobs", "top_logprobs"};
  f.reject_unknown(kSharedFields, kChatFields);
  GenerationSpec spec;
  const std::vector<ChatMessage> messages = parse_messages(f);
  parse_sampling(f, spec, f.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens");
  if (f.boolean("logprobs").value_or(false)) {
    spec.top_logprobs = static_cast<int>(f.integer("top_logprobs", 0, 20).value_or(0));
  } else if (f.has("top_logprobs")) {
    f.fail("top_logprobs", "requires logprobs: true");
  }
  const StreamFlags flags = parse_stream(f);
  const std::string text =
      render_chat(context.chat_format, messages, /*add_generation_prompt=*/true);
  spec.prompt_ids = context.tokenizer.encode(text, /*add_bos=*/true);

  auto in_flight = std::make_shared<InFlight>(context, ApiStyle::OpenAI);
  auto channel = submit_sequences(context, make_sequences(context, spec, 400), ApiStyle::OpenAI);
  const std::string id = "chatcmpl-" + random_id();
  const int64_t created = unix_seconds();
  const bool logprobs = spec.top_logprobs >= 0;
  const Tokenizer& tokenizer = context.tokenizer;
  if (!flags.stream) {
    reply_json(
        res, full_response(
                 id, "chat.completion", created, context, spec,
                 collect_choices(context, *channel, spec.n, req), [&](const ChoiceResult& r) {
                   return Json{
                       {"message", {{"role", "assistant"}, {"content", r.text}}},
                       {"logprobs", logprobs ? chat_logprobs(tokenizer, r.tokens) : Json(nullptr)}};
                 }));
    return;
  }
  const Json base = chunk_base(id, "chat.completion.chunk", created, context.model_name);
  auto started = std::make_shared<std::vector<bool>>(static_cast<size_t>(spec.n), false);
  auto completion_tokens = std::make_shared<int>(0);
  const int prompt_tokens = static_cast<int>(spec.prompt_ids.size());
  const auto chunk = chunk_writer(base, flags);
  stream_choices(
      context, res, channel, spec.n, in_flight,
      [=, &tokenizer](const SequenceEvent& e) {
        std::string out;
        const auto i = static_cast<size_t>(e.choice);
        if (!(*started)[i]) {  // the first chunk of a choice carries the role
          (*started)[i] = true;
          out += chunk({{"index", e.choice},
                        {"delta", {{"role", "assistant"}, {"content", ""}}},
                        {"logprobs", nullptr},
                        {"finish_reason", nullptr}});
        }
        if (!e.text.empty() || (logprobs && e.token)) {
          Json lp = nullptr;
          if (logprobs && e.token) lp = chat_logprobs(tokenizer, {*e.token});
          out += chunk({{"index", e.choice},
                        {"delta", {{"content", e.text}}},
                        {"logprobs", lp},
                        {"finish_reason", nullptr}});
        }
        if (e.done) {
          out += end_of_choice(e, *completion_tokens, chunk, {{"delta", Json::object()}});
        }
        return out;
      },
      stream_end(base, flags, prompt_tokens, completion_tokens));
}

void handle_completions(ServeContext& context, const httplib::Request& req,
                        httplib::Response& res) {
  const Json body = parse_request_body(req.body);
  const RequestFields f(body, "the request body", 400);
  static constexpr const char* kCompletionFields[] = {"prompt", "max_tokens", "logprobs",
                                                      "echo",   "best_of",    "suffix"};
  f.reject_unknown(kSharedFields, kCompletionFields);
  GenerationSpec spec;
  if (!f.has("prompt")) f.fail("prompt", "is required");
  const Json& prompt = f.raw("prompt");
  std::string prompt_text;
  if (prompt.is_string()) {
    prompt_text = prompt.get<std::string>();
    spec.prompt_ids = context.tokenizer.encode(prompt_text, /*add_bos=*/true);
  } else if (prompt.is_array() && !prompt.empty() && prompt[0].is_number_integer()) {
    // A list of token ids, used as given.
    for (const Json& id : prompt) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() >= context.tokenizer.vocab_size()) {
        f.fail("prompt", str_cat("token ids must be integers in [0, ",
                                 context.tokenizer.vocab_size(), "), got ", json_preview(id)));
      }
      spec.prompt_ids.push_back(id.get<int>());
    }
    prompt_text = context.tokenizer.decode(spec.prompt_ids, /*skip_special=*/true);
  } else if (prompt.is_array() && prompt.size() == 1 && prompt[0].is_string()) {
    prompt_text = prompt[0].get<std::string>();
    spec.prompt_ids = context.tokenizer.encode(prompt_text, /*add_bos=*/true);
  } else {
    f.fail("prompt", str_cat("expected a string, a list of one string or a list of token ids, got ",
                             json_preview(prompt)));
  }
  // OpenAI's default for the legacy endpoint.
  spec.overrides.max_new_tokens = 16;
  parse_sampling(f, spec, "max_tokens");
  if (auto v = f.integer("logprobs", 0, 5)) spec.top_logprobs = static_cast<int>(*v);
  const bool echo = f.boolean("echo").value_or(false);
  if (auto best_of = f.integer("best_of", 1, kMaxChoices); best_of && *best_of != spec.n) {
    f.fail("best_of", "only best_of = n is supported");
  }
  if (f.has("suffix")) f.fail("suffix", "is not supported");
  const StreamFlags flags = parse_stream(f);

  auto in_flight = std::make_shared<InFlight>(context, ApiStyle::OpenAI);
  auto channel = submit_sequences(context, make_sequences(context, spec, 400), ApiStyle::OpenAI);
  const std::string id = "cmpl-" + random_id();
  const int64_t created = unix_seconds();
  const bool logprobs = spec.top_logprobs >= 0;
  const std::string prefix = echo ? prompt_text : "";
  const Tokenizer& tokenizer = context.tokenizer;
  if (!flags.stream) {
    reply_json(
        res,
        full_response(id, "text_completion", created, context, spec,
                      collect_choices(context, *channel, spec.n, req), [&](const ChoiceResult& r) {
                        return Json{{"text", prefix + r.text},
                                    {"logprobs", logprobs ? completion_logprobs(tokenizer, r.tokens,
                                                                                prefix.size())
                                                          : Json(nullptr)}};
                      }));
    return;
  }
  const Json base = chunk_base(id, "text_completion", created, context.model_name);
  auto started = std::make_shared<std::vector<bool>>(static_cast<size_t>(spec.n), false);
  auto offsets = std::make_shared<std::vector<size_t>>(static_cast<size_t>(spec.n), prefix.size());
  auto completion_tokens = std::make_shared<int>(0);
  const int prompt_tokens = static_cast<int>(spec.prompt_ids.size());
  const auto chunk = chunk_writer(base, flags);
  stream_choices(
      context, res, channel, spec.n, in_flight,
      [=, &tokenizer](const SequenceEvent& e) {
        std::string out;
        const auto i = static_cast<size_t>(e.choice);
        std::string text = e.text;
        if (!(*started)[i]) {
          (*started)[i] = true;
          text = prefix + text;
        }
        if (!text.empty() || (logprobs && e.token)) {
          Json lp = nullptr;
          if (logprobs && e.token) {
            lp = completion_logprobs(tokenizer, {*e.token}, (*offsets)[i]);
            (*offsets)[i] += token_text(tokenizer, e.token->id).size();
          }
          out += chunk(
              {{"index", e.choice}, {"text", text}, {"logprobs", lp}, {"finish_reason", nullptr}});
        }
        if (e.done) out += end_of_choice(e, *completion_tokens, chunk, {{"text", ""}});
        return out;
      },
      stream_end(base, flags, prompt_tokens, completion_tokens));
}

}  // namespace

void register_openai_routes(httplib::Server& server, ServeContext& context) {
  server.Post("/v1/chat/completions",
              [&context](const httplib::Request& req, httplib::Response& res) {
                guarded_route(context, res, ApiStyle::OpenAI, "/v1/chat/completions",
                              [&] { handle_chat(context, req, res); });
              });
  server.Post("/v1/completions", [&context](const httplib::Request& req, httplib::Response& res) {
    guarded_route(context, res, ApiStyle::OpenAI, "/v1/completions",
                  [&] { handle_completions(context, req, res); });
  });
  server.Get("/v1/models", [&context](const httplib::Request&, httplib::Response& res) {
    guarded_route(context, res, ApiStyle::OpenAI, "/v1/models", [&] {
      reply_json(res, {{"object", "list"},
                       {"data", Json::array({{{"id", context.model_name},
                                              {"object", "model"},
                                              {"created", 0},
                                              {"owned_by", "tulu.cpp"}}})}});
    });
  });
}

}  // namespace tulu
