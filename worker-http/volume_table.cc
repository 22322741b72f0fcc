#include "worker-http/volume_table.h"

#include <limits.h>
#include <unistd.h>

namespace kelp {

VolumeView::~VolumeView() {
  if (dat_fd >= 0) close(dat_fd);
}

Status VolumeTable::Attach(ipc::Message& m) {
  ipc::VolumeAttach a;
  if (!m.AsPrefix(&a) || m.fds.size() != 2 || m.payload.size() != sizeof a + a.collection_length)
    return Status::Invalid("malformed volume attach");
  auto seg = IndexSegmentReader::Map(m.fds[1]);
  if (!seg.ok()) return seg.status();
  auto v = std::make_unique<VolumeView>();
  v->id = a.volume_id;
  v->collection = std::string(m.Tail(sizeof a).substr(0, a.collection_length));
  v->version = a.version;
  v->compaction_revision = a.compaction_revision;
  v->replica_placement = ReplicaPlacement::FromByte(a.replica_placement);
  v->ttl = Ttl{a.ttl_count, a.ttl_unit};
  v->dat_fd = m.fds[0];
  char path[PATH_MAX];
  const ssize_t n = readlink(("/proc/self/fd/" + std::to_string(v->dat_fd)).c_str(), path, sizeof path - 1);
  if (n > 0) v->dir = std::string(path, size_t(n)).substr(0, std::string_view(path, size_t(n)).rfind('/'));
  v->segment = std::move(seg.value());
  close(m.fds[1]);  // the mapping keeps the segment alive
  m.fds.clear();
  volumes_[a.volume_id] = std::move(v);
  return Status::Ok();
}

void VolumeTable::Detach(VolumeId id) { volumes_.erase(id); }

Result<uint64_t> VolumeTable::ReplaceSegment(VolumeId id, int fd) {
  auto it = volumes_.find(id);
  if (it == volumes_.end()) return Status::NotFound("volume not attached");
  auto seg = IndexSegmentReader::Map(fd);
  if (!seg.ok()) return seg.status();
  it->second->segment = std::move(seg.value());
  return it->second->segment.Generation();
}

const VolumeView* VolumeTable::Find(VolumeId id) const {
  auto it = volumes_.find(id);
  return it == volumes_.end() ? nullptr : it->second.get();
}

}  // namespace kelp
