#include "supervisor/heartbeat_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <optional>

#include "common/log.h"
#include "common/server_config.h"

namespace kelp {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDialSlice = std::chrono::milliseconds(500);
constexpr auto kDialTimeout = std::chrono::seconds(5);
// Go waits this long before following a master's pointer to the leader.
constexpr auto kLeaderSwitchDelay = std::chrono::seconds(3);
// How many times Go reconnects when the master names its directories as
// duplicates before it gives up (the master may still hold a stale session).
constexpr int kDuplicateRetries = 3;

// Go's %v of a []string.
std::string GoList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? " " : "") + items[i];
  return out + "]";
}

}  // namespace

HeartbeatClient::HeartbeatClient(uv_loop_t* loop, std::vector<std::string> masters, int pulse_seconds, MasterEvents events,
                                 std::vector<DirectoryId> directories)
    : loop_(loop),
      masters_(std::move(masters)),
      pulse_seconds_(pulse_seconds),
      events_(std::move(events)),
      directories_(std::move(directories)) {
  uv_async_init(loop_, &async_, &HeartbeatClient::OnAsync);
  async_.data = this;
}

HeartbeatClient::~HeartbeatClient() { Stop(); }

void HeartbeatClient::Start() { thread_ = std::thread([this] { Run(); }); }

void HeartbeatClient::RequestStop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
    if (context_) context_->TryCancel();
  }
  cv_.notify_all();
}

void HeartbeatClient::Stop() {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&async_))) return;  // stopped already
  RequestStop();
  if (thread_.joinable()) thread_.join();
  OnAsync(&async_);  // deliver what the thread posted last (the unregistration)
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

void HeartbeatClient::SendDelta(master_pb::Heartbeat delta) {
  {
    std::lock_guard lk(mu_);
    if (!connected_) return;
    outbox_.push_back(std::move(delta));
  }
  cv_.notify_all();
}

void HeartbeatClient::SendFullReportSoon() { QueueFullReport(false); }

void HeartbeatClient::QueueFullReport(bool ahead) {
  {
    std::lock_guard lk(mu_);
    if (!connected_) return;
  }
  auto hb = events_.full_report();
  report_.Shape(&hb);
  {
    std::lock_guard lk(mu_);
    if (!connected_) return;
    if (ahead) {
      // Ahead of queued deltas: the report already reflects them.
      outbox_.push_front(std::move(hb));
      want_full_ = false;
    } else {
      outbox_.push_back(std::move(hb));
    }
  }
  cv_.notify_all();
}

void HeartbeatClient::PostToLoop(std::function<void()> fn) {
  {
    std::lock_guard lk(mu_);
    to_loop_.push_back(std::move(fn));
  }
  uv_async_send(&async_);
}

void HeartbeatClient::OnAsync(uv_async_t* h) {
  auto* self = static_cast<HeartbeatClient*>(h->data);
  std::vector<std::function<void()>> work;
  {
    std::lock_guard lk(self->mu_);
    work.swap(self->to_loop_);
  }
  for (auto& fn : work) fn();
}

void HeartbeatClient::Run() {
  std::string leader;
  auto wait = [this](Clock::duration d) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, d, [this] { return stop_; });
    return !stop_;
  };
  while (true) {
    for (size_t i = 0; i < masters_.size(); ++i) {
      {
        std::lock_guard lk(mu_);
        if (stop_) return;
      }
      std::string master = masters_[i];
      if (!leader.empty()) {
        if (!wait(kLeaderSwitchDelay)) return;
        master = leader;
      }
      leader = Session(master);
      bool duplicate;
      {
        std::lock_guard lk(mu_);
        duplicate = duplicate_session_;
        duplicate_session_ = false;
      }
      if (duplicate) {
        // Go's backoff: 2 s, 4 s, 8 s.
        const auto delay = std::chrono::seconds(2 << duplicate_retries_++);
        KLOG_INFO("Waiting %llds before retrying due to duplicate UUID detection...", static_cast<long long>(delay.count()));
        if (!wait(delay)) return;
        continue;
      }
      duplicate_retries_ = 0;
      if (leader.empty() && !wait(std::chrono::seconds(pulse_seconds_))) return;
    }
  }
}

