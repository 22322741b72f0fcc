#include "worker-http/media_params.h"

#include <cstring>
#include <optional>

namespace kelp {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
bool IsSpecial(char c) { return c != '\0' && std::strchr("()<>@,;:\\\"/[]?=", c) != nullptr; }
bool IsTokenChar(char c) { return c > 0x20 && c < 0x7f && !IsSpecial(c); }

std::string_view SkipSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

// Splits the leading run of token characters off `*s`.
std::string_view TakeToken(std::string_view* s) {
  size_t n = 0;
  while (n < s->size() && IsTokenChar((*s)[n])) ++n;
  std::string_view token = s->substr(0, n);
  s->remove_prefix(n);
  return token;
}

// A token or a quoted string; nullopt (and `*s` untouched) when neither is there.
std::optional<std::string> TakeValue(std::string_view* s) {
  if (s->empty()) return std::nullopt;
  if ((*s)[0] != '"') {
    std::string_view token = TakeToken(s);
    if (token.empty()) return std::nullopt;
    return std::string(token);
  }
  std::string out;
  for (size_t i = 1; i < s->size(); ++i) {
    const char c = (*s)[i];
    if (c == '"') {
      s->remove_prefix(i + 1);
      return out;
    }
    // A backslash escapes only a special character; before anything else it
    // is a literal one (MSIE sends Windows paths unescaped).
    if (c == '\\' && i + 1 < s->size() && IsSpecial((*s)[i + 1])) {
      out.push_back((*s)[++i]);
      continue;
    }
    if (c == '\r' || c == '\n') return std::nullopt;
    out.push_back(c);
  }
  return std::nullopt;  // no closing quote
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size() || HexValue(s[i + 1]) < 0 || HexValue(s[i + 2]) < 0) return std::nullopt;
    out.push_back(char(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
    i += 2;
  }
  return out;
}

// charset'language'percent-encoded, for the charsets Go accepts.
std::optional<std::string> DecodeExtended(std::string_view v) {
  const size_t q1 = v.find('\'');
  if (q1 == std::string_view::npos) return std::nullopt;
  const size_t q2 = v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return std::nullopt;
  const std::string charset = Lower(v.substr(0, q1));
  if (charset != "us-ascii" && charset != "utf-8") return std::nullopt;
  return PercentDecode(v.substr(q2 + 1));
}

// Go's checkMediaTypeDisposition: token, or token "/" token; "" when valid.
const char* MediaTypeError(std::string_view t) {
  if (TakeToken(&t).empty()) return "mime: no media type";
  if (t.empty()) return "";
  if (t.front() != '/') return "mime: expected slash after first token";
  t.remove_prefix(1);
  if (TakeToken(&t).empty()) return "mime: expected token after slash";
  return t.empty() ? "" : "mime: unexpected content after media subtype";
}

// Joins the starred parameters of one base name, as RFC 2231 lays them out.
void Stitch(const std::string& base, const std::map<std::string, std::string>& pieces,
            std::map<std::string, std::string>* params) {
  if (auto whole = pieces.find(base + "*"); whole != pieces.end()) {
    if (auto v = DecodeExtended(whole->second)) (*params)[base] = *v;
    return;
  }
  std::string joined;
  bool any = false;
  for (int n = 0;; ++n) {
    const std::string plain = base + "*" + std::to_string(n);
    if (auto p = pieces.find(plain); p != pieces.end()) {
      joined += p->second;
      any = true;
      continue;
    }
    auto e = pieces.find(plain + "*");
    if (e == pieces.end()) break;
    any = true;
    // The first piece names the charset; later ones are only percent-encoded,
    // and one that does not decode adds nothing.
    std::optional<std::string> v = n == 0 ? DecodeExtended(e->second) : PercentDecode(e->second);
    if (v) joined += *v;
  }
  if (any) (*params)[base] = joined;
}

}  // namespace

bool ParseMediaParams(std::string_view v, std::string* media_type, std::map<std::string, std::string>* params) {
  std::string error;
  return ParseMediaParams(v, media_type, params, &error);
}

bool ParseMediaParams(std::string_view v, std::string* media_type, std::map<std::string, std::string>* params,
                      std::string* error) {
  params->clear();
  const size_t semi = v.find(';');
  std::string_view base = v.substr(0, semi);
  std::string type = Lower(base);
  while (!type.empty() && IsSpace(type.back())) type.pop_back();
  size_t lead = 0;
  while (lead < type.size() && IsSpace(type[lead])) ++lead;
  *media_type = type.substr(lead);
  if (const char* bad = MediaTypeError(*media_type); *bad) {
    media_type->clear();
    *error = bad;
    return false;
  }
  std::map<std::string, std::map<std::string, std::string>> starred;
  std::string_view rest = v.substr(base.size());
  for (;;) {
    rest = SkipSpace(rest);
    if (rest.empty()) break;
    std::string_view p = rest;
    std::optional<std::string> value;
    std::string key;
    if (p.front() == ';') {
      p = SkipSpace(p.substr(1));
      key = Lower(TakeToken(&p));
      p = SkipSpace(p);
      if (!key.empty() && !p.empty() && p.front() == '=') {
        p = SkipSpace(p.substr(1));
        value = TakeValue(&p);
      }
    }
    if (!value) {
      if (rest.front() == ';' && SkipSpace(rest.substr(1)).empty()) break;  // a trailing ';' is allowed
      params->clear();
      *error = "mime: invalid media parameter";
      return false;
    }
    const size_t star = key.find('*');
    auto& target = star == std::string::npos ? *params : starred[key.substr(0, star)];
    if (auto it = target.find(key); it != target.end() && it->second != *value) {
      params->clear();
      media_type->clear();
      *error = "mime: duplicate parameter name";
      return false;  // the same name twice with different values
    }
    target[key] = *value;
    rest = p;
  }
  for (const auto& [name, pieces] : starred) Stitch(name, pieces, params);
  return true;
}

}  // namespace kelp
