// File ids: "<volume id>,<needle id hex><cookie as 8 hex digits>"
// (upstream: weed/storage/needle/file_id.go, needle.go ParseNeedleIdCookie).
#pragma once
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/types.h"

namespace kelp {

struct NeedleIdCookie {
  NeedleId id = 0;
  Cookie cookie = 0;
};

// Parses the part after the comma. The last 8 hex digits are the cookie; the
// rest (1..16 digits) the needle id. Errors carry Go's message text.
Result<NeedleIdCookie> ParseNeedleIdCookie(std::string_view key_cookie);

// Go's Needle.ParsePath: id + cookie with an optional decimal "_delta" added to
// the id (a delta that would overflow the id is refused).
Result<NeedleIdCookie> ParseFidWithDelta(std::string_view fid);

// Go's operation.ParseFileId: "<vid>,<key>" split at the first comma; a
// missing or leading comma is "Wrong fid format.". Neither part is checked.
struct FileIdParts {
  std::string_view vid, key;
};
Result<FileIdParts> SplitFileId(std::string_view fid);

// Go's NewVolumeId: strconv.ParseUint(s, 10, 64), truncated to 32 bits.
Result<VolumeId> ParseVolumeId(std::string_view s);

// Hex of id ++ cookie with the id's leading zero bytes dropped, as Go formats it.
std::string FormatNeedleIdCookie(NeedleId id, Cookie cookie);
std::string FormatFileId(VolumeId vid, NeedleId id, Cookie cookie);

// Strict hex parse of 1..max_digits digits (no sign, no prefix).
bool ParseHex(std::string_view s, size_t max_digits, uint64_t* out);

}  // namespace kelp
