#include "common/ec_client/ec_peers.h"

#include <algorithm>

#include "common/go_error.h"
#include "common/server_config.h"

namespace kelp {
namespace {

constexpr auto kLookupDeadline = std::chrono::seconds(10);
constexpr auto kReadDeadline = std::chrono::seconds(30);
// Go refetches after 11 s while shards are missing, and keeps a complete set longer.
constexpr auto kIncompleteAge = std::chrono::seconds(11);
constexpr auto kCompleteAge = std::chrono::minutes(7);

std::string RpcText(const grpc::Status& s) { return s.error_message(); }

}  // namespace

std::shared_ptr<grpc::Channel> EcPeers::ChannelTo(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& ch = channels_[address];
  if (!ch) ch = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  return ch;
}

Result<EcHolders> EcPeers::Holders(const std::string& master, VolumeId vid) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = holders_.find(vid);
    if (it != holders_.end()) {
      const auto age = std::chrono::steady_clock::now() - it->second.fetched;
      if (age < (it->second.holders.size() >= 14 ? kCompleteAge : kIncompleteAge)) return it->second.holders;
    }
  }
  if (master.empty()) return Status::Unavailable("no master to locate ec shards");
  auto stub = master_pb::Seaweed::NewStub(ChannelTo(MasterGrpcAddress(master)));
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + kLookupDeadline);
  master_pb::LookupEcVolumeRequest req;
  req.set_volume_id(vid);
  master_pb::LookupEcVolumeResponse resp;
  if (grpc::Status s = stub->LookupEcVolume(&c, req, &resp); !s.ok())
    return Status::Unavailable("failed to locate shard via master grpc " + master + ": lookup ec volume " + std::to_string(vid) + ": " + RpcText(s));
  EcHolders holders;
  for (const auto& loc : resp.shard_id_locations()) {
    for (const auto& l : loc.locations()) {
      // Go's ServerAddress: "host:port", with ".grpcPort" when that is not port + 10000.
      std::string address = l.url();
      if (l.grpc_port() != 0 && MasterGrpcAddress(address) != address.substr(0, address.rfind(':')) + ":" + std::to_string(l.grpc_port()))
        address += "." + std::to_string(l.grpc_port());
      holders[int(loc.shard_id())].push_back(address);
    }
  }
  for (auto it = holders.begin(); it != holders.end();) it = it->second.empty() ? holders.erase(it) : std::next(it);
  std::lock_guard<std::mutex> lock(mu_);
  holders_[vid] = Cached{holders, std::chrono::steady_clock::now()};
  return holders;
}

void EcPeers::Forget(VolumeId vid, int shard, const std::string& holder) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = holders_.find(vid);
  if (it == holders_.end()) return;
  auto at = it->second.holders.find(shard);
  if (at == it->second.holders.end()) return;
  auto& list = at->second;
  list.erase(std::remove(list.begin(), list.end(), holder), list.end());
}

Result<EcPeers::ShardRange> EcPeers::ReadShard(const std::string& holder, VolumeId vid, int shard, uint64_t offset, uint64_t size,
                                               NeedleId key, int64_t encode_ts_ns) {
  auto stub = volume_server_pb::VolumeServer::NewStub(ChannelTo(MasterGrpcAddress(holder)));
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + kReadDeadline);
  volume_server_pb::VolumeEcShardReadRequest req;
  req.set_volume_id(vid);
  req.set_shard_id(uint32_t(shard));
  req.set_offset(int64_t(offset));
  req.set_size(int64_t(size));
  req.set_file_key(key);
  req.set_encode_ts_ns(encode_ts_ns);
  auto reader = stub->VolumeEcShardRead(&c, req);
  ShardRange out;
  out.data.reserve(size_t(size));
  volume_server_pb::VolumeEcShardReadResponse msg;
  const std::string name = std::to_string(vid) + "." + std::to_string(shard);
  while (reader->Read(&msg)) {
    if (encode_ts_ns != 0 && msg.encode_ts_ns() != encode_ts_ns) {
      c.TryCancel();
      reader->Finish();
      return Status::Corruption("read ec shard " + name + " from " + holder + ": ec shard " + name + " from " + holder + " belongs to a different encode run (want " + std::to_string(encode_ts_ns) +
                                ", got " + std::to_string(msg.encode_ts_ns()) + ")");
    }
    if (msg.is_deleted()) {
      out.deleted = true;
      c.TryCancel();
      reader->Finish();
      return out;
    }
    if (out.data.size() + msg.data().size() > size) {
      c.TryCancel();
      reader->Finish();
      return Status::Corruption("ec shard " + name + " from " + holder + " sent more than was asked");
    }
    out.data += msg.data();
  }
  if (grpc::Status s = reader->Finish(); !s.ok())
    return Status::IOError("read ec shard " + name + " from " + holder + ": receiving ec shard " + name + " from " + holder + ": " + GoRpcError(s));
  if (out.data.size() != size)
    return Status::IOError("short read ec shard " + name + " from " + holder + ": got " + std::to_string(out.data.size()) + " want " + std::to_string(size));
  return out;
}

Status EcPeers::DeleteBlob(const std::string& holder, VolumeId vid, const std::string& collection, NeedleId key, uint32_t version) {
  auto stub = volume_server_pb::VolumeServer::NewStub(ChannelTo(MasterGrpcAddress(holder)));
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + kReadDeadline);
  volume_server_pb::VolumeEcBlobDeleteRequest req;
  req.set_volume_id(vid);
  req.set_collection(collection);
  req.set_file_key(key);
  req.set_version(version);
  volume_server_pb::VolumeEcBlobDeleteResponse resp;
  if (grpc::Status s = stub->VolumeEcBlobDelete(&c, req, &resp); !s.ok()) return Status::IOError(RpcText(s));
  return Status::Ok();
}

}  // namespace kelp
