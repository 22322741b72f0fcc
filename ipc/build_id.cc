#include "ipc/build_id.h"

#include "build_id.gen.h"  // KELP_BUILD_ID, written by the Makefile

namespace kelp::ipc {

const char* BuildId() { return KELP_BUILD_ID; }

}  // namespace kelp::ipc
