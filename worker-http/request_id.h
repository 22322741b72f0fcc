// Request ids in the form Go's volume server sets as X-Amz-Request-Id on every
// response: the UTC time in nanoseconds and 4 random bytes, upper-case hex.
#pragma once
#include <string>

namespace kelp {

std::string NewRequestId();

}  // namespace kelp
