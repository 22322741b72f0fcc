#include "worker-http/write_form.h"

#include <algorithm>
#include <map>

#include "common/go_quote.h"
#include "worker-http/media_params.h"

namespace kelp {
namespace {

constexpr size_t kMaxParams = 10000;        // net/url's default limit
constexpr size_t kMaxFormBody = 10u << 20;  // "10 MB is a lot of text"

bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// url.QueryUnescape's error for `s`, or "".
std::string UnescapeError(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') continue;
    if (i + 2 >= s.size() || !IsHex(s[i + 1]) || !IsHex(s[i + 2]))
      return "invalid URL escape " + GoQuote(s.substr(i, 3));
    i += 2;
  }
  return "";
}

}  // namespace

std::string GoQueryError(std::string_view query) {
  if (size_t(std::count(query.begin(), query.end(), '&')) + 1 > kMaxParams) return "number of URL query parameters exceeded limit";
  std::string error;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    // A ';' error replaces an earlier one; an escape error only fills an empty slot.
    if (pair.find(';') != std::string_view::npos) {
      error = "invalid semicolon separator in query";
      continue;
    }
    const size_t eq = pair.find('=');
    std::string e = UnescapeError(pair.substr(0, eq));
    if (e.empty() && eq != std::string_view::npos) e = UnescapeError(pair.substr(eq + 1));
    if (error.empty()) error = std::move(e);
  }
  return error;
}

Status ApplyWriteForm(http::Request* r) {
  std::string media, error;
  std::map<std::string, std::string> params;
  ParseMediaParams(r->HeaderOr("content-type", "application/octet-stream"), &media, &params, &error);
  const std::string query_error = GoQueryError(r->query);
  if (media == "application/x-www-form-urlencoded") {
    if (r->body.size() > kMaxFormBody) return Status::Invalid("http: POST too large");
    if (error.empty()) error = GoQueryError(r->body);
    // Go's handler then reads an empty body: the form is the request's parameters.
    std::string form = std::move(r->body);
    r->body.clear();
    if (!form.empty()) r->query = r->query.empty() ? form : form + "&" + r->query;
  }
  if (error.empty()) error = query_error;
  return error.empty() ? Status::Ok() : Status::Invalid(error);
}

}  // namespace kelp
