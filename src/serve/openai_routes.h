// OpenAI-compatible routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models.
// Sampling defaults are the model's (generation_config.json: greedy unless it sets
// do_sample), as `tulu generate`; the request's fields override them. Unrecognized fields
// are rejected (400), as OpenAI does.
#pragma once

#include "serve/route_support.h"

namespace httplib {
class Server;
}

namespace tulu {

void register_openai_routes(httplib::Server& server, ServeContext& context);

}  // namespace tulu
