#include "worker-http/image_ops.h"

#include <vips/vips.h>

#include <climits>
#include <cmath>
#include <memory>

namespace kelp {
namespace {

// Owns a VipsImage reference.
struct ImageRef {
  VipsImage* im = nullptr;
  ImageRef() = default;
  explicit ImageRef(VipsImage* i) : im(i) {}
  ImageRef(const ImageRef&) = delete;
  ImageRef& operator=(const ImageRef&) = delete;
  ImageRef(ImageRef&& o) noexcept : im(o.im) { o.im = nullptr; }
  ImageRef& operator=(ImageRef&& o) noexcept {
    std::swap(im, o.im);
    return *this;
  }
  ~ImageRef() {
    if (im) g_object_unref(im);
  }
  int width() const { return vips_image_get_width(im); }
  int height() const { return vips_image_get_height(im); }
};

ImageRef Load(std::string_view data) {
  VipsImage* im = vips_image_new_from_buffer(data.data(), data.size(), "", "access", VIPS_ACCESS_RANDOM, NULL);
  if (!im) vips_error_clear();
  return ImageRef(im);
}

bool Sane(const ImageRef& img) {
  return img.im && img.width() > 0 && img.height() > 0 &&
         uint64_t(img.width()) * uint64_t(img.height()) <= kMaxImagePixels;
}

// Exactly w x h (Lanczos, as Go's imaging.Lanczos).
ImageRef ResizeExact(const ImageRef& in, int w, int h) {
  VipsImage* out = nullptr;
  const double hs = double(w) / in.width(), vs = double(h) / in.height();
  if (vips_resize(in.im, &out, hs, "vscale", vs, "kernel", VIPS_KERNEL_LANCZOS3, NULL) != 0) {
    vips_error_clear();
    return ImageRef();
  }
  return ImageRef(out);
}

ImageRef Extract(const ImageRef& in, int left, int top, int w, int h) {
  VipsImage* out = nullptr;
  if (vips_extract_area(in.im, &out, left, top, w, h, NULL) != 0) {
    vips_error_clear();
    return ImageRef();
  }
  return ImageRef(out);
}

int Round(double v) { return int(std::floor(v + 0.5)); }

// imaging.Resize: a zero side keeps the aspect ratio.
ImageRef Resize(const ImageRef& in, int w, int h) {
  if (w == 0) w = std::max(1, Round(double(h) * in.width() / in.height()));
  if (h == 0) h = std::max(1, Round(double(w) * in.height() / in.width()));
  return ResizeExact(in, w, h);
}

// imaging.Fit: within w x h, aspect kept.
ImageRef Fit(const ImageRef& in, int w, int h) {
  const double src = double(in.width()) / in.height(), box = double(w) / h;
  if (src > box) return ResizeExact(in, w, std::max(1, Round(w / src)));
  return ResizeExact(in, std::max(1, Round(h * src)), h);
}

// imaging.Fill with the centre anchor (also imaging.Thumbnail).
ImageRef Fill(const ImageRef& in, int w, int h) {
  const double src = double(in.width()) / in.height(), dst = double(w) / h;
  ImageRef scaled = src < dst ? Resize(in, w, 0) : Resize(in, 0, h);
  if (!scaled.im) return scaled;
  w = std::min(w, scaled.width());
  h = std::min(h, scaled.height());
  return Extract(scaled, (scaled.width() - w) / 2, (scaled.height() - h) / 2, w, h);
}

std::optional<std::string> Encode(const ImageRef& img, const std::string& ext) {
  void* buf = nullptr;
  size_t len = 0;
  int rc = -1;
  if (ext == ".jpg" || ext == ".jpeg") {
    ImageRef rgb;
    const VipsImage* src = img.im;
    // Go's JPEG encoder drops alpha.
    if (vips_image_get_bands(img.im) == 4 || vips_image_get_bands(img.im) == 2) {
      VipsImage* out = nullptr;
      if (vips_extract_band(img.im, &out, 0, "n", vips_image_get_bands(img.im) - 1, NULL) != 0) {
        vips_error_clear();
        return std::nullopt;
      }
      rgb = ImageRef(out);
      src = out;
    }
    rc = vips_jpegsave_buffer(const_cast<VipsImage*>(src), &buf, &len, "Q", 75, "strip", TRUE, NULL);
  } else if (ext == ".gif") {
    rc = vips_gifsave_buffer(img.im, &buf, &len, NULL);
  } else {
    // .png, and .webp too: Go has no WebP encoder and writes PNG bytes.
    rc = vips_pngsave_buffer(img.im, &buf, &len, "strip", TRUE, NULL);
  }
  if (rc != 0) {
    vips_error_clear();
    return std::nullopt;
  }
  std::string out(static_cast<const char*>(buf), len);
  g_free(buf);
  return out;
}

}  // namespace

int64_t GoAtoiIgnoringError(std::string_view s) {
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  if (i == s.size()) return 0;
  uint64_t v = 0;
  bool overflow = false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return 0;
    if (!overflow) {
      v = v * 10 + uint64_t(s[i] - '0');
      if (v > uint64_t(INT64_MAX)) overflow = true;
    }
  }
  if (overflow) return negative ? INT64_MIN : INT64_MAX;
  return negative ? -int64_t(v) : int64_t(v);
}

