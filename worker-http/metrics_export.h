// The Prometheus text served on -metricsPort: the Go volume server's metric
// names and labels (SeaweedFS_volumeServer_*), computed from the gauges all
// workers share and from this worker's view of the volumes, so any worker
// answers for the whole server.
#pragma once
#include <string>

#include "common/server_config.h"
#include "ipc/shared_gauges.h"
#include "worker-http/volume_table.h"

namespace kelp {

std::string PrometheusText(const ipc::SharedGauges& g, const VolumeTable& volumes, const ServerConfig& config);

}  // namespace kelp
