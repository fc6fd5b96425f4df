#include "serve/route_support.h"

#include <httplib.h>

#include <cctype>
#include <random>

#include "core/error.h"
#include "serve/peer_watch.h"

namespace tulu {

namespace {
using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kPollInterval{100};
constexpr std::chrono::milliseconds kPeerCheckInterval{50};
}  // namespace

InFlight::InFlight(ServeContext& context, ApiStyle style) : context_(context) {
  ++context_.in_flight;
  if (context_.draining) {
    --context_.in_flight;
    throw ApiError(503, "the server is shutting down",
                   style == ApiStyle::Tgi ? "overloaded" : "server_error");
  }
}

std::vector<std::unique_ptr<Sequence>> make_sequences(const ServeContext& context,
                                                      const GenerationSpec& spec, int status,
                                                      uint64_t* seed) {
  const int capacity = context.scheduler.options().ctx_size;
  const auto prompt_length = static_cast<int64_t>(spec.prompt_ids.size());
  if (prompt_length == 0)
    throw ApiError(status, "the prompt has no tokens", "invalid_request_error", "prompt");
  if (prompt_length > capacity) {
    throw ApiError(status,
                   str_cat("This model's maximum context length is ", capacity,
                           " tokens. However, your prompt has ", prompt_length, " tokens."),
                   "invalid_request_error", "messages", "context_length_exceeded");
  }
  GenerateOptions options;
  try {
    options = resolve_generate_options(context.model.generation_config(), spec.overrides,
                                       context.eos_ids);
  } catch (const Error& e) {
    throw ApiError(status, e.what());
  }
  if (seed != nullptr) *seed = options.sampling.seed;
  std::vector<std::unique_ptr<Sequence>> sequences;
  for (int i = 0; i < spec.n; ++i) {
    SequenceParams params;
    params.prompt_ids = spec.prompt_ids;
    params.options = options;
    params.options.sampling.seed = options.sampling.seed + static_cast<uint64_t>(i);
    params.presence_penalty = spec.presence_penalty;
    params.frequency_penalty = spec.frequency_penalty;
    params.top_logprobs = spec.top_logprobs;
    try {
      sequences.push_back(std::make_unique<Sequence>(context.tokenizer, std::move(params)));
    } catch (const Error& e) {
      throw ApiError(status, e.what());
    }
  }
  return sequences;
}

std::shared_ptr<RequestChannel> submit_sequences(const ServeContext& context,
                                                 std::vector<std::unique_ptr<Sequence>> sequences,
                                                 ApiStyle style) {
  auto channel = std::make_shared<RequestChannel>();
  try {
    context.scheduler.submit(channel, std::move(sequences));
  } catch (const QueueFullError& e) {
    throw ApiError(503, e.what(), style == ApiStyle::Tgi ? "overloaded" : "server_error");
  } catch (const Error& e) {
    throw ApiError(503, e.what(), style == ApiStyle::Tgi ? "overloaded" : "server_error");
  }
  return channel;
}

std::vector<ChoiceResult> collect_choices(const ServeContext& context, RequestChannel& channel,
                                          int choices, const httplib::Request& req) {
  const Clock::time_point start = Clock::now();
  const PeerWatch peer(req.remote_addr, req.remote_port, req.local_addr, req.local_port);
  Clock::time_point next_peer_check = start + kPeerCheckInterval;
  std::vector<ChoiceResult> results(static_cast<size_t>(choices));
  int remaining = choices;
  bool first = true;
  std::string error;
  while (remaining > 0) {
    if (Clock::now() >= next_peer_check) {
      next_peer_check = Clock::now() + kPeerCheckInterval;
      if (peer.gone()) {
        channel.cancel();
        throw ApiError(499, "the client closed the connection", "client_closed_request");
      }
    }
    SequenceEvent event;
    if (!channel.pop(event, kPeerCheckInterval)) continue;
    ChoiceResult& r = results.at(static_cast<size_t>(event.choice));
    if (first && event.token) {
      context.metrics.observe_time_to_first_token(
          std::chrono::duration<double>(Clock::now() - start).count());
      first = false;
    }
    r.text += event.text;
    if (event.token) r.tokens.push_back(std::move(*event.token));
    if (event.done) {
      --remaining;
      r.finish_reason = event.finish_reason;
      r.prompt_tokens = event.prompt_tokens;
      r.completion_tokens = event.completion_tokens;
      r.cached_tokens = event.cached_tokens;
      context.metrics.add_tokens(event.prompt_tokens, event.completion_tokens);
      if (!event.error.empty()) error = event.error;
    }
  }
  context.metrics.observe_latency(std::chrono::duration<double>(Clock::now() - start).count());
  if (!error.empty()) throw ApiError(500, "generation failed: " + error, "server_error");
  return results;
}

namespace {

struct StreamState {
  std::shared_ptr<RequestChannel> channel;
  std::shared_ptr<InFlight> in_flight;
  int remaining = 0;
  bool ended = false;
  bool first = true;
  Clock::time_point start = Clock::now();
};

}  // namespace

void stream_choices(const ServeContext& context, httplib::Response& res,
                    std::shared_ptr<RequestChannel> channel, int choices,
                    std::shared_ptr<InFlight> in_flight,
                    std::function<std::string(const SequenceEvent&)> render,
                    std::function<std::string()> finish) {
  auto state = std::make_shared<StreamState>();
  state->channel = std::move(channel);
  state->in_flight = std::move(in_flight);
  state->remaining = choices;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [&context, state, render = std::move(render), finish = std::move(finish)](
          size_t /*offset*/, httplib::DataSink& sink) {
        if (state->ended) {
          sink.done();
          return true;
        }
        SequenceEvent event;
        // Nothing yet: return so that httplib checks the socket, and come back.
        if (!state->channel->pop(event, kPollInterval)) return true;
        if (state->first && event.token) {
          context.metrics.observe_time_to_first_token(
              std::chrono::duration<double>(Clock::now() - state->start).count());
          state->first = false;
        }
        std::string text = render(event);
        if (event.done) {
          --state->remaining;
          context.metrics.add_tokens(event.prompt_tokens, event.completion_tokens);
        }
        if (state->remaining == 0) {
          text += finish();
          state->ended = true;
          context.metrics.observe_latency(
              std::chrono::duration<double>(Clock::now() - state->start).count());
        }
        if (!text.empty() && !sink.write(text.data(), text.size())) {
          state->channel->cancel();
          return false;
        }
        if (state->ended) sink.done();
        return true;
      },
      [state](bool success) {
        if (!success || !state->ended) state->channel->cancel();
      });
}

