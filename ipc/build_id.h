// The identity of this build: a digest of every source file it was compiled
// from, the same in the supervisor and its workers. A worker refuses a
// supervisor of another build (ipc::Hello), so an upgrade never mixes them.
#pragma once

namespace kelp::ipc {

const char* BuildId();

}  // namespace kelp::ipc
