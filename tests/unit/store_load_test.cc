// Store::LoadAll over a directory: which copy of a repeated volume id loads.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "supervisor/store.h"
#include "tests/unit/fixtures.h"

using namespace kelp;

namespace {

VolumeFileNames NamesIn(const std::string& dir, const std::string& collection, VolumeId id) {
  VolumeFileNames n;
  n.dir = n.idx_dir = dir;
  n.collection = collection;
  n.id = id;
  return n;
}

}  // namespace

TEST_CASE("a repeated volume id: when the first copy (in name order) cannot load, the next one does") {
  testing::TempDir t;
  const std::string dir = t.path.string();
  {
    auto good = Volume::Create(NamesIn(dir, "c", 7), SuperBlock{}, kBuildOffsetBytes);
    REQUIRE(good.ok());
  }
  // 7.dat sorts before c_7.dat and is three bytes: no superblock, no volume.
  std::ofstream(t.path / "7.dat") << "bad";
  std::ofstream(t.path / "7.idx") << "";
  DiskLocation loc;
  loc.dir = loc.idx_dir = dir;
  Store store({loc}, kBuildOffsetBytes);
  REQUIRE(store.LoadAll().ok());
  Volume* v = store.Find(7);
  REQUIRE(v != nullptr);
  CHECK(v->collection() == "c");
}

TEST_CASE("a repeated volume id: when both copies load, the first in name order is kept") {
  testing::TempDir t;
  const std::string dir = t.path.string();
  for (const char* collection : {"b", "a"}) {
    auto made = Volume::Create(NamesIn(dir, collection, 9), SuperBlock{}, kBuildOffsetBytes);
    REQUIRE(made.ok());
  }
  DiskLocation loc;
  loc.dir = loc.idx_dir = dir;
  Store store({loc}, kBuildOffsetBytes);
  REQUIRE(store.LoadAll().ok());
  REQUIRE(store.Find(9) != nullptr);
  CHECK(store.Find(9)->collection() == "a");
}
