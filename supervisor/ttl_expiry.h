// When a TTL volume is over, by Go 4.48's rule (weed/storage/volume.go's
// expired and expiredLongEnough). A volume is expired once more whole
// minutes than its TTL have passed since its newest write, provided the
// master's size limit is known and the volume holds more than its
// superblock; an expired volume is left out of heartbeats. It is removed once
// its TTL plus a tenth of it (at most 10 minutes) has passed.
#pragma once
#include <cstdint>

#include "common/ttl.h"

namespace kelp {

enum class TtlState { kLive, kExpired, kRemovable };

// At most this many minutes pass between a volume's expiry and its removal.
constexpr uint32_t kMaxTtlRemovalDelayMinutes = 10;

TtlState TtlStateOf(const Ttl& ttl, uint64_t dat_size, uint64_t volume_size_limit, uint64_t last_modified_s, uint64_t now_s);

}  // namespace kelp
