// Errors a route answers with: an HTTP status and the fields of the API's error body.
// OpenAI routes render {"error": {"message", "type", "param", "code"}}, text-generation-
// inference routes {"error": message, "error_type": type}.
#pragma once

#include <stdexcept>
#include <string>

#include "core/json.h"

namespace tulu {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string type = "invalid_request_error",
           std::string param = "", std::string code = "")
      : std::runtime_error(message),
        status_(status),
        type_(std::move(type)),
        param_(std::move(param)),
        code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string type_, param_, code_;
};

enum class ApiStyle { OpenAI, Tgi };

// The error body in the API's shape. Empty param / code become null.
inline Json error_body(ApiStyle style, const ApiError& error) {
  if (style == ApiStyle::Tgi) {
    // TGI's name for a bad request is "validation".
    const std::string type =
        error.type() == "invalid_request_error" ? std::string("validation") : error.type();
    return Json{{"error", error.what()}, {"error_type", type}};
  }
  return Json{{"error",
               {{"message", error.what()},
                {"type", error.type()},
                {"param", error.param().empty() ? Json(nullptr) : Json(error.param())},
                {"code", error.code().empty() ? Json(nullptr) : Json(error.code())}}}};
}

}  // namespace tulu
