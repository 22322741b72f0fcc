#include "worker-http/request_id.h"

#include <sodium.h>

#include <chrono>
#include <cstdio>

namespace kelp {

std::string NewRequestId() {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const uint32_t random = randombytes_random();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%llX%08X", static_cast<unsigned long long>(ns), random);
  return buf;
}

}  // namespace kelp