ImageRequest ImageRequestFor(const http::Request& r, const std::string& ext) {
  ImageRequest q;
  const bool raster = ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".gif";
  if ((!raster && ext != ".webp") || r.query.empty()) return q;
  q.width = GoAtoiIgnoringError(r.Query("width"));
  q.height = GoAtoiIgnoringError(r.Query("height"));
  q.mode = r.Query("mode");
  if (raster) {
    q.x1 = GoAtoiIgnoringError(r.Query("crop_x1"));
    q.y1 = GoAtoiIgnoringError(r.Query("crop_y1"));
    q.x2 = GoAtoiIgnoringError(r.Query("crop_x2"));
    q.y2 = GoAtoiIgnoringError(r.Query("crop_y2"));
  }
  q.crop = q.x1 >= 0 && q.y1 >= 0 && q.x2 > q.x1 && q.y2 > q.y1;
  return q;
}

bool InitImages() {
  if (VIPS_INIT("kelp-worker-http") != 0) return false;
  // No operation cache: every request's image is different.
  vips_cache_set_max(0);
  return true;
}

std::optional<std::string> TransformImage(std::string_view data, const std::string& ext, const ImageRequest& req) {
  ImageRef img = Load(data);
  if (!Sane(img)) return std::nullopt;
  bool changed = false;
  if (req.crop && req.x2 <= img.width() && req.y2 <= img.height()) {
    ImageRef cropped = Extract(img, int(req.x1), int(req.y1), int(req.x2 - req.x1), int(req.y2 - req.y1));
    if (!cropped.im) return std::nullopt;
    img = std::move(cropped);
    changed = true;
  }
  // Go resizes only down: when the image is larger than a requested side.
  const int64_t w = req.width, h = req.height;
  if (req.resize() && ((img.width() > w && w != 0) || (img.height() > h && h != 0))) {
    // Sides beyond what an image can have are clamped (the image is not larger there).
    const int cw = int(std::min<int64_t>(std::max<int64_t>(w, 0), INT_MAX)), ch = int(std::min<int64_t>(std::max<int64_t>(h, 0), INT_MAX));
    ImageRef out;
    if (req.mode == "fit" || req.mode == "fill") {
      // Go's imaging returns an empty image for a zero side; kelp keeps the original.
      if (cw <= 0 || ch <= 0) return changed ? Encode(img, ext) : std::nullopt;
      out = req.mode == "fit" ? Fit(img, cw, ch) : Fill(img, cw, ch);
    } else if (w == h && img.width() != img.height()) {
      out = Fill(img, cw, ch);
    } else {
      out = Resize(img, cw, ch);
    }
    if (!out.im) return std::nullopt;
    img = std::move(out);
    changed = true;
  }
  if (!changed) return std::nullopt;
  return Encode(img, ext);
}

