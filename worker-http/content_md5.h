// The Content-MD5 value of a body: base64 of its MD5 digest (RFC 1864).
#pragma once
#include <string>
#include <string_view>

namespace kelp {

std::string ContentMd5(std::string_view data);

}  // namespace kelp
