// kelp::Status codes <-> the fixed numbers the channel carries (ipc::WireCode).
#pragma once
#include <string>

#include "common/status.h"
#include "ipc/messages.h"

namespace kelp::ipc {

WireCode ToWire(Code c);
// An unknown number decodes as an I/O error: a newer peer's code is still a failure.
Status FromWire(uint16_t code, std::string message);

}  // namespace kelp::ipc
