#include "common/volume_info.h"

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "common/file_util.h"

namespace kelp {

namespace {
// protojson writes 64-bit integers as strings but accepts numbers too.
template <typename T>
T Int64Field(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return 0;
  const auto& v = j[key];
  if (v.is_string()) return static_cast<T>(std::stoll(v.get<std::string>()));
  if (v.is_number()) return v.get<T>();
  throw nlohmann::json::type_error::create(302, std::string("bad ") + key, nullptr);
}
}  // namespace

Result<VolumeInfo> DecodeVolumeInfo(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    if (!j.is_object()) return Status::Corruption("volume info is not a JSON object");
    VolumeInfo v;
    v.version = j.value("version", 0u);
    v.replication = j.value("replication", std::string());
    v.bytes_offset = j.value("bytesOffset", 0u);
    v.dat_file_size = Int64Field<int64_t>(j, "datFileSize");
    v.expire_at_sec = Int64Field<uint64_t>(j, "expireAtSec");
    v.read_only = j.value("readOnly", false);
    v.read_only_can_delete = j.value("readOnlyCanDelete", false);
    v.has_remote_files = j.contains("files") && j["files"].is_array() && !j["files"].empty();
    v.original_json = text;
    return v;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("failed to unmarshal volume info: ") + e.what());
  }
}

std::string EncodeVolumeInfo(const VolumeInfo& v) {
  nlohmann::ordered_json j;
  if (!v.original_json.empty()) {
    // Keep fields this version does not model (remote files, EC config).
    try {
      auto old = nlohmann::ordered_json::parse(v.original_json);
      if (old.is_object()) j = old;
    } catch (...) {
    }
  }
  if (!j.contains("files")) j["files"] = nlohmann::ordered_json::array();
  j["version"] = v.version;
  j["replication"] = v.replication;
  j["bytesOffset"] = v.bytes_offset;
  j["datFileSize"] = std::to_string(v.dat_file_size);
  j["expireAtSec"] = std::to_string(v.expire_at_sec);
  j["readOnly"] = v.read_only;
  if (!j.contains("ecShardConfig")) j["ecShardConfig"] = nullptr;
  j["readOnlyCanDelete"] = v.read_only_can_delete;
  return j.dump(2);
}

Result<VolumeInfo> LoadVolumeInfo(const std::string& path, bool* exists) {
  std::ifstream in(path, std::ios::binary);
  *exists = in.good();
  if (!*exists) return VolumeInfo{};
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  if (text.empty()) return VolumeInfo{};
  return DecodeVolumeInfo(text);
}

Status SaveVolumeInfo(const std::string& path, const VolumeInfo& info) {
  return WriteFileAtomically(path, EncodeVolumeInfo(info));
}

}  // namespace kelp
