#include "common/replica_placement.h"

namespace kelp {

std::string ReplicaPlacement::String() const {
  return std::string{char('0' + diff_data_center), char('0' + diff_rack), char('0' + same_rack)};
}

Result<ReplicaPlacement> ParseReplicaPlacement(std::string_view s) {
  std::string t(s);
  if (t.size() < 3) t.insert(0, 3 - t.size(), '0');
  int counts[3] = {0, 0, 0};
  for (size_t i = 0; i < t.size(); ++i) {
    const int count = int(static_cast<unsigned char>(t[i])) - '0';
    if (count < 0) return Status::Invalid("unknown replication type: " + t);
    if (i < 3) counts[i] = count;
  }
  const int value = counts[0] * 100 + counts[1] * 10 + counts[2];
  if (value > 255) return Status::Invalid("unexpected replication type: " + t);
  // Digits above 9 in a position still encode into the byte the way Go's arithmetic does.
  return ReplicaPlacement::FromByte(uint8_t(value));
}

}  // namespace kelp
