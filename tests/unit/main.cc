#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

#include "tests/unit/hostile_worker.h"

int main(int argc, char** argv) {
  // The worker-pool tests start this binary as a worker that misbehaves.
  if (const char* act = std::getenv("KELP_HOSTILE")) return kelp::testing::HostileWorkerMain(act);
  doctest::Context context(argc, argv);
  return context.run();
}
