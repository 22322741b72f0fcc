// Go's net/http rules for accepting a request head, applied to what llhttp
// parsed: the Transfer-Encoding it understands, the Host it requires, the
// Expect values it knows, and how many header fields it reads. A refusal says
// what Go answers.
#pragma once
#include <string>
#include <string_view>

#include "worker-http/http_types.h"

namespace kelp::http {

// Go 4.48 (built with Go 1.27) answers 431 to a request with more header fields.
constexpr size_t kMaxHeaderFields = 500;

struct Refusal {
  enum class Form {
    kNetHttp,            // "HTTP/1.1 <status>", text/plain, Connection: close, <body>
    kExpectationFailed,  // 417 with no body, as net/http sends it
    kBodyError,          // the body could not be read: 400 with {"error": <body>}, as Go's upload handler answers
  };
  Form form = Form::kNetHttp;
  std::string status;  // e.g. "400 Bad Request"
  std::string body;
};

// Checks a complete head (names lower-cased). `http_minor` is the request's
// HTTP/1.x minor version. True to read the request; otherwise `*refusal`.
bool AcceptHead(const Request& head, int http_minor, Refusal* refusal);

// Go's hasToken: `token` appears in the comma or space separated list `v`,
// compared without regard to ASCII case.
bool HasToken(std::string_view v, std::string_view token);

}  // namespace kelp::http
