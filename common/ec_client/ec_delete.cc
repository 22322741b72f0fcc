#include "common/ec_client/ec_delete.h"

#include <algorithm>
#include <vector>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/ec_layout.h"
#include "common/needle.h"
#include "common/rs_codec.h"

namespace kelp {
namespace {

constexpr uint64_t kWindow = 1 << 20;

// A gather, its failure worded as Go's ReadEcShardNeedle words it.
EcGathered Gather(EcPeers* peers, const EcNeedleSite& site, uint64_t offset, uint64_t length, uint8_t* out, std::string* error) {
  const EcGathered got = GatherRecordRange(peers, site, offset, length, out, error);
  if (got == EcGathered::kError) *error = "ReadEcShardIntervals: " + *error;
  return got;
}

}  // namespace

EcGathered ReadEcNeedleFacts(EcPeers* peers, const EcNeedleSite& site, EcNeedleFacts* out, std::string* error) {
  const uint32_t size = site.where.size();
  const auto version = uint8_t(site.where.version());
  out->record_size = ActualSize(size, version);
  if (version == 1) {  // no data size to walk by: read whole
    std::vector<uint8_t> record(size_t(out->record_size));
    if (EcGathered got = Gather(peers, site, 0, record.size(), record.data(), error); got != EcGathered::kOk) return got;
    ParsedNeedle n;
    if (Status s = ParseNeedle(record.data(), record.size(), size, version, &n); !s.ok()) {
      *error = s.message();
      return EcGathered::kError;
    }
    out->cookie = n.header.cookie, out->flags = n.flags;
    return EcGathered::kOk;
  }
  uint8_t head[kNeedleHeaderSize + 4];
  const uint64_t head_len = size == 0 ? kNeedleHeaderSize : sizeof head;
  if (EcGathered got = Gather(peers, site, 0, head_len, head, error); got != EcGathered::kOk) return got;
  const NeedleHeader h = ParseNeedleHeader(head);
  out->cookie = h.cookie;
  if (h.size != size) {
    *error = "ec volume " + std::to_string(site.vid) + " needle " + std::to_string(site.id) + ": size mismatch";
    return EcGathered::kError;
  }
  if (size == 0) return EcGathered::kOk;
  const uint64_t data_size = GetU32(head + kNeedleHeaderSize);
  if (data_size + 4 > size) {
    *error = "index out of range 1: needle data corrupted";
    return EcGathered::kError;
  }
  uint32_t crc = 0;
  std::vector<uint8_t> window(size_t(std::min<uint64_t>(std::max<uint64_t>(data_size, 1), kWindow)));
  for (uint64_t done = 0; done < data_size;) {
    const uint64_t n = std::min<uint64_t>(data_size - done, kWindow);
    if (EcGathered got = Gather(peers, site, sizeof head + done, n, window.data(), error); got != EcGathered::kOk) return got;
    crc = Crc32cUpdate(crc, window.data(), size_t(n));
    done += n;
  }
  // The flags follow the data; the stored CRC follows the fields the header's size covers.
  uint8_t flags = 0, stored[4];
  if (size > 4 + data_size)
    if (EcGathered got = Gather(peers, site, sizeof head + data_size, 1, &flags, error); got != EcGathered::kOk) return got;
  if (EcGathered got = Gather(peers, site, kNeedleHeaderSize + size, 4, stored, error); got != EcGathered::kOk) return got;
  const uint32_t want = GetU32(stored);
  if (crc != want && LegacyCrcValue(crc) != want) {
    *error = "ec volume " + std::to_string(site.vid) + " needle " + std::to_string(site.id) + ": CRC error! Data On Disk Corrupted";
    return EcGathered::kError;
  }
  out->flags = flags;
  return EcGathered::kOk;
}

int EcPrimaryShard(const kelp_internal::EcNeedleLocated& where) {
  const EcLayout layout{int(where.data_shards()), where.large_block(), where.small_block()};
  const std::vector<EcInterval> first = LocateEcRange(layout, where.shard_dat_size(), where.offset(), 1);
  return first.empty() ? -1 : first.front().shard;
}

std::string DeleteOnEcHolders(EcPeers* peers, const std::string& master, VolumeId vid, const std::string& collection, NeedleId id,
                              uint32_t version, int primary) {
  auto holders = peers->Holders(master, vid);
  if (!holders.ok()) return holders.status().message();
  std::string error;
  // True when the shard has holders: their answer stands.
  auto try_shard = [&](int shard) -> bool {
    auto it = holders.value().find(shard);
    if (it == holders.value().end() || it->second.empty()) return false;
    for (const std::string& holder : it->second) {
      Status s = peers->DeleteBlob(holder, vid, collection, id, version);
      if (s.ok()) {
        error.clear();
        return true;
      }
      error = "failed to delete from ec shard " + std::to_string(shard) + " on " + holder + ": " + s.message();
    }
    return true;
  };
  if (try_shard(primary)) return error;
  error = "no holder of ec volume " + std::to_string(vid) + " found to delete from";
  for (int shard = 0; shard < kMaxEcShards; ++shard)
    if (shard != primary && try_shard(shard) && error.empty()) return error;
  return error;
}

}  // namespace kelp
