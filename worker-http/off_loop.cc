#include "worker-http/off_loop.h"

#include <memory>

namespace kelp {
namespace {

struct Job {
  uv_work_t req{};
  std::function<void()> work, done;
};

}  // namespace

void RunOffLoop(uv_loop_t* loop, std::function<void()> work, std::function<void()> done) {
  auto* job = new Job;
  job->req.data = job;
  job->work = std::move(work);
  job->done = std::move(done);
  const int rc = uv_queue_work(
      loop, &job->req, [](uv_work_t* r) { static_cast<Job*>(r->data)->work(); },
      [](uv_work_t* r, int) {
        std::unique_ptr<Job> j(static_cast<Job*>(r->data));
        j->done();
      });
  if (rc != 0) {
    std::unique_ptr<Job> j(job);
    j->work();
    j->done();
  }
}

}  // namespace kelp
