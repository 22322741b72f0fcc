#include "worker-http/jwt.h"

#include <sodium.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "worker-http/jwt_claims.h"

namespace kelp {
namespace {

bool Base64UrlDecode(std::string_view in, std::string* out) {
  out->assign(in.size(), '\0');
  size_t n = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out->data()), out->size(), in.data(), in.size(), nullptr, &n,
                        nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return false;
  out->resize(n);
  return true;
}

std::string Base64UrlEncode(std::string_view in) {
  std::string out(sodium_base64_ENCODED_LEN(in.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()), in.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view msg) {
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
  crypto_auth_hmacsha256_final(&st, mac);
  return std::string(reinterpret_cast<char*>(mac), sizeof mac);
}

std::string HmacSha512(std::string_view key, std::string_view msg) {
  unsigned char mac[crypto_auth_hmacsha512_BYTES];
  crypto_auth_hmacsha512_state st;
  crypto_auth_hmacsha512_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha512_update(&st, reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
  crypto_auth_hmacsha512_final(&st, mac);
  return std::string(reinterpret_cast<char*>(mac), sizeof mac);
}

}  // namespace

bool VerifyFileIdJwt(std::string_view token, std::string_view key, std::string_view fid, int64_t now_s) {
  const size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return false;
  const size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) return false;
  std::string header, claims, signature;
  if (!Base64UrlDecode(token.substr(0, dot1), &header) || !Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1), &claims) ||
      !Base64UrlDecode(token.substr(dot2 + 1), &signature))
    return false;
  const nlohmann::json h = nlohmann::json::parse(header, nullptr, false);
  if (!h.is_object() || !h.contains("alg") || !h["alg"].is_string()) return false;
  const std::string alg = h["alg"].get<std::string>();
  const std::string_view signed_part = token.substr(0, dot2);
  std::string expected;
  if (alg == "HS256") expected = HmacSha256(key, signed_part);
  else if (alg == "HS512") expected = HmacSha512(key, signed_part);
  else return false;
  if (signature.size() != expected.size() ||
      sodium_memcmp(signature.data(), expected.data(), expected.size()) != 0)
    return false;
  FileIdClaims c;
  if (!DecodeFileIdClaims(claims, &c)) return false;
  // golang-jwt: expired once now is after exp, not valid while now is before nbf.
  const int64_t now = GoDateSeconds(double(now_s));
  if (c.exp && now > GoDateSeconds(*c.exp)) return false;
  if (c.nbf) {
    const int64_t nbf = GoDateSeconds(*c.nbf);
    if (now < nbf || (now == nbf && *c.nbf > std::trunc(*c.nbf))) return false;
  }
  return c.fid == fid;
}

std::string SignJwtHs256(std::string_view claims_json, std::string_view key) {
  const std::string signed_part = Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})") + "." + Base64UrlEncode(claims_json);
  return signed_part + "." + Base64UrlEncode(HmacSha256(key, signed_part));
}

}  // namespace kelp
