#include "common/super_block.h"

#include "common/bytes.h"

namespace kelp {

std::string SuperBlock::Encode() const {
  std::string out(kSuperBlockSize, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  p[0] = version;
  p[1] = replica_placement.Byte();
  ttl.ToBytes(p + 2);
  PutU16(p + 4, compaction_revision);
  if (!extra.empty()) {
    PutU16(p + 6, uint16_t(extra.size()));
    out += extra;
  }
  return out;
}

uint16_t ExtraSizeOf(const uint8_t* h) { return (h[0] == kVersion2 || h[0] == kVersion3) ? GetU16(h + 6) : 0; }

Result<SuperBlock> ParseSuperBlockHeader(const uint8_t* h) {
  if (h[0] < kVersion1 || h[0] > kVersion3)
    return Status::Corruption("unsupported volume version " + std::to_string(h[0]));
  SuperBlock sb;
  sb.version = h[0];
  sb.replica_placement = ReplicaPlacement::FromByte(h[1]);
  sb.ttl = Ttl::FromBytes(h + 2);
  sb.compaction_revision = GetU16(h + 4);
  return sb;
}

}  // namespace kelp
