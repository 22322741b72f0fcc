#include "worker-http/request_id.h"

#include <sodium.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace kelp {
namespace {

// The 4 random bytes only keep ids apart, they guard nothing: a per-thread
// splitmix64 sequence, seeded once from the system generator, spares a
// getrandom call per response.
uint32_t NextRandom() {
  thread_local uint64_t state = [] {
    uint64_t seed;
    randombytes_buf(&seed, sizeof seed);
    return seed;
  }();
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return uint32_t((z ^ (z >> 31)) >> 32);
}

}  // namespace

std::string NewRequestId() {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%llX%08X", static_cast<unsigned long long>(ns), NextRandom());
  return buf;
}

}  // namespace kelp
