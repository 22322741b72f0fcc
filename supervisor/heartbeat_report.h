// What the master is told about this server: the full report sent on connect
// and on every pulse, and the per-volume deltas sent as volumes come and go.
// (upstream: Store.CollectHeartbeat and the New/DeletedVolumesChan deltas)
#pragma once
#include "common/server_config.h"
#include "proto/master.pb.h"
#include "supervisor/store.h"

namespace kelp {

struct ServerIdentity {
  const ServerConfig* config = nullptr;
  volume_server_pb::VolumeServerState state;
};

// Fills ip, port, grpc port, public url, id, data center and rack.
void FillIdentity(const ServerIdentity& who, master_pb::Heartbeat* hb);
master_pb::Heartbeat FullReport(const Store& store, const ServerIdentity& who);
master_pb::VolumeShortInformationMessage ShortInfo(const Store& store, const Volume& v);
master_pb::VolumeInformationMessage VolumeReport(const Store& store, const Volume& v);
// One EC volume's shards in one location, as the full report names them.
master_pb::VolumeEcShardInformationMessage EcShardsReport(size_t location, const EcVolume& v);
// One shard mounted (its size) or unmounted, as a delta names it.
master_pb::VolumeEcShardInformationMessage EcShardDelta(size_t location, const EcVolume& v, int shard, int64_t size, bool mounted);

}  // namespace kelp
