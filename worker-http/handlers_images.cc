// Reads that crop or resize an image (Go's conditionallyCropImages and
// conditionallyResizeImages): the needle's bytes go to the libuv thread pool,
// the transformed image comes back as the body; headers set before (ETag,
// Last-Modified, type, disposition) stay those of the stored file, as in Go.
#include "worker-http/handlers.h"
#include "worker-http/image_ops.h"
#include "worker-http/off_loop.h"
#include "worker-http/range_response.h"

namespace kelp {

void Handlers::ServeImage(std::shared_ptr<const http::Request> r, http::Response resp, std::string mtype, std::string data,
                          std::string ext, ImageRequest request, http::Respond respond) {
  struct Job {
    std::string data, ext;
    ImageRequest request;
    std::optional<std::string> result;
    http::Response resp;
  };
  auto job = std::make_shared<Job>(Job{std::move(data), std::move(ext), std::move(request), std::nullopt, std::move(resp)});
  RunOffLoop(
      loop_, [job] { job->result = TransformImage(job->data, job->ext, job->request); },
      [job, r, mtype, respond] {
        // The original bytes when the image could not (or need not) be transformed.
        const std::string& body = job->result ? *job->result : job->data;
        RangePlan plan;
        if (PlanRangeResponse(*r, int64_t(body.size()), mtype, &job->resp, &plan)) FillRangeBody(plan, body, &job->resp);
        respond(std::move(job->resp));
      });
}

}  // namespace kelp
