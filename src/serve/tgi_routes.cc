// text-generation-inference routes (see tgi_routes.h).
#include "serve/tgi_routes.h"

#include <httplib.h>

#include "core/error.h"
#include "serve/request_fields.h"
#include "serve/token_offsets.h"

namespace tulu {

namespace {

constexpr int kValidation = 422;  // TGI's status for invalid parameters
constexpr size_t kMaxStopSequences = 4;

struct TgiRequest {
  GenerationSpec spec;
  std::string inputs;
  bool details = false;
  bool return_full_text = false;
  bool sampled = false;
  bool add_special_tokens = true;  // BOS before the inputs (TGI's default: true)
};

// TGI's GenerateParameters into r. generation: the request generates (/generate,
// /generate_stream), so parameters it cannot honour are refused; /tokenize checks their
// types and ranges only and ignores them, as TGI does.
void parse_parameters(const RequestFields& p, TgiRequest& r, bool& do_sample, bool generation) {
  GenerationOverrides& o = r.spec.overrides;
  p.reject_unknown({"max_new_tokens", "temperature", "top_k", "top_p", "repetition_penalty",
                    "frequency_penalty", "do_sample", "seed", "stop", "return_full_text", "details",
                    "decoder_input_details", "best_of", "truncate", "typical_p", "watermark",
                    "top_n_tokens"});
  if (auto v = p.integer("max_new_tokens", 1, 1 << 30)) o.max_new_tokens = static_cast<int>(*v);
  if (auto v = p.number("temperature", 0.0, 1e6)) {
    if (*v <= 0.0) p.fail("temperature", "must be strictly positive");
    o.temperature = *v;
  }
  if (auto v = p.integer("top_k", 1, 1 << 30)) o.top_k = static_cast<int>(*v);
  if (auto v = p.number("top_p", 0.0, 1.0)) {
    if (*v <= 0.0 || *v >= 1.0) p.fail("top_p", "must be > 0.0 and < 1.0");
    o.top_p = *v;
  }
  if (auto v = p.number("repetition_penalty", 0.0, 1e6)) {
    if (*v <= 0.0) p.fail("repetition_penalty", "must be strictly positive");
    o.repetition_penalty = *v;
  }
  if (auto v = p.number("frequency_penalty", -2.0, 2.0)) r.spec.frequency_penalty = *v;
  do_sample = p.boolean("do_sample").value_or(false);
  if (auto v = p.integer("seed", 0, INT64_MAX)) o.seed = static_cast<uint64_t>(*v);
  o.stop_strings = p.string_or_list("stop", kMaxStopSequences);
  r.return_full_text = p.boolean("return_full_text").value_or(false);
  r.details = p.boolean("details").value_or(false);
  (void)p.boolean("decoder_input_details");
  (void)p.boolean("watermark");
  const std::optional<int64_t> best_of = p.integer("best_of", 1, 1 << 30);
  const std::optional<int64_t> truncate = p.integer("truncate", 1, 1 << 30);
  const std::optional<double> typical_p = p.number("typical_p", 0.0, 1.0);
  const std::optional<int64_t> top_n_tokens = p.integer("top_n_tokens", 0, 1 << 30);
  if (!generation) return;
  if (best_of && *best_of != 1) p.fail("best_of", "only 1 is supported");
  if (truncate) p.fail("truncate", "is not supported");
  if (typical_p && *typical_p < 1.0) p.fail("typical_p", "is not supported");
  if (top_n_tokens) p.fail("top_n_tokens", "is not supported");
}

// TGI's GenerateRequest: {"inputs": str, "parameters": {...}, "stream": bool,
// "add_special_tokens": bool}. Sampling is on when do_sample is true or a sampling
// parameter is set (temperature ≠ 1, top_k, top_p < 1), as TGI's NextTokenChooser; else
// greedy. generation: see parse_parameters (and /tokenize accepts empty inputs).
TgiRequest parse_generate(const ServeContext& context, const std::string& body_text,
                          bool generation = true) {
  const Json body = parse_request_body(body_text);
  const RequestFields f(body, "the request body", kValidation);
  f.reject_unknown({"inputs", "parameters", "stream", "add_special_tokens"});
  TgiRequest r;
  const std::optional<std::string> inputs = f.string("inputs");
  if (!inputs) f.fail("inputs", "is required");
  if (generation && inputs->empty()) f.fail("inputs", "must not be empty");
  r.inputs = *inputs;
  (void)f.boolean("stream");
  r.add_special_tokens = f.boolean("add_special_tokens").value_or(true);
  GenerationOverrides& o = r.spec.overrides;
  bool do_sample = false;
  if (f.has("parameters")) {
    parse_parameters(RequestFields(f.raw("parameters"), "parameters", kValidation), r, do_sample,
                     generation);
  }
  r.sampled = do_sample || (o.temperature && *o.temperature != 1.0) || o.top_k ||
              (o.top_p && *o.top_p < 1.0);
  if (!r.sampled) {
    o.temperature = 0.0;
  } else if (!o.temperature) {
    o.temperature = 1.0;  // do_sample alone: plain sampling, not the model's settings
  }
  r.spec.top_logprobs = 0;  // TGI reports each token's logprob
  if (generation) r.spec.prompt_ids = context.tokenizer.encode(r.inputs, r.add_special_tokens);
  return r;
}

Json token_json(const Tokenizer& tokenizer, const SampledToken& t) {
  return Json{{"id", t.id},
              {"text", token_text(tokenizer, t.id)},
              {"logprob", t.logprob},
              {"special", tokenizer.is_special(t.id)}};
}

Json seed_json(const TgiRequest& r, uint64_t seed) {
  return r.sampled ? Json(seed) : Json(nullptr);
}

void handle_generate(ServeContext& context, const httplib::Request& req, httplib::Response& res) {
  TgiRequest r = parse_generate(context, req.body);
  InFlight in_flight(context, ApiStyle::Tgi);
  uint64_t seed = 0;
  auto channel =
      submit_sequences(context, make_sequences(context, r.spec, kValidation, &seed), ApiStyle::Tgi);
  const ChoiceResult result = collect_choices(context, *channel, 1, req).at(0);
  Json out = {{"generated_text", (r.return_full_text ? r.inputs : "") + result.text}};
  if (r.details) {
    Json tokens = Json::array();
    for (const SampledToken& t : result.tokens) tokens.push_back(token_json(context.tokenizer, t));
    out["details"] = {{"finish_reason", tgi_finish_reason(result.finish_reason)},
                      {"generated_tokens", result.completion_tokens},
                      {"seed", seed_json(r, seed)},
                      {"prefill", Json::array()},
                      {"tokens", tokens}};
  }
  reply_json(res, out);
}

void handle_generate_stream(ServeContext& context, const httplib::Request& req,
                            httplib::Response& res) {
  auto r = std::make_shared<TgiRequest>(parse_generate(context, req.body));
  auto in_flight = std::make_shared<InFlight>(context, ApiStyle::Tgi);
  uint64_t seed = 0;
  auto channel = submit_sequences(context, make_sequences(context, r->spec, kValidation, &seed),
                                  ApiStyle::Tgi);
  // TGI sends one event per token; the last carries generated_text and details. Text
  // that a step releases without a token (held back, then released at the end) is
  // appended to the last event's token text.
  auto pending = std::make_shared<std::optional<SequenceEvent>>();
  auto full_text = std::make_shared<std::string>();
  const Tokenizer& tokenizer = context.tokenizer;
  // A stream that ends at EOS without any token shows the EOS token.
  const int eos_id = context.eos_ids.empty() ? tokenizer.eos_id() : context.eos_ids.front();
  auto event_json = [&tokenizer, r, seed, full_text, eos_id](const SequenceEvent& token_event,
                                                             const SequenceEvent* end) {
    Json token = token_event.token
                     ? token_json(tokenizer, *token_event.token)
                     : Json{{"id", eos_id}, {"text", ""}, {"logprob", 0.0}, {"special", true}};
    token["text"] = token_event.text;  // the text this token released (stop strings held back)
    Json e = {{"index", 0},
              {"token", token},
              {"top_tokens", nullptr},
              {"generated_text", nullptr},
              {"details", nullptr}};
    if (end != nullptr) {
      e["generated_text"] = (r->return_full_text ? r->inputs : "") + *full_text;
      e["details"] = {{"finish_reason", tgi_finish_reason(end->finish_reason)},
                      {"generated_tokens", end->completion_tokens},
                      {"seed", seed_json(*r, seed)}};
    }
    return sse_data(e);
  };
  stream_choices(
      context, res, channel, 1, in_flight,
      [=](const SequenceEvent& e) {
        std::string out;
        *full_text += e.text;
        if (!e.error.empty()) {
          return sse_data(error_body(ApiStyle::Tgi, ApiError(500, e.error, "generation")));
        }
        // Keep one token event back so the last one can carry the details.
        if (e.token) {
          if (*pending) out += event_json(**pending, nullptr);
          *pending = e;
        } else if (*pending) {
          (*pending)->text += e.text;
        } else if (!e.text.empty()) {
          *pending = e;
        }
        if (e.done) {
          SequenceEvent last = pending->value_or(SequenceEvent{});
          out += event_json(last, &e);
          pending->reset();
        }
        return out;
      },
      [] { return std::string(); });
}

// TGI's /tokenize: the GenerateRequest schema; [{"id", "text", "start", "stop"}] with
// byte offsets into inputs (token_offsets.h).
void handle_tokenize(ServeContext& context, const httplib::Request& req, httplib::Response& res) {
  const TgiRequest r = parse_generate(context, req.body, /*generation=*/false);
  Json out = Json::array();
  for (const TokenSpan& t :
       tokenize_with_offsets(context.tokenizer, r.inputs, r.add_special_tokens)) {
    out.push_back({{"id", t.id}, {"text", t.text}, {"start", t.start}, {"stop", t.stop}});
  }
  reply_json(res, out);
}

}  // namespace

void register_tgi_routes(httplib::Server& server, ServeContext& context) {
  server.Post("/generate", [&context](const httplib::Request& req, httplib::Response& res) {
    guarded_route(context, res, ApiStyle::Tgi, "/generate",
                  [&] { handle_generate(context, req, res); });
  });
  server.Post("/generate_stream", [&context](const httplib::Request& req, httplib::Response& res) {
    guarded_route(context, res, ApiStyle::Tgi, "/generate_stream",
                  [&] { handle_generate_stream(context, req, res); });
  });
  server.Post("/tokenize", [&context](const httplib::Request& req, httplib::Response& res) {
    guarded_route(context, res, ApiStyle::Tgi, "/tokenize",
                  [&] { handle_tokenize(context, req, res); });
  });
  server.Get("/health", [&context](const httplib::Request&, httplib::Response& res) {
    guarded_route(context, res, ApiStyle::Tgi, "/health", [&] {
      if (context.draining) throw ApiError(503, "the server is shutting down", "unhealthy");
      res.status = 200;
    });
  });
  server.Get("/info", [&context](const httplib::Request&, httplib::Response& res) {
    guarded_route(context, res, ApiStyle::Tgi, "/info", [&] {
      const SchedulerOptions& s = context.scheduler.options();
      reply_json(res, {{"model_id", context.model_name},
                       {"model_dtype", "float32"},
                       {"model_device_type", "cpu"},
                       {"model_pipeline_tag", "text-generation"},
                       {"max_concurrent_requests", s.slots + s.max_queue},
                       {"max_best_of", 1},
                       {"max_stop_sequences", kMaxStopSequences},
                       {"max_input_tokens", s.ctx_size},
                       {"max_input_length", s.ctx_size},
                       {"max_total_tokens", s.ctx_size},
                       {"max_batch_size", s.slots},
                       {"waiting_served_ratio", 0.0},
                       {"max_batch_total_tokens", s.slots * s.ctx_size},
                       {"max_waiting_tokens", 0},
                       {"validation_workers", 1},
                       {"router", "tulu"},
                       {"version", "0.1.0"},
                       {"chat_format", std::string(chat_format_name(context.chat_format))}});
    });
  });
  server.Get("/metrics", [&context](const httplib::Request&, httplib::Response& res) {
    res.set_content(context.metrics.render(context.scheduler.stats()), "text/plain; version=0.0.4");
  });
}

}  // namespace tulu
