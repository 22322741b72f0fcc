// File-id JWTs as Go's volume server checks them (security.DecodeJwt with
// SeaweedFileIdClaims): HMAC-signed (HS256 or HS512), the claims decoded as Go
// decodes them (jwt_claims), `exp`/`nbf` honoured when present, and the `fid`
// claim equal to the requested "vid,fid".
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace kelp {

// True when `token` is signed with `key`, is valid at `now_s`, and names `fid`.
bool VerifyFileIdJwt(std::string_view token, std::string_view key, std::string_view fid, int64_t now_s);

// An HS256 token with the given claims JSON (chunk requests, tests and tools).
std::string SignJwtHs256(std::string_view claims_json, std::string_view key);

}  // namespace kelp
