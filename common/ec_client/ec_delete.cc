#include "common/ec_client/ec_delete.h"

#include <vector>

#include "common/ec_layout.h"
#include "common/rs_codec.h"

namespace kelp {

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
