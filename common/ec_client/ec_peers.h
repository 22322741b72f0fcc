// The cluster calls of an HTTP worker's erasure-coded reads: which servers
// hold each shard (the master's LookupEcVolume, cached briefly), a byte range
// of one shard from one holder (VolumeEcShardRead), and a journaled delete
// on a holder (VolumeEcBlobDelete). Blocking gRPC calls with deadlines: they
// run on the worker's thread pool, never on its event loop. Thread-safe.
// (upstream: weed/storage/store_ec.go; docs/erasure-coding.md §10, §11, §15)
#pragma once
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "proto/master.grpc.pb.h"
#include "proto/volume_server.grpc.pb.h"

namespace kelp {

// Shard id -> its holders, each as Go names a server ("host:port", with
// ".grpcPort" when the gRPC port is not port + 10000); errors name them so.
using EcHolders = std::map<int, std::vector<std::string>>;

class EcPeers {
 public:
  // The holders of every shard of `vid`, as `master` (its HTTP address) knows them.
  Result<EcHolders> Holders(const std::string& master, VolumeId vid);
  // A holder that failed is not asked again until the next lookup.
  void Forget(VolumeId vid, int shard, const std::string& holder);

  struct ShardRange {
    std::string data;
    bool deleted = false;  // the holder has the needle deleted
  };
  // [offset, offset + size) of shard `shard`; a short answer or another encode
  // run's data is an error (Go's texts).
  Result<ShardRange> ReadShard(const std::string& holder, VolumeId vid, int shard, uint64_t offset, uint64_t size, NeedleId key,
                               int64_t encode_ts_ns);
  Status DeleteBlob(const std::string& holder, VolumeId vid, const std::string& collection, NeedleId key, uint32_t version);

 private:
  std::shared_ptr<grpc::Channel> ChannelTo(const std::string& address);
  struct Cached {
    EcHolders holders;
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
  std::map<VolumeId, Cached> holders_;
};

}  // namespace kelp