std::string IconPng(int side) {
  // A kelp-green disc on a transparent square: alpha = (x-c)^2 + (y-c)^2 <= c^2.
  // Each step's output is taken only after the operation has run.
  auto run = [](auto&& op) {
    VipsImage* out = nullptr;
    if (op(&out) != 0) {
      vips_error_clear();
      return ImageRef();
    }
    return ImageRef(out);
  };
  const double c = (side - 1) / 2.0;
  const double ones[3] = {1, 1, 1}, shift[2] = {-c, -c}, green[3] = {46, 139, 87};
  ImageRef xyz = run([&](VipsImage** o) { return vips_xyz(o, side, side, NULL); });
  if (!xyz.im) return "";
  ImageRef centred = run([&](VipsImage** o) { return vips_linear(xyz.im, o, ones, shift, 2, NULL); });
  if (!centred.im) return "";
  ImageRef squared = run([&](VipsImage** o) { return vips_multiply(centred.im, centred.im, o, NULL); });
  if (!squared.im) return "";
  ImageRef xs = run([&](VipsImage** o) { return vips_extract_band(squared.im, o, 0, NULL); });
  ImageRef ys = run([&](VipsImage** o) { return vips_extract_band(squared.im, o, 1, NULL); });
  if (!xs.im || !ys.im) return "";
  ImageRef distance = run([&](VipsImage** o) { return vips_add(xs.im, ys.im, o, NULL); });
  if (!distance.im) return "";
  ImageRef alpha = run([&](VipsImage** o) {
    return vips_relational_const1(distance.im, o, VIPS_OPERATION_RELATIONAL_LESSEQ, c * c, NULL);
  });
  ImageRef black = run([&](VipsImage** o) { return vips_black(o, side, side, "bands", 3, NULL); });
  if (!alpha.im || !black.im) return "";
  ImageRef colour = run([&](VipsImage** o) { return vips_linear(black.im, o, ones, green, 3, "uchar", TRUE, NULL); });
  if (!colour.im) return "";
  ImageRef rgba = run([&](VipsImage** o) { return vips_bandjoin2(colour.im, alpha.im, o, NULL); });
  if (!rgba.im) return "";
  ImageRef srgb = run([&](VipsImage** o) { return vips_copy(rgba.im, o, "interpretation", VIPS_INTERPRETATION_sRGB, NULL); });
  if (!srgb.im) return "";
  auto png = Encode(srgb, ".png");
  return png ? *png : "";
}

std::string IconIco(const std::string& png, int side) {
  // ICONDIR + one ICONDIRENTRY pointing at a PNG image (allowed since Vista).
  std::string ico;
  auto u16 = [&](uint16_t v) { ico.push_back(char(v & 0xff)); ico.push_back(char(v >> 8)); };
  auto u32 = [&](uint32_t v) { u16(uint16_t(v & 0xffff)); u16(uint16_t(v >> 16)); };
  u16(0);
  u16(1);
  u16(1);
  ico.push_back(char(side >= 256 ? 0 : side));
  ico.push_back(char(side >= 256 ? 0 : side));
  ico.push_back(0);  // no palette
  ico.push_back(0);
  u16(1);   // colour planes
  u16(32);  // bits per pixel
  u32(uint32_t(png.size()));
  u32(6 + 16);
  return ico + png;
}

std::optional<std::string> FixJpegOrientation(std::string_view data) {
  ImageRef img = Load(data);
  if (!Sane(img)) return std::nullopt;
  const int orientation = vips_image_get_typeof(img.im, VIPS_META_ORIENTATION) ? [&] {
    int o = 1;
    vips_image_get_int(img.im, VIPS_META_ORIENTATION, &o);
    return o;
  }() : 1;
  if (orientation <= 1 || orientation > 8) return std::nullopt;
  VipsImage* out = nullptr;
  if (vips_autorot(img.im, &out, NULL) != 0) {
    vips_error_clear();
    return std::nullopt;
  }
  ImageRef upright(out);
  // Go re-encodes without EXIF (so the orientation is not applied twice).
  return Encode(upright, ".jpg");
}

}  // namespace kelp
