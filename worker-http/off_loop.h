// CPU-bound work (image decoding and encoding) kept off a worker's event loop.
#pragma once
#include <uv.h>

#include <functional>

namespace kelp {

// Runs `work` on the libuv thread pool, then `done` on the loop's thread; if
// the pool refuses the work, both run on the loop at once.
void RunOffLoop(uv_loop_t* loop, std::function<void()> work, std::function<void()> done);

}  // namespace kelp
