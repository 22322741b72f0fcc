// Replica placement "xyz": x other data centers, y other racks, z other servers
// in the same rack; stored as the byte x*100+y*10+z
// (upstream: weed/storage/super_block/replica_placement.go).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kelp {

struct ReplicaPlacement {
  uint8_t diff_data_center = 0;
  uint8_t diff_rack = 0;
  uint8_t same_rack = 0;

  uint8_t Byte() const { return uint8_t(diff_data_center * 100 + diff_rack * 10 + same_rack); }
  static ReplicaPlacement FromByte(uint8_t b) { return {uint8_t(b / 100), uint8_t(b / 10 % 10), uint8_t(b % 10)}; }
  int CopyCount() const { return diff_data_center + diff_rack + same_rack + 1; }
  std::string String() const;  // always three digits, e.g. "001"
  bool operator==(const ReplicaPlacement&) const = default;
};

Result<ReplicaPlacement> ParseReplicaPlacement(std::string_view s);

}  // namespace kelp
