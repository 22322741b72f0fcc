#include "supervisor/ttl_expiry.h"

#include <algorithm>

#include "common/super_block.h"

namespace kelp {

TtlState TtlStateOf(const Ttl& ttl, uint64_t dat_size, uint64_t volume_size_limit, uint64_t last_modified_s, uint64_t now_s) {
  const uint32_t minutes = ttl.Minutes();
  if (volume_size_limit == 0 || dat_size <= kSuperBlockSize || minutes == 0) return TtlState::kLive;
  const int64_t lived_minutes = (int64_t(now_s) - int64_t(last_modified_s)) / 60;
  if (int64_t(minutes) >= lived_minutes) return TtlState::kLive;
  const uint32_t delay = std::min(minutes / 10, kMaxTtlRemovalDelayMinutes);
  if (uint64_t(minutes + delay) * 60 + last_modified_s < now_s) return TtlState::kRemovable;
  return TtlState::kExpired;
}

}  // namespace kelp
