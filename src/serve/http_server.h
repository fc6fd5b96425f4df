// `tulu serve`'s HTTP server: the OpenAI and text-generation-inference routes over one
// scheduler, with the API key check, a request body limit, API-shaped JSON errors for
// every failure (404, 413, ...) and a graceful drain.
#pragma once

#include <memory>
#include <string>

#include "serve/route_support.h"

namespace tulu {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;      // 0 = any free port (see bound_port)
  std::string api_key;  // non-empty: requests need "Authorization: Bearer <key>"
  size_t max_body_bytes = 4u << 20;
  int http_threads = 64;  // connections served at once (streams hold one each)
  int read_timeout_seconds = 30;
};

class HttpServer {
 public:
  // `context` must outlive the server.
  HttpServer(ServeContext& context, HttpServerOptions options);
  ~HttpServer();
  // Binds (tulu::Error naming host and port when it cannot); returns the bound port.
  int bind();
  // Serves until stop(); returns after in-flight connections have ended.
  void listen();
  // SIGTERM: new generation requests get 503, requests in flight finish (at most
  // `timeout_seconds`), then the listener stops. Thread-safe; call from another thread.
  void drain_and_stop(double timeout_seconds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tulu
