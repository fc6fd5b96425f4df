// What the OpenAI and text-generation-inference routes share: the served model's context,
// turning a parsed request into validated sequences, waiting for their results, and
// streaming their events over HTTP (Server-Sent Events).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "generate/generation_defaults.h"
#include "llama/model.h"
#include "serve/api_error.h"
#include "serve/metrics.h"
#include "serve/scheduler.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace tulu {

// Read-only after start, except scheduler / metrics (thread-safe).
struct ServeContext {
  const LlamaModel& model;
  const Tokenizer& tokenizer;
  Scheduler& scheduler;
  Metrics& metrics;
  ChatFormat chat_format;
  std::string model_name;  // the id /v1/models lists and responses carry
  std::vector<int> eos_ids;
  // Generation requests whose response is not fully written yet; SIGTERM waits for 0.
  std::atomic<int> in_flight{0};
  std::atomic<bool> draining{false};  // set at SIGTERM: new generation requests get 503
};

// Counts one generation request as in flight for its lifetime; throws ApiError 503 when
// the server is draining.
class InFlight {
 public:
  InFlight(ServeContext& context, ApiStyle style);
  ~InFlight() { --context_.in_flight; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  ServeContext& context_;
};

// A request after parsing: one prompt, n sequences with these settings.
struct GenerationSpec {
  std::vector<int> prompt_ids;
  GenerationOverrides overrides;  // unset = the model's generation_config.json default
  int n = 1;
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  int top_logprobs = -1;  // < 0: none
};

// Resolves defaults (generation_defaults.h) and validates; choice i gets seed + i. Throws
// ApiError(status) for invalid values or a prompt longer than the context. `seed` gets the
// seed of choice 0.
std::vector<std::unique_ptr<Sequence>> make_sequences(const ServeContext& context,
                                                      const GenerationSpec& spec, int status,
                                                      uint64_t* seed = nullptr);

// Queues the sequences; a full queue becomes ApiError 503.
std::shared_ptr<RequestChannel> submit_sequences(const ServeContext& context,
                                                 std::vector<std::unique_ptr<Sequence>> sequences,
                                                 ApiStyle style);

struct ChoiceResult {
  std::string text;
  std::vector<SampledToken> tokens;
  FinishReason finish_reason = FinishReason::Length;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;  // prompt tokens whose KV cache entries were reused
};

// Waits until each of `choices` choices is done (non-streaming requests). A failed
// choice becomes ApiError 500. Records metrics (tokens, time to first token).
// Meanwhile it checks every 50 ms whether the client of `req` is still connected
// (peer_watch.h); when it has gone, the request is cancelled (its sequences leave their
// slots at the scheduler's next step, or the queue) and ApiError 499 ("client closed
// request", nginx's code; nobody reads it) ends the handler.
std::vector<ChoiceResult> collect_choices(const ServeContext& context, RequestChannel& channel,
                                          int choices, const httplib::Request& req);

// Streams a request's events as the body of `res` (Content-Type text/event-stream).
// render(event) returns the SSE text for one event (may be empty); finish() the text after
// the last choice ended. A write failure (client gone) cancels the request, which frees
// its slots. Records metrics as collect_choices does.
// `in_flight` is held until the stream ends.
void stream_choices(const ServeContext& context, httplib::Response& res,
                    std::shared_ptr<RequestChannel> channel, int choices,
                    std::shared_ptr<InFlight> in_flight,
                    std::function<std::string(const SequenceEvent&)> render,
                    std::function<std::string()> finish);

// The text a token shows as in logprobs and TGI token events: its piece with SentencePiece's
// "▁" as a space, byte tokens <0xNN> as that byte.
std::string token_text(const Tokenizer& tokenizer, int id);

// Runs a route's handler: an ApiError becomes that status with the API's error body; a
// tulu::Error 400 (OpenAI) / 422 (TGI); anything else 500. Counts the request in metrics.
void guarded_route(ServeContext& context, httplib::Response& res, ApiStyle style,
                   const std::string& route, const std::function<void()>& handler);
// The request body as JSON; malformed JSON is ApiError 400.
Json parse_request_body(const std::string& body);
// Sets a JSON response body.
void reply_json(httplib::Response& res, const Json& value, int status = 200);

// "data: <json>\n\n"
std::string sse_data(const Json& value);
// A random id suffix (24 hex digits) for response ids.
std::string random_id();
int64_t unix_seconds();

}  // namespace tulu
