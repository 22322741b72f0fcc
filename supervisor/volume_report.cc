#include "supervisor/volume_report.h"

#include <xxhash.h>

#include <cstring>
#include <set>
#include <string>

namespace kelp {
namespace {

void PutLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (8 * i));
}
void PutLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = uint8_t(v >> (8 * i));
}

uint64_t Hash(const void* data, size_t n) { return XXH64(data, n, 0); }
uint64_t Hash(const std::string& s) { return XXH64(s.data(), s.size(), 0); }

// Order-dependent, so two string fields that swap values change the hash.
uint64_t Fold(uint64_t h, uint64_t x) {
  h ^= x;
  h *= 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 29);
}

// The master keeps counts as 32-bit values, saturated.
uint64_t Count32(uint64_t n) { return n > 0xffffffffull ? 0xffffffffull : n; }

// The master keeps a TTL as (count, unit) bytes; a count of 0 is no TTL.
uint32_t StoredTtl(uint32_t ttl) { return (ttl >> 8 & 0xff) == 0 ? 0 : (ttl & 0xffff); }

void FillShort(const master_pb::VolumeInformationMessage& m, master_pb::VolumeShortInformationMessage* s) {
  s->set_id(m.id());
  s->set_collection(m.collection());
  s->set_replica_placement(m.replica_placement());
  s->set_version(m.version());
  s->set_ttl(m.ttl());
  s->set_disk_type(m.disk_type());
  s->set_disk_id(m.disk_id());
}

}  // namespace

uint64_t VolumeReportHash(const master_pb::VolumeInformationMessage& m) {
  uint8_t fixed[57] = {};
  PutLe32(fixed + 0, m.id());
  PutLe64(fixed + 4, m.size());
  PutLe64(fixed + 12, Count32(m.file_count()));
  PutLe64(fixed + 20, Count32(m.delete_count()));
  PutLe64(fixed + 28, m.deleted_byte_count());
  PutLe32(fixed + 36, m.replica_placement() & 0xff);
  PutLe32(fixed + 40, m.version() & 0xff);
  PutLe32(fixed + 44, StoredTtl(m.ttl()));
  PutLe32(fixed + 48, m.compact_revision());
  PutLe32(fixed + 52, m.disk_id());
  fixed[56] = m.read_only() ? 1 : 0;
  uint64_t h = Hash(fixed, sizeof fixed);
  uint8_t modified[8];
  PutLe64(modified, uint64_t(m.modified_at_second()));
  h = Fold(h, Hash(modified, sizeof modified));
  h = Fold(h, Hash(m.collection()));
  h = Fold(h, Hash(m.disk_type()));
  h = Fold(h, Hash(m.remote_storage_name()));
  return h;
}

void VolumeReportState::Reset() {
  last_.clear();
  deltas_accepted_ = false;
  full_needed_ = true;
}

void VolumeReportState::AcceptDeltas() { deltas_accepted_ = true; }

void VolumeReportState::RequestFullList() { full_needed_ = true; }

void VolumeReportState::Shape(master_pb::Heartbeat* hb) {
  const uint64_t pass = ++pass_;
  const bool full = full_needed_ || !deltas_accepted_;
  uint64_t digest = 0;
  google::protobuf::RepeatedPtrField<master_pb::VolumeInformationMessage> changed;
  std::set<uint32_t> held;
  for (master_pb::VolumeInformationMessage& v : *hb->mutable_volumes()) {
    const uint64_t h = VolumeReportHash(v);
    digest ^= h;
    held.insert(v.id());
    auto [it, added] = last_.try_emplace(Key{v.disk_id(), v.id()});
    Reported& r = it->second;
    const bool differs = added || r.hash != h;
    if (differs) FillShort(v, &r.short_info);
    r.hash = h;
    r.pass = pass;
    if (differs && !full) *changed.Add() = std::move(v);
  }
  // Copies this pass did not find are forgotten; a volume no disk holds any
  // more is named as gone (a delta says nothing by silence). A full list is
  // the whole truth and names none.
  hb->clear_deleted_volumes();
  for (auto it = last_.begin(); it != last_.end();) {
    if (it->second.pass == pass) {
      ++it;
      continue;
    }
    if (!full && !held.count(it->first.second)) *hb->add_deleted_volumes() = it->second.short_info;
    it = last_.erase(it);
  }
  full_needed_ = false;
  hb->set_volume_digest(digest);
  if (full) {
    hb->set_has_no_volumes(hb->volumes_size() == 0);
    return;
  }
  hb->clear_volumes();
  *hb->mutable_changed_volumes() = std::move(changed);
  hb->set_has_no_volumes(false);  // only a whole list may say the server is empty
}

}  // namespace kelp
