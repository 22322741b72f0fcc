// Time-to-live of volumes and needles: two bytes, count then unit
// (upstream: weed/storage/needle/volume_ttl.go).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kelp {

enum class TtlUnit : uint8_t { kEmpty = 0, kMinute, kHour, kDay, kWeek, kMonth, kYear };

struct Ttl {
  uint8_t count = 0;
  uint8_t unit = 0;  // a TtlUnit; unknown stored values are kept as read

  bool empty() const { return count == 0 || unit == 0; }
  uint64_t Seconds() const;
  uint32_t Minutes() const { return empty() ? 0 : uint32_t(Seconds() / 60); }  // Go's Minutes(), in uint32
  std::string String() const;  // "" when empty, e.g. "3d"
  uint32_t ToUint32() const { return count == 0 ? 0 : uint32_t(count) << 8 | unit; }
  void ToBytes(uint8_t* out) const { out[0] = count; out[1] = unit; }
  static Ttl FromBytes(const uint8_t* in) { return Ttl{in[0], in[1]}; }
  bool operator==(const Ttl&) const = default;
};

// Parses "", "15" (minutes), "3m", "4h", "5d", "6w", "7M", "8y"; the result is
// normalised to the largest unit that represents it exactly, as Go does.
Result<Ttl> ParseTtl(std::string_view s);

}  // namespace kelp
