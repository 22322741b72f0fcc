// Reads a needle of an erasure-coded volume for the HTTP worker, as a short
// pipeline: locate (the supervisor finds the .ecx row and says how the
// volume is laid out, and which shards are mounted here), open (the
// supervisor hands over a read-only descriptor of each local shard, after its
// generation check; kept for later reads of the same encode run), then
// gather (common/ec_client/ec_gather.h, on the thread pool). A record of at
// most kWholeReadLimit bytes is gathered whole; of a larger one only the
// parts around the data are, and the data is streamed as it is sent
// (worker-http/ec/ec_stream.h), so memory per read is bounded.
// (upstream: weed/storage/store_ec.go ReadEcShardNeedle; docs/erasure-coding.md §15)
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/types.h"
#include "common/ec_client/ec_gather.h"
#include "worker-http/ec/ec_needle.h"
#include "common/ec_client/ec_peers.h"
#include "worker-http/supervisor_link.h"

namespace kelp {

struct EcShardFd {
  int64_t encode_ts_ns = 0;  // the run the descriptor's file belongs to
  std::shared_ptr<const OwnedShardFd> fd;
};
// (volume, shard) -> descriptor; the loop's only. A shard's bytes never change
// within an encode run, so a kept descriptor reads what a fresh one would.
using EcShardFds = std::map<std::pair<VolumeId, int>, EcShardFd>;

struct EcReadPending;  // one read or delete in flight (ec_reader.cc)

class EcReader {
 public:
  EcReader(uv_loop_t* loop, SupervisorLink* link, EcPeers* peers) : loop_(loop), link_(link), peers_(peers) {}
  // `master`: the master's HTTP address now. `done` runs on the loop.
  void Read(const std::string& master, VolumeId vid, NeedleId id, std::function<void(EcNeedleRead)> done);
  // Locates the needle as Read does, reads it as Go reads before a delete
  // (common/ec_client/ec_needle_meta.h: cookie, CRC, in bounded memory),
  // checks the cookie (0: not checked), then asks the holders of its first
  // shard, in turn, to journal the delete; only when that shard has no
  // holder, every other shard's.
  void Delete(const std::string& master, VolumeId vid, NeedleId id, Cookie cookie, std::function<void(EcNeedleDelete)> done);

 private:
  std::shared_ptr<EcReadPending> NewPending(const std::string& master, VolumeId vid, NeedleId id);
  // The supervisor's locate, then the local shards opened; then p->located,
  // or p->done with the failure.
  void Locate(std::shared_ptr<EcReadPending> p);

  uv_loop_t* loop_;
  SupervisorLink* link_;
  EcPeers* peers_;
  EcShardFds shard_fds_;
};

}  // namespace kelp
