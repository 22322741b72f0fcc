#include "common/ttl.h"

#include <charconv>

namespace kelp {
namespace {

constexpr uint64_t kMinute = 60, kHour = 3600, kDay = 86400, kWeek = 7 * kDay, kMonth = 30 * kDay, kYear = 365 * kDay;

uint64_t UnitSeconds(uint8_t unit) {
  switch (TtlUnit(unit)) {
    case TtlUnit::kMinute: return kMinute;
    case TtlUnit::kHour: return kHour;
    case TtlUnit::kDay: return kDay;
    case TtlUnit::kWeek: return kWeek;
    case TtlUnit::kMonth: return kMonth;
    case TtlUnit::kYear: return kYear;
    default: return 0;
  }
}

uint8_t UnitFromLetter(char c) {
  switch (c) {
    case 'm': return uint8_t(TtlUnit::kMinute);
    case 'h': return uint8_t(TtlUnit::kHour);
    case 'd': return uint8_t(TtlUnit::kDay);
    case 'w': return uint8_t(TtlUnit::kWeek);
    case 'M': return uint8_t(TtlUnit::kMonth);
    case 'y': return uint8_t(TtlUnit::kYear);
    default: return 0;
  }
}

// Picks the largest unit dividing the duration exactly with a count < 256,
// then the smallest unit whose (truncated) count fits.
Ttl FitSeconds(uint64_t seconds) {
  if (seconds == 0) return {};
  const struct { uint64_t secs; TtlUnit unit; } exact[] = {
      {kYear, TtlUnit::kYear}, {kMonth, TtlUnit::kMonth}, {kWeek, TtlUnit::kWeek}, {kDay, TtlUnit::kDay}, {kHour, TtlUnit::kHour}};
  for (auto& e : exact)
    if (seconds % e.secs == 0 && seconds / e.secs < 256) return {uint8_t(seconds / e.secs), uint8_t(e.unit)};
  const struct { uint64_t secs; TtlUnit unit; } rough[] = {
      {kMinute, TtlUnit::kMinute}, {kHour, TtlUnit::kHour}, {kDay, TtlUnit::kDay}, {kWeek, TtlUnit::kWeek}, {kMonth, TtlUnit::kMonth}, {kYear, TtlUnit::kYear}};
  for (auto& e : rough)
    if (seconds / e.secs < 256) return {uint8_t(seconds / e.secs), uint8_t(e.unit)};
  return {};
}

}  // namespace

uint64_t Ttl::Seconds() const { return uint64_t(count) * UnitSeconds(unit); }

std::string Ttl::String() const {
  static const char kLetters[] = {0, 'm', 'h', 'd', 'w', 'M', 'y'};
  if (count == 0 || unit == 0 || unit > uint8_t(TtlUnit::kYear)) return "";
  return std::to_string(count) + kLetters[unit];
}

Result<Ttl> ParseTtl(std::string_view s) {
  if (s.empty()) return Ttl{};
  std::string_view digits = s;
  uint8_t unit = uint8_t(TtlUnit::kMinute);
  const char last = s.back();
  if (last < '0' || last > '9') {
    digits = s.substr(0, s.size() - 1);
    unit = UnitFromLetter(last);
  }
  // Go's strconv.Atoi: an optional sign, then decimal digits only.
  std::string_view body = digits;
  const bool negative = !body.empty() && body[0] == '-';
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
  uint64_t count = 0;
  auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), count);
  if (body.empty() || ec != std::errc() || ptr != body.data() + body.size())
    return Status::Invalid("strconv.Atoi: parsing \"" + std::string(digits) + "\": invalid syntax");
  if (negative || count == 0) return Ttl{};
  if (count > (uint64_t(1) << 40)) return Ttl{};
  return FitSeconds(count * UnitSeconds(unit));
}

}  // namespace kelp
