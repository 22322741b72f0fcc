#include "supervisor/ec_rebuild_sidecar.h"

#include <algorithm>

#include "common/log.h"
#include "storage/ec_volume.h"

namespace kelp {

RebuildSidecar FindRebuildSidecar(Env* env, const std::string& data_base, const std::vector<std::string>& extra_dirs, int data, int parity) {
  std::vector<std::string> candidates{data_base + ".ecsum"};
  const std::string name = data_base.substr(data_base.rfind('/') + 1);
  for (const std::string& dir : extra_dirs) candidates.push_back(dir + "/" + name + ".ecsum");
  RebuildSidecar out;
  std::string why;
  out.state = EvaluateEcsum(ReadEcsumFile(env, candidates), data, parity, &out.manifest, &why);
  if (out.state == EcsumState::kInvalid) KLOG_WARN("rebuild of %s: %s", data_base.c_str(), why.c_str());
  return out;
}

std::vector<int> InputsOfWrongSize(const EcChecksumManifest& m, const std::map<int, int64_t>& sizes) {
  std::vector<int> wrong;
  for (const auto& [shard, size] : sizes)
    if (const EcShardChecksumEntry* e = m.Find(uint32_t(shard)); e && e->covered_size != size) wrong.push_back(shard);
  return wrong;
}

std::vector<int> InputsFailingChecksums(const EcChecksumManifest& m, const std::map<int, int64_t>& inputs, const EcShardChecksumLists& crcs) {
  std::vector<int> failing;
  for (const auto& [shard, size] : inputs) {
    const EcShardChecksumEntry* e = m.Find(uint32_t(shard));
    const auto list = crcs.find(shard);
    if (e && list != crcs.end() && e->block_crcs != list->second) failing.push_back(shard);
  }
  return failing;
}

size_t DifferingBlocks(const EcChecksumManifest& m, int shard, const std::vector<uint32_t>& crcs) {
  const EcShardChecksumEntry* e = m.Find(uint32_t(shard));
  if (!e) return 0;
  const size_t common = std::min(e->block_crcs.size(), crcs.size());
  size_t differ = std::max(e->block_crcs.size(), crcs.size()) - common;
  for (size_t i = 0; i < common; ++i) differ += e->block_crcs[i] != crcs[i];
  return differ;
}

}  // namespace kelp
