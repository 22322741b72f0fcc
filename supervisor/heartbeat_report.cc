#include "supervisor/heartbeat_report.h"

#include <sys/stat.h>

#include <ctime>

#include "common/log.h"
#include "supervisor/ttl_expiry.h"

namespace kelp {

void FillIdentity(const ServerIdentity& who, master_pb::Heartbeat* hb) {
  const ServerConfig& c = *who.config;
  hb->set_ip(c.ip);
  hb->set_port(uint32_t(c.port));
  hb->set_grpc_port(uint32_t(c.grpc_port));
  hb->set_public_url(c.public_url);
  hb->set_id(c.id);
  hb->set_data_center(c.data_center);
  hb->set_rack(c.rack);
}

master_pb::VolumeShortInformationMessage ShortInfo(const Store& store, const Volume& v) {
  master_pb::VolumeShortInformationMessage m;
  const size_t li = store.LocationOf(v.id());
  m.set_id(v.id());
  m.set_collection(v.collection());
  m.set_replica_placement(v.super_block().replica_placement.Byte());
  m.set_version(v.version());
  m.set_ttl(v.super_block().ttl.ToUint32());
  m.set_disk_type(store.locations()[li].disk_type);
  m.set_disk_id(uint32_t(li));
  return m;
}

master_pb::VolumeInformationMessage VolumeReport(const Store& store, const Volume& v) {
  master_pb::VolumeInformationMessage m;
  const size_t li = store.LocationOf(v.id());
  const SegmentCounters& c = v.counters();
  m.set_id(v.id());
  m.set_size(v.dat_size());
  m.set_collection(v.collection());
  m.set_file_count(c.file_count);
  m.set_delete_count(c.deleted_count);
  m.set_deleted_byte_count(c.deleted_bytes);
  m.set_read_only(v.read_only());
  m.set_replica_placement(v.super_block().replica_placement.Byte());
  m.set_version(v.version());
  m.set_ttl(v.super_block().ttl.ToUint32());
  m.set_compact_revision(v.super_block().compaction_revision);
  struct stat st;
  if (fstat(v.dat_fd(), &st) == 0) m.set_modified_at_second(st.st_mtim.tv_sec);
  m.set_disk_type(store.locations()[li].disk_type);
  m.set_disk_id(uint32_t(li));
  return m;
}

master_pb::VolumeEcShardInformationMessage EcShardsReport(size_t location, const EcVolume& v) {
  master_pb::VolumeEcShardInformationMessage m;
  m.set_id(v.id());
  m.set_collection(v.collection());
  uint32_t bits = 0;
  for (const auto& [shard, f] : v.shards()) {
    bits |= 1u << shard;
    m.add_shard_sizes(f.size);  // ascending shard id: the map's order
  }
  m.set_ec_index_bits(bits);
  m.set_disk_type(v.disk_type());
  m.set_expire_at_sec(v.expire_at_sec());
  m.set_disk_id(uint32_t(location));
  m.set_file_count(v.ecx_rows());
  m.set_delete_count(v.deleted_count());
  m.set_encode_ts_ns(v.encode_ts_ns());
  return m;
}

master_pb::VolumeEcShardInformationMessage EcShardDelta(size_t location, const EcVolume& v, int shard, int64_t size, bool mounted) {
  master_pb::VolumeEcShardInformationMessage m;
  m.set_id(v.id());
  m.set_collection(v.collection());
  m.set_ec_index_bits(1u << shard);
  m.add_shard_sizes(mounted ? size : 0);
  m.set_disk_type(v.disk_type());
  if (mounted) m.set_expire_at_sec(v.expire_at_sec());
  m.set_disk_id(uint32_t(location));
  m.set_encode_ts_ns(v.encode_ts_ns());
  return m;
}

master_pb::Heartbeat FullReport(const Store& store, const ServerIdentity& who) {
  master_pb::Heartbeat hb;
  FillIdentity(who, &hb);
  uint64_t max_file_key = 0;
  const uint64_t now_s = uint64_t(std::time(nullptr));
  for (const auto& [vid, v] : store.volumes()) {
    // An expired TTL volume is no longer announced (AdminService removes it).
    if (TtlStateOf(v->super_block().ttl, v->dat_size(), store.volume_size_limit(), v->counters().last_modified_s, now_s) !=
        TtlState::kLive) {
      KLOG_INFO("volume %u is expired", vid);
      continue;
    }
    *hb.add_volumes() = VolumeReport(store, *v);
    max_file_key = std::max(max_file_key, v->counters().max_file_key);
  }
  hb.set_max_file_key(max_file_key);
  hb.set_has_no_volumes(store.volumes().empty());
  bool any_shard = false;
  for (const auto& [vid, by_location] : store.ec_volumes()) {
    for (const auto& [li, ec] : by_location) {
      if (ec->empty()) continue;
      *hb.add_ec_shards() = EcShardsReport(li, *ec);
      any_shard = true;
    }
  }
  hb.set_has_no_ec_shards(!any_shard);
  auto& max_counts = *hb.mutable_max_volume_counts();
  auto& total = *hb.mutable_disk_total_bytes();
  auto& free = *hb.mutable_disk_free_bytes();
  for (size_t li = 0; li < store.locations().size(); ++li) {
    const DiskLocation& loc = store.locations()[li];
    max_counts[loc.disk_type] += uint32_t(std::max(0, loc.effective_max));
    const DiskUsage u = Store::UsageOf(loc.dir);
    total[loc.disk_type] += u.all;
    free[loc.disk_type] += u.free;
    hb.add_location_uuids(loc.uuid);
    auto* tag = hb.add_disk_tags();
    tag->set_disk_id(uint32_t(li));
    tag->set_type(loc.disk_type);
    tag->set_max_volume_count(std::max(0, loc.effective_max));
  }
  return hb;
}

}  // namespace kelp