std::string token_text(const Tokenizer& tokenizer, int id) {
  std::string piece = tokenizer.id_to_piece(id);
  if (piece.size() == 6 && piece.rfind("<0x", 0) == 0 && piece[5] == '>' &&
      std::isxdigit(static_cast<unsigned char>(piece[3])) &&
      std::isxdigit(static_cast<unsigned char>(piece[4]))) {
    return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
  }
  std::string out;
  static const std::string kSpace = "\xe2\x96\x81";  // ▁
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

std::string sse_data(const Json& value) {
  return "data: " + value.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
}

std::string random_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 24; ++i) id += kHex[rng() % 16];
  return id;
}

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace tulu

namespace tulu {

void reply_json(httplib::Response& res, const Json& value, int status) {
  res.status = status;
  res.set_content(value.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void guarded_route(ServeContext& context, httplib::Response& res, ApiStyle style,
                   const std::string& route, const std::function<void()>& handler) {
  try {
    handler();
  } catch (const ApiError& e) {
    reply_json(res, error_body(style, e), e.status());
  } catch (const Error& e) {
    const ApiError api(style == ApiStyle::Tgi ? 422 : 400, e.what(),
                       style == ApiStyle::Tgi ? "validation" : "invalid_request_error");
    reply_json(res, error_body(style, api), api.status());
  } catch (const std::bad_alloc&) {
    reply_json(res, error_body(style, ApiError(500, "out of memory", "server_error")), 500);
  } catch (const std::exception& e) {
    reply_json(res, error_body(style, ApiError(500, e.what(), "server_error")), 500);
  }
  if (res.status < 0) res.status = 200;  // a stream: its status line is 200
  context.metrics.count_request(route, res.status);
}

Json parse_request_body(const std::string& body) {
  try {
    return Json::parse(body);
  } catch (const Json::exception& e) {
    throw ApiError(400, str_cat("the request body is not valid JSON: ", e.what()));
  }
}

}  // namespace tulu
