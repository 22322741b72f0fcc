// Reads a needle of an erasure-coded volume for the HTTP worker, as a short
// pipeline: locate (the supervisor finds the .ecx row and says how the
// volume is laid out), open (the supervisor hands over a read-only
// descriptor for each local shard the record touches, after its generation
// and deleted checks), then gather (on the thread pool: local intervals by
// pread, the rest from the shard's holders with VolumeEcShardRead, and any
// interval no holder serves rebuilt from `data` other shards with
// Reed-Solomon). The record is assembled whole in memory, one buffer of its
// own length, as Go does; each remote piece is at most an interval.
// (upstream: weed/storage/store_ec.go ReadEcShardNeedle; docs/erasure-coding.md §15)
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "common/types.h"
#include "worker-http/ec/ec_needle.h"
#include "worker-http/ec/ec_peers.h"
#include "worker-http/supervisor_link.h"

namespace kelp {

class EcReader {
 public:
  EcReader(uv_loop_t* loop, SupervisorLink* link, EcPeers* peers) : loop_(loop), link_(link), peers_(peers) {}
  // `master`: the master's HTTP address now. `done` runs on the loop.
  void Read(const std::string& master, VolumeId vid, NeedleId id, std::function<void(EcNeedleRead)> done);
  // Reads the needle (every rule of Read applies), checks the cookie (0: not
  // checked), then asks the holders of its first shard, in turn, to journal
  // the delete; only when that shard has no holder, every other shard's.
  void Delete(const std::string& master, VolumeId vid, NeedleId id, Cookie cookie, std::function<void(EcNeedleDelete)> done);

 private:
  uv_loop_t* loop_;
  SupervisorLink* link_;
  EcPeers* peers_;
};

}  // namespace kelp
