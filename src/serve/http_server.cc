#include "serve/http_server.h"

#include <httplib.h>

#include <chrono>
#include <thread>

#include "core/error.h"
#include "serve/chat_page.h"
#include "serve/openai_routes.h"
#include "serve/tgi_routes.h"

namespace tulu {

struct HttpServer::Impl {
  ServeContext& context;
  HttpServerOptions options;
  httplib::Server server;
  Impl(ServeContext& c, HttpServerOptions o) : context(c), options(std::move(o)) {}
};

namespace {

ApiStyle style_for(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 ? ApiStyle::OpenAI : ApiStyle::Tgi;
}

std::string status_message(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 404:
      return "no such route";
    case 405:
      return "method not allowed";
    case 413:
      return "the request body is too large";
    case 414:
      return "the request URI is too long";
    default:
      return str_cat("HTTP error ", status);
  }
}

}  // namespace

HttpServer::HttpServer(ServeContext& context, HttpServerOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {
  httplib::Server& server = impl_->server;
  const int threads = impl_->options.http_threads;
  server.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  server.set_payload_max_length(impl_->options.max_body_bytes);
  server.set_read_timeout(impl_->options.read_timeout_seconds, 0);
  server.set_write_timeout(impl_->options.read_timeout_seconds, 0);
  server.set_keep_alive_max_count(100);
  // httplib writes a response's headers and body separately; without TCP_NODELAY the body
  // waits for the client's delayed ACK of the headers (about 40 ms per response).
  server.set_tcp_nodelay(true);

  const std::string api_key = impl_->options.api_key;
  server.set_pre_routing_handler(
      [&context, api_key](const httplib::Request& req, httplib::Response& res) {
        if (api_key.empty() || req.path == "/" || req.path == "/health") {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        const std::string auth = req.get_header_value("Authorization");
        if (auth == "Bearer " + api_key) return httplib::Server::HandlerResponse::Unhandled;
        const ApiError error(
            401,
            auth.empty() ? "missing API key: send the header Authorization: Bearer <key>"
                         : "invalid API key",
            style_for(req.path) == ApiStyle::Tgi ? "unauthorized" : "invalid_request_error", "",
            "invalid_api_key");
        reply_json(res, error_body(style_for(req.path), error), 401);
        context.metrics.count_request("unauthorized", 401);
        return httplib::Server::HandlerResponse::Handled;
      });
  // Failures httplib answers itself (no route, body too large, ...) get the API's shape.
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const ApiStyle style = style_for(req.path);
    const ApiError error(res.status,
                         status_message(res.status) + " (" + req.method + " " + req.path + ")",
                         style == ApiStyle::Tgi ? "validation" : "invalid_request_error");
    reply_json(res, error_body(style, error), res.status);
  });
  server.set_exception_handler([](const httplib::Request& req, httplib::Response& res,
                                  std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = str_cat("internal error: ", e.what());
    } catch (...) {
    }
    reply_json(res, error_body(style_for(req.path), ApiError(500, message, "server_error")), 500);
  });
  server.Get("/", [&context](const httplib::Request&, httplib::Response& res) {
    const std::string_view page = chat_page_html();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
    context.metrics.count_request("/", 200);
  });
  register_openai_routes(server, context);
  register_tgi_routes(server, context);
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  httplib::Server& server = impl_->server;
  const HttpServerOptions& o = impl_->options;
  if (o.port == 0) {
    const int port = server.bind_to_any_port(o.host);
    TULU_CHECK(port > 0, "cannot listen on ", o.host, " (any port)");
    return port;
  }
  TULU_CHECK(server.bind_to_port(o.host, o.port), "cannot listen on ", o.host, ":", o.port,
             " (in use, or not an address of this machine)");
  return o.port;
}

void HttpServer::listen() {
  impl_->server.listen_after_bind();
}

void HttpServer::drain_and_stop(double timeout_seconds) {
  ServeContext& context = impl_->context;
  context.draining = true;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout_seconds));
  while (context.in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  impl_->server.stop();
}

}  // namespace tulu