std::string HeartbeatClient::Session(const std::string& master) {
  const std::string address = MasterGrpcAddress(master);
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  const auto dial_deadline = Clock::now() + kDialTimeout;
  while (!channel->WaitForConnected(std::chrono::system_clock::now() + kDialSlice)) {
    std::lock_guard lk(mu_);
    if (stop_) return "";
    if (Clock::now() >= dial_deadline) {
      KLOG_WARN("heartbeat to %s error: fail to dial %s", master.c_str(), address.c_str());
      return "";
    }
  }
  auto stub = master_pb::Seaweed::NewStub(channel);
  grpc::ClientContext context;
  std::optional<master_pb::Heartbeat> full;
  {
    std::lock_guard lk(mu_);
    if (stop_) return "";
    context_ = &context;
    connected_ = true;
    session_over_ = false;
    outbox_.clear();
  }
  auto stream = stub->SendHeartbeat(&context);
  KLOG_INFO("heartbeat to: %s", master.c_str());

  // The first message of every session is a full report: this master may
  // know nothing of this server, and has not said it compares digests.
  auto request_report = [this] { PostToLoop([this] { QueueFullReport(true); }); };
  {
    std::lock_guard lk(mu_);
    want_full_ = true;
  }
  PostToLoop([this] {
    report_.Reset();
    QueueFullReport(true);
  });

  std::string leader;
  std::thread reader([&] {
    master_pb::HeartbeatResponse resp;
    while (stream->Read(&resp)) {
      if (resp.duplicated_uuids_size() > 0) {
        std::vector<std::string> dirs;
        for (const DirectoryId& d : directories_)
          for (const std::string& uuid : resp.duplicated_uuids())
            if (uuid == d.uuid) dirs.push_back(d.dir);
        if (duplicate_retries_ < kDuplicateRetries) {
          KLOG_ERROR("Master reported duplicate volume directories: %s (retry %d/%d)", GoList(dirs).c_str(), duplicate_retries_ + 1,
                     kDuplicateRetries);
          std::lock_guard lk(mu_);
          duplicate_session_ = true;
        } else {
          const std::string why = "Shut down Volume Server due to persistent duplicate volume directories after " +
                                  std::to_string(kDuplicateRetries) + " retries: " + GoList(dirs);
          KLOG_ERROR("%s", why.c_str());
          KLOG_ERROR("Please check if another volume server is using the same directory");
          PostToLoop([this, why] {
            if (events_.duplicate_directories) events_.duplicate_directories(why);
          });
          std::lock_guard lk(mu_);
          stop_ = true;  // no more sessions: the server is shutting down
        }
        break;
      }
      if (resp.volume_size_limit() != 0) {
        const uint64_t limit = resp.volume_size_limit();
        PostToLoop([this, limit] { events_.volume_size_limit(limit); });
      }
      // Posted in order: a report built after these reflects them.
      if (resp.volume_digest_supported()) PostToLoop([this] { report_.AcceptDeltas(); });
      if (resp.resend_full_volume_list()) {
        KLOG_INFO("master %s asked for the full volume list", master.c_str());
        PostToLoop([this] {
          report_.RequestFullList();
          QueueFullReport(false);
        });
      }
      if (!resp.leader().empty() && resp.leader() != master) {
        KLOG_INFO("volume server found a new master %s instead of %s", resp.leader().c_str(), master.c_str());
        leader = resp.leader();
        break;
      }
    }
    {
      std::lock_guard lk(mu_);
      session_over_ = true;
    }
    cv_.notify_all();
  });

  bool announced = false;
  auto next_pulse = Clock::now() + std::chrono::seconds(pulse_seconds_);
  while (true) {
    std::unique_lock lk(mu_);
    cv_.wait_until(lk, next_pulse, [&] { return stop_ || session_over_ || (!outbox_.empty() && !want_full_); });
    if (stop_ || session_over_) break;
    if (outbox_.empty() || want_full_) {
      if (Clock::now() >= next_pulse) {
        next_pulse = Clock::now() + std::chrono::seconds(pulse_seconds_);
        if (!want_full_) {
          want_full_ = true;
          lk.unlock();
          request_report();
        }
      }
      continue;
    }
    master_pb::Heartbeat msg = std::move(outbox_.front());
    outbox_.pop_front();
    lk.unlock();
    if (!stream->Write(msg)) {
      KLOG_WARN("heartbeat to %s: the stream broke", master.c_str());
      break;
    }
    if (!announced) {
      announced = true;
      PostToLoop([this, master] { events_.registered(true, master); });
    }
  }
  context.TryCancel();
  reader.join();
  const grpc::Status status = stream->Finish();
  {
    std::lock_guard lk(mu_);
    context_ = nullptr;
    connected_ = false;
    outbox_.clear();
  }
  if (announced) PostToLoop([this] { events_.registered(false, ""); });
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED)
    KLOG_WARN("heartbeat to %s error: %s", master.c_str(), status.error_message().c_str());
  else if (!announced)
    KLOG_WARN("heartbeat to %s ended before registering (%s)", master.c_str(), status.ok() ? "closed by master" : "cancelled");
  return leader;
}

}  // namespace kelp
