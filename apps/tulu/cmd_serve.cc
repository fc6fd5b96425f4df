// tulu serve: the OpenAI- and text-generation-inference-compatible HTTP server.
//
//   tulu serve -m DIR [--host 127.0.0.1] [--port 8080] [--slots 4] [--ctx-size 2048]
//              [--api-key KEY] [-t N] [--chat-format NAME] [--queue 64] [--kv-type f32|f16]
// Prints "tulu serve: listening on http://HOST:PORT ..." on stdout once it accepts
// connections (with --port 0, the port the system chose). SIGTERM / SIGINT: stop taking new
// generation requests, finish those in flight, exit 0. See docs/serving.md.
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "command.h"
#include "kv_type_option.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "generate/generation_defaults.h"
#include "llama/model.h"
#include "model_tokenizer.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/route_support.h"
#include "serve/scheduler.h"
#include "tokenizer/chat_format.h"

namespace tulu::cli {

namespace {

struct ServeCommand {
  ModelOptions model;
  HttpServerOptions http;
  SchedulerOptions scheduler;
  KvTypeOption kv_type;
  std::string chat_format;
  std::string model_name;
  double drain_seconds = 60.0;
};

// SIGTERM / SIGINT handler → a byte on this pipe, read by the drain thread. (Blocking the
// signals and sigwait-ing would miss threads that libraries start before main, e.g.
// OpenBLAS's, which would then take the default action and kill the process.)
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int signo) {
  const char byte = static_cast<char>(signo);
  [[maybe_unused]] const ssize_t n = write(g_signal_pipe[1], &byte, 1);
}

int run_serve(ServeCommand& c) {
  c.scheduler.kv_type = c.kv_type.resolve();
  TULU_CHECK(pipe(g_signal_pipe) == 0, "cannot create a pipe for signal handling");
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is an error return, not a signal

  const std::unique_ptr<Tokenizer> tokenizer = load_model_tokenizer(c.model.model_dir);
  const ChatFormat format = c.chat_format.empty() ? chat_format_for_model(c.model.model_dir)
                                                  : parse_chat_format(c.chat_format);
  const std::unique_ptr<LlamaModel> model = LlamaModel::load(c.model.model_dir);
  const int max_positions = model->config().max_position_embeddings;
  TULU_CHECK(c.scheduler.ctx_size <= max_positions, "--ctx-size ", c.scheduler.ctx_size,
             " exceeds the model's max_position_embeddings (", max_positions, ")");
  if (c.scheduler.ctx_size == 0) c.scheduler.ctx_size = std::min(2048, max_positions);
  c.scheduler.prefill_chunk = std::min(c.scheduler.prefill_chunk, c.scheduler.ctx_size);
  std::string name = c.model_name;
  if (name.empty()) {
    std::filesystem::path path(c.model.model_dir);
    if (!path.has_filename()) path = path.parent_path();
    name = path.filename().string();
  }

  ThreadPool pool(resolve_threads(c.model.threads));
  Scheduler scheduler(*model, *tokenizer, pool, c.scheduler);
  Metrics metrics;
  ServeContext context{.model = *model,
                       .tokenizer = *tokenizer,
                       .scheduler = scheduler,
                       .metrics = metrics,
                       .chat_format = format,
                       .model_name = name,
                       .eos_ids = resolve_eos_ids(*model, *tokenizer),
                       .in_flight{0},
                       .draining{false}};
  HttpServer server(context, c.http);
  const int port = server.bind();

  std::thread signal_thread([&server, drain = c.drain_seconds] {
    char received = 0;
    while (read(g_signal_pipe[0], &received, 1) < 0 && errno == EINTR) {
    }
    std::fprintf(stderr, "tulu serve: %s: finishing requests in flight\n",
                 received == SIGTERM ? "SIGTERM" : "SIGINT");
    server.drain_and_stop(drain);
  });
  signal_thread.detach();  // stays blocked in read when the server ends otherwise

  std::printf(
      "tulu serve: listening on http://%s:%d (model %s, %d slots x %d tokens, %s KV cache, "
      "chat format %s)\n",
      c.http.host.c_str(), port, name.c_str(), c.scheduler.slots, c.scheduler.ctx_size,
      std::string(kv_type_name(c.scheduler.kv_type)).c_str(),
      std::string(chat_format_name(format)).c_str());
  std::fflush(stdout);
  server.listen();
  scheduler.shutdown();
  std::fprintf(stderr, "tulu serve: stopped\n");
  return 0;
}

RunFunction setup(CLI::App& app) {
  auto c = std::make_shared<ServeCommand>();
  add_model_options(app, c->model);
  app.add_option("--host", c->http.host,
                 "address to listen on (default 127.0.0.1: this machine only)");
  app.add_option("--port", c->http.port, "TCP port; 0 = any free port (printed)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--slots", c->scheduler.slots,
                 "sequences generated at once (continuous batching), each with its own KV cache")
      ->check(CLI::Range(1, 256));
  app.add_option("--ctx-size", c->scheduler.ctx_size,
                 "KV cache positions per slot: prompt + generated tokens (default: 2048 or the "
                 "model's max_position_embeddings if smaller)")
      ->check(CLI::Range(0, 1 << 24));
  c->kv_type.add_to(app);
  app.add_option("--prefill-budget", c->scheduler.prefill_budget,
                 "prompt tokens evaluated per step over all new requests, between decode steps "
                 "of the running ones (larger: new requests start sooner, running streams "
                 "stall longer)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--queue", c->scheduler.max_queue,
                 "sequences waiting for a slot before requests get 503")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--api-key", c->http.api_key,
                 "require 'Authorization: Bearer KEY' (401 otherwise; / and /health are open)");
  app.add_option("--chat-format", c->chat_format,
                 "tulu, llama-2-chat, zephyr or chatml (default: from tokenizer_config.json's "
                 "chat_template when known, else tulu)");
  app.add_option("--model-name", c->model_name,
                 "the model id in responses and /v1/models (default: the model's folder name)");
  app.add_option("--max-body", c->http.max_body_bytes, "largest request body in bytes (413 above)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 30));
  app.add_option("--http-threads", c->http.http_threads,
                 "connections handled at once (each streaming client holds one)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--drain-seconds", c->drain_seconds,
                 "at SIGTERM, wait at most this long for requests in flight")
      ->check(CLI::Range(0.0, 3600.0));
  return [c] { return run_serve(*c); };
}

const bool registered = register_command(
    {"serve", "serve the model over OpenAI- and TGI-compatible HTTP APIs", 250, setup});

}  // namespace

}  // namespace tulu::cli
