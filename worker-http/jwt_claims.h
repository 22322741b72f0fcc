// The claims of a file-id JWT decoded as Go's encoding/json decodes them into
// SeaweedFileIdClaims (golang-jwt's RegisteredClaims plus `fid`): keys matched
// without regard to ASCII case, the last matching key winning, `null` leaving
// a string as it was and clearing a date, dates given as a JSON number or as a
// string holding one, and any claim of the wrong type failing the token.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kelp {

struct FileIdClaims {
  std::string fid;
  std::optional<double> exp, nbf, iat;  // seconds since the epoch
};

// False when the claims are not a JSON object or a known claim has a type Go refuses.
bool DecodeFileIdClaims(std::string_view json, FileIdClaims* out);

// The whole seconds of a date as Go's time.Time holds them (counted from year
// 1): the float's conversion to int64 gives INT64_MIN when out of range (as on
// amd64) and adding the epoch offset wraps, so golang-jwt sees a date at or
// near 2^63 s as lying in the far past.
int64_t GoDateSeconds(double unix_seconds);

}  // namespace kelp
