#include "worker-http/concat_source.h"

namespace kelp {

void ConcatSource::AddLiteral(std::string bytes) {
  length_ += bytes.size();
  pieces_.push_back(Piece{std::move(bytes), nullptr});
}

void ConcatSource::AddStream(std::unique_ptr<http::BodySource> source) {
  length_ += source->Length();
  pieces_.push_back(Piece{{}, std::move(source)});
}

bool ConcatSource::Next(std::string* chunk) {
  while (next_ < pieces_.size() && !failed_) {
    Piece& p = pieces_[next_];
    if (!p.stream) {
      *chunk = std::move(p.literal);
      ++next_;
      if (!chunk->empty()) return true;
      continue;
    }
    if (p.stream->Next(chunk)) return true;
    if (p.stream->Pending()) return false;
    if (p.stream->Failed()) failed_ = true;
    p.stream.reset();
    ++next_;
  }
  return false;
}

bool ConcatSource::Pending() const {
  return !failed_ && next_ < pieces_.size() && pieces_[next_].stream && pieces_[next_].stream->Pending();
}

void ConcatSource::OnReady(std::function<void()> wake) {
  if (Pending()) return pieces_[next_].stream->OnReady(std::move(wake));
  wake();
}

}  // namespace kelp
