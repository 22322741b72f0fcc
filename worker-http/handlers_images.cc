// Reads that crop or resize an image (Go's conditionallyCropImages and
// conditionallyResizeImages): the needle's bytes go to the libuv thread pool,
// the transformed image comes back as the body; headers set before (ETag,
// Last-Modified, type, disposition) stay those of the stored file, as in Go.
#include "worker-http/concat_source.h"
#include "worker-http/handlers.h"
#include "worker-http/image_ops.h"
#include "worker-http/range_response.h"

namespace kelp {
namespace {

struct ImageJob {
  uv_work_t work{};
  std::string data, ext;
  ImageRequest request;
  std::optional<std::string> result;
  std::function<void(ImageJob*)> done;
};

}  // namespace

void Handlers::ServeImage(std::shared_ptr<const http::Request> r, http::Response resp, std::string mtype, std::string data,
                          std::string ext, ImageRequest request, http::Respond respond) {
  auto* job = new ImageJob;
  job->data = std::move(data);
  job->ext = std::move(ext);
  job->request = std::move(request);
  job->work.data = job;
  job->done = [r, resp = std::make_shared<http::Response>(std::move(resp)), mtype, respond](ImageJob* j) {
    std::string body = j->result ? std::move(*j->result) : std::move(j->data);
    RangePlan plan;
    if (!PlanRangeResponse(*r, int64_t(body.size()), mtype, resp.get(), &plan)) return respond(std::move(*resp));
    if (plan.multipart) {
      std::string out;
      for (size_t i = 0; i < plan.ranges.size(); ++i) {
        out += plan.framing.heads[i];
        if (plan.ranges[i].length > 0) out.append(body, size_t(plan.ranges[i].start), size_t(plan.ranges[i].length));
      }
      out += plan.framing.tail;
      resp->body = std::move(out);
    } else if (plan.length > 0) {
      resp->body = body.substr(size_t(plan.start), size_t(plan.length));
    }
    respond(std::move(*resp));
  };
  const int rc = uv_queue_work(
      loop_, &job->work, [](uv_work_t* w) {
        auto* j = static_cast<ImageJob*>(w->data);
        j->result = TransformImage(j->data, j->ext, j->request);
      },
      [](uv_work_t* w, int) {
        std::unique_ptr<ImageJob> j(static_cast<ImageJob*>(w->data));
        j->done(j.get());
      });
  if (rc != 0) {
    std::unique_ptr<ImageJob> j(job);
    j->done(j.get());
  }
}

}  // namespace kelp
