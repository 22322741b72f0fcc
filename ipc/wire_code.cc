#include "ipc/wire_code.h"

namespace kelp::ipc {

WireCode ToWire(Code c) {
  switch (c) {
    case Code::kOk: return WireCode::kOk;
    case Code::kNotFound: return WireCode::kNotFound;
    case Code::kCorruption: return WireCode::kCorruption;
    case Code::kInvalidArgument: return WireCode::kInvalidArgument;
    case Code::kIOError: return WireCode::kIOError;
    case Code::kReadOnly: return WireCode::kReadOnly;
    case Code::kFull: return WireCode::kFull;
    case Code::kCookieMismatch: return WireCode::kCookieMismatch;
    case Code::kTooLarge: return WireCode::kTooLarge;
    case Code::kUnavailable: return WireCode::kUnavailable;
    case Code::kAlreadyExists: return WireCode::kAlreadyExists;
  }
  return WireCode::kIOError;
}

Status FromWire(uint16_t code, std::string message) {
  switch (WireCode(code)) {
    case WireCode::kOk: return Status::Ok();
    case WireCode::kNotFound: return Status::NotFound(std::move(message));
    case WireCode::kCorruption: return Status::Corruption(std::move(message));
    case WireCode::kInvalidArgument: return Status::Invalid(std::move(message));
    case WireCode::kIOError: return Status::IOError(std::move(message));
    case WireCode::kReadOnly: return Status::ReadOnly(std::move(message));
    case WireCode::kFull: return Status::Full(std::move(message));
    case WireCode::kCookieMismatch: return Status::CookieMismatch(std::move(message));
    case WireCode::kTooLarge: return Status::TooLarge(std::move(message));
    case WireCode::kUnavailable: return Status::Unavailable(std::move(message));
    case WireCode::kAlreadyExists: return Status::AlreadyExists(std::move(message));
  }
  return Status::IOError(std::move(message));
}

}  // namespace kelp::ipc
