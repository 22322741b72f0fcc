// A worker that lies: started by the worker-pool tests in place of
// kelp-worker-http, it sends the supervisor one message of the kind named by
// $KELP_HOSTILE, then reads its channel until told to drain or cut off.
#pragma once

namespace kelp::testing {

int HostileWorkerMain(const char* act);

}  // namespace kelp::testing
