// kelp::Status codes <-> the fixed numbers the channel carries (ipc::WireCode).
#pragma once
#include <string>

#include "common/status.h"
#include "ipc/messages.h"

namespace kelp::ipc {

WireCode ToWire(Code c);

// The supervisor's answer (code UNAVAILABLE) to a VolumeNeedleStatus of an EC
// needle with a piece on another server: the gRPC worker reads it across the
// holders instead. Never sent to a client.
inline constexpr char kEcNeedleElsewhere[] = "ec needle has pieces on other servers";
// An unknown number decodes as an I/O error: a newer peer's code is still a failure.
Status FromWire(uint16_t code, std::string message);

}  // namespace kelp::ipc
