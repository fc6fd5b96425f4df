// text-generation-inference routes: POST /generate, POST /generate_stream, GET /info,
// GET /health, GET /metrics (Prometheus text), POST /tokenize. Request and response
// schemas are TGI's (router/src/lib.rs); validation errors answer 422 with
// {"error", "error_type": "validation"}.
#pragma once

#include "serve/route_support.h"

namespace httplib {
class Server;
}

namespace tulu {

void register_tgi_routes(httplib::Server& server, ServeContext& context);

}  // namespace tulu
