#include <doctest/doctest.h>

#include <climits>

#include "worker-http/image_ops.h"

using namespace kelp;

namespace {
http::Request WithQuery(std::string q) {
  http::Request r;
  r.method = "GET";
  r.query = std::move(q);
  return r;
}
}  // namespace

TEST_CASE("images: Go's Atoi with the error ignored") {
  CHECK(GoAtoiIgnoringError("120") == 120);
  CHECK(GoAtoiIgnoringError("+7") == 7);
  CHECK(GoAtoiIgnoringError("-5") == -5);
  CHECK(GoAtoiIgnoringError("") == 0);
  CHECK(GoAtoiIgnoringError("12px") == 0);
  CHECK(GoAtoiIgnoringError(" 1") == 0);
  CHECK(GoAtoiIgnoringError("-") == 0);
  CHECK(GoAtoiIgnoringError("99999999999999999999") == INT64_MAX);
  CHECK(GoAtoiIgnoringError("-99999999999999999999") == INT64_MIN);
}

TEST_CASE("images: which parameters apply to which extensions") {
  auto q = ImageRequestFor(WithQuery("width=100&height=50&mode=fit"), ".jpg");
  CHECK(q.width == 100);
  CHECK(q.height == 50);
  CHECK(q.mode == "fit");
  CHECK(q.resize());
  CHECK_FALSE(q.crop);
  // WebP is resized but never cropped; other types are left alone.
  auto webp = ImageRequestFor(WithQuery("width=10&crop_x1=0&crop_y1=0&crop_x2=5&crop_y2=5"), ".webp");
  CHECK(webp.resize());
  CHECK_FALSE(webp.crop);
  CHECK_FALSE(ImageRequestFor(WithQuery("width=10"), ".txt").Any());
  CHECK_FALSE(ImageRequestFor(WithQuery("width=10"), "").Any());
  // A crop needs x2 > x1 and y2 > y1, from non-negative corners.
  CHECK(ImageRequestFor(WithQuery("crop_x2=5&crop_y2=5"), ".png").crop);
  CHECK_FALSE(ImageRequestFor(WithQuery("crop_x1=5&crop_x2=5&crop_y2=5"), ".png").crop);
  CHECK_FALSE(ImageRequestFor(WithQuery("crop_x1=-1&crop_x2=5&crop_y2=5"), ".gif").crop);
  CHECK_FALSE(ImageRequestFor(WithQuery("width=-3&height=0"), ".png").resize());
}

TEST_CASE("images: what is not an image is served as stored") {
  REQUIRE(InitImages());
  ImageRequest q;
  q.width = 10;
  CHECK_FALSE(TransformImage("not an image at all", ".png", q).has_value());
  CHECK_FALSE(FixJpegOrientation("not a jpeg").has_value());
}

TEST_CASE("images: kelp's icon is a PNG of the asked size, and an ICO around it") {
  REQUIRE(InitImages());
  const std::string png = IconPng(50);
  REQUIRE(png.size() > 8);
  CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  // IHDR: width and height, big-endian, at bytes 16..23.
  CHECK(static_cast<unsigned char>(png[19]) == 50);
  CHECK(static_cast<unsigned char>(png[23]) == 50);
  const std::string ico = IconIco(png, 50);
  CHECK(ico.size() == png.size() + 22);
  CHECK(ico.compare(0, 6, std::string("\0\0\1\0\1\0", 6)) == 0);
  CHECK(ico.substr(22) == png);
}
