#include <doctest/doctest.h>

#include "supervisor/ttl_expiry.h"

using namespace kelp;

namespace {
constexpr uint64_t kLimit = 30ull << 20;
constexpr uint64_t kWritten = 1700000000;
Ttl Minutes(uint8_t n) { return Ttl{n, uint8_t(TtlUnit::kMinute)}; }
}  // namespace

TEST_CASE("a TTL volume expires after more whole minutes than its TTL, and is removed a tenth of it (at most 10 min) later") {
  const Ttl ttl = Minutes(30);  // removal delay: 3 minutes
  auto at = [&](uint64_t seconds_after) { return TtlStateOf(ttl, 1000, kLimit, kWritten, kWritten + seconds_after); };
  CHECK(at(0) == TtlState::kLive);
  CHECK(at(30 * 60 + 59) == TtlState::kLive);      // 30 whole minutes: not more than the TTL
  CHECK(at(31 * 60) == TtlState::kExpired);        // 31
  CHECK(at(33 * 60) == TtlState::kExpired);        // removal needs strictly more than TTL + delay
  CHECK(at(33 * 60 + 1) == TtlState::kRemovable);
  // The delay is capped at 10 minutes: a 3-day TTL is removed 10 minutes after it ends.
  const Ttl days = Ttl{3, uint8_t(TtlUnit::kDay)};
  const uint64_t end = 3ull * 24 * 60 * 60;
  CHECK(TtlStateOf(days, 1000, kLimit, kWritten, kWritten + end + 60) == TtlState::kExpired);
  CHECK(TtlStateOf(days, 1000, kLimit, kWritten, kWritten + end + 600) == TtlState::kExpired);
  CHECK(TtlStateOf(days, 1000, kLimit, kWritten, kWritten + end + 601) == TtlState::kRemovable);
  // A TTL under 10 minutes has no delay.
  CHECK(TtlStateOf(Minutes(5), 1000, kLimit, kWritten, kWritten + 6 * 60 + 1) == TtlState::kRemovable);
}

TEST_CASE("a volume without a TTL, without data past its superblock, or before the size limit is known never expires") {
  const uint64_t much_later = kWritten + 10ull * 365 * 24 * 3600;
  CHECK(TtlStateOf(Ttl{}, 1000, kLimit, kWritten, much_later) == TtlState::kLive);
  CHECK(TtlStateOf(Minutes(1), 8, kLimit, kWritten, much_later) == TtlState::kLive);  // the superblock alone
  CHECK(TtlStateOf(Minutes(1), 9, kLimit, kWritten, much_later) == TtlState::kRemovable);
  CHECK(TtlStateOf(Minutes(1), 1000, 0, kWritten, much_later) == TtlState::kLive);
  // A write in the future (clock skew) keeps it live.
  CHECK(TtlStateOf(Minutes(1), 1000, kLimit, much_later, kWritten) == TtlState::kLive);
}
