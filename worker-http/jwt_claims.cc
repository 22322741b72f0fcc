#include "worker-http/jwt_claims.h"

#include <strings.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace kelp {
namespace {

enum class Field { kNone, kFid, kExp, kNbf, kIat, kIss, kSub, kJti, kAud };

Field FieldOf(const std::string& key) {
  static const std::pair<const char*, Field> kFields[] = {{"fid", Field::kFid}, {"exp", Field::kExp}, {"nbf", Field::kNbf},
                                                          {"iat", Field::kIat}, {"iss", Field::kIss}, {"sub", Field::kSub},
                                                          {"jti", Field::kJti}, {"aud", Field::kAud}};
  for (const auto& [name, field] : kFields)
    if (strcasecmp(key.c_str(), name) == 0) return field;
  return Field::kNone;
}

bool IsDate(Field f) { return f == Field::kExp || f == Field::kNbf || f == Field::kIat; }

// encoding/json's number grammar, which a json.Number read from a string must match.
bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  const auto digits = [&] {
    const size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > from;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') ++i;
  else if (!digits()) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// Walks the document in order, so that repeated and case-variant keys resolve
// as Go's decoder resolves them.
class ClaimsSax : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit ClaimsSax(FileIdClaims* out) : out_(out) {}
  bool ok() const { return ok_ && seen_object_; }

  bool null() override {
    if (Top()) {
      // A date is a pointer in Go: null clears it. A string claim keeps its value.
      if (IsDate(field_)) Date().reset();
    } else if (InAud()) {
      ok_ = false;
    }
    return Done();
  }
  bool boolean(bool) override { return Scalar(); }
  bool number_integer(number_integer_t v) override { return Number(double(v)); }
  bool number_unsigned(number_unsigned_t v) override { return Number(double(v)); }
  bool number_float(number_float_t v, const string_t&) override { return Number(v); }
  bool binary(binary_t&) override { return Scalar(); }
  bool string(string_t& v) override {
    if (Top()) {
      if (field_ == Field::kFid) out_->fid = v;
      else if (IsDate(field_)) {
        // A json.Number may come quoted; it must still be a number.
        const double d = IsJsonNumber(v) ? std::strtod(v.c_str(), nullptr) : NAN;
        if (!std::isfinite(d)) ok_ = false;
        else Date() = d;
      }
    }
    return Done();
  }
  bool start_object(std::size_t) override {
    if (depth_ == 0) seen_object_ = true;
    else if (Top() && field_ != Field::kNone) ok_ = false;
    else if (InAud()) ok_ = false;
    ++depth_;
    return ok_;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) field_ = FieldOf(k);
    return true;
  }
  bool end_object() override {
    --depth_;
    return Done();
  }
  bool start_array(std::size_t) override {
    if (depth_ == 0) ok_ = false;
    else if (Top() && field_ != Field::kNone && field_ != Field::kAud) ok_ = false;
    else if (InAud()) ok_ = false;  // aud holds strings only
    if (depth_ == 1) in_array_field_ = field_;
    ++depth_;
    return ok_;
  }
  bool end_array() override {
    --depth_;
    if (depth_ == 1) in_array_field_ = Field::kNone;
    return Done();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return ok_ = false; }

 private:
  // A value directly under the claims object.
  bool Top() const { return depth_ == 1; }
  bool InAud() const { return depth_ == 2 && in_array_field_ == Field::kAud; }
  std::optional<double>& Date() {
    return field_ == Field::kExp ? out_->exp : field_ == Field::kNbf ? out_->nbf : out_->iat;
  }
  bool Scalar() {
    if ((Top() && field_ != Field::kNone) || InAud()) ok_ = false;
    return Done();
  }
  bool Number(double v) {
    if (Top() && IsDate(field_)) {
      if (!std::isfinite(v)) ok_ = false;
      else Date() = v;
    } else if ((Top() && field_ != Field::kNone) || InAud()) {
      ok_ = false;
    }
    return Done();
  }
  bool Done() const { return ok_; }

  FileIdClaims* out_;
  int depth_ = 0;
  Field field_ = Field::kNone, in_array_field_ = Field::kNone;
  bool ok_ = true, seen_object_ = false;
};

}  // namespace

int64_t GoDateSeconds(double unix_seconds) {
  constexpr uint64_t kUnixToInternal = 62135596800;  // 0001-01-01 to 1970-01-01
  const double whole = std::trunc(unix_seconds);
  const int64_t s = !(whole >= -9223372036854775808.0 && whole < 9223372036854775808.0) ? INT64_MIN : int64_t(whole);
  return int64_t(uint64_t(s) + kUnixToInternal);
}

bool DecodeFileIdClaims(std::string_view json, FileIdClaims* out) {
  ClaimsSax sax(out);
  const bool parsed = nlohmann::json::sax_parse(json, &sax, nlohmann::json::input_format_t::json, /*strict=*/true);
  return parsed && sax.ok();
}

}  // namespace kelp
