#include "supervisor/store.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "common/file_id.h"
#include "common/log.h"

namespace kelp {

bool ParseVolumeFileBase(const std::string& base, std::string* collection, VolumeId* id) {
  const size_t us = base.rfind('_');
  const std::string num = us == std::string::npos ? base : base.substr(us + 1);
  auto vid = ParseVolumeId(num);
  if (!vid.ok()) return false;
  *collection = us == std::string::npos ? "" : base.substr(0, us);
  *id = vid.value();
  return true;
}

Status Store::LoadAll() {
  for (size_t li = 0; li < locations_.size(); ++li) {
    const DiskLocation& loc = locations_[li];
    if (mkdir(loc.dir.c_str(), 0755) != 0 && errno != EEXIST)
      return Status::IOError("cannot create directory " + loc.dir + ": " + std::strerror(errno));
    if (loc.idx_dir != loc.dir && mkdir(loc.idx_dir.c_str(), 0755) != 0 && errno != EEXIST)
      return Status::IOError("cannot create directory " + loc.idx_dir + ": " + std::strerror(errno));
    DIR* d = opendir(loc.dir.c_str());
    if (!d) return Status::IOError("cannot read directory " + loc.dir + ": " + std::strerror(errno));
    std::vector<std::string> bases;
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".dat") == 0) bases.push_back(name.substr(0, name.size() - 4));
    }
    closedir(d);
    for (const std::string& base : bases) {
      VolumeFileNames names;
      if (!ParseVolumeFileBase(base, &names.collection, &names.id)) continue;
      names.dir = loc.dir;
      names.idx_dir = loc.idx_dir;
      if (volumes_.count(names.id)) {
        KLOG_WARN("volume %u found again in %s; keeping the first copy", names.id, loc.dir.c_str());
        continue;
      }
      auto v = Volume::Load(names, offset_bytes_);
      if (!v.ok()) {
        KLOG_ERROR("load volume %s/%s: %s", loc.dir.c_str(), base.c_str(), v.status().message().c_str());
        continue;
      }
      if (!v.value()->load_warning().empty())
        KLOG_WARN("volume %u loaded read-only: %s", names.id, v.value()->load_warning().c_str());
      location_of_[names.id] = li;
      volumes_[names.id] = std::move(v.value());
    }
    KLOG_INFO("disk location %s: %zu volume(s)", loc.dir.c_str(), bases.size());
  }
  return Status::Ok();
}

Volume* Store::Find(VolumeId id) const {
  auto it = volumes_.find(id);
  return it == volumes_.end() ? nullptr : it->second.get();
}

}  // namespace kelp
