// Image transforms as Go's volume server applies them (weed/images): on read,
// `crop_x1..crop_y2` then `width`/`height`/`mode` for .png/.jpg/.jpeg/.gif
// (and .webp for resizing); on upload with -images.fix.orientation, JPEGs are
// turned upright by their EXIF orientation. Done with libvips, which decodes
// lazily (dimensions are checked before any pixel is decoded), streams through
// its operations without whole-image copies, and is thread-safe, so the work
// runs on the libuv thread pool, never on a worker's event loop.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "worker-http/http_types.h"

namespace kelp {

// Images larger than this many pixels are served untransformed (a few bytes
// of PNG can declare gigapixels).
inline constexpr uint64_t kMaxImagePixels = 64ull << 20;

struct ImageRequest {
  int64_t width = 0, height = 0;
  std::string mode;  // "fit", "fill", or anything else (Go's default rules)
  bool crop = false;
  int64_t x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  bool resize() const { return width > 0 || height > 0; }
  bool Any() const { return crop || resize(); }
};

// What the request asks of a file with this extension (lower-case, with the
// dot), with Go's parameter parsing: a bad number counts as 0.
ImageRequest ImageRequestFor(const http::Request& r, const std::string& ext);

// Once per process, before any transform.
bool InitImages();

// Crop, then resize. nullopt: serve the original bytes (not an image, too
// large, nothing to do, or an encoder error).
std::optional<std::string> TransformImage(std::string_view data, const std::string& ext, const ImageRequest& req);

// The JPEG turned by its EXIF orientation; nullopt when there is nothing to do.
std::optional<std::string> FixJpegOrientation(std::string_view data);

// kelp's own icon, drawn at start-up: a square PNG of `side` pixels, and the
// same wrapped in an ICO container (for /favicon.ico).
std::string IconPng(int side);
std::string IconIco(const std::string& png, int side);

// Go's strconv.Atoi as the handlers use it: the error ignored (0 for junk,
// the clamped value on overflow).
int64_t GoAtoiIgnoringError(std::string_view s);

}  // namespace kelp
