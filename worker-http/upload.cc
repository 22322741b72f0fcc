#include "worker-http/upload.h"

#include <strings.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>

#include "worker-http/content_md5.h"
#include "worker-http/content_sniff.h"
#include "worker-http/gzip.h"
#include "worker-http/json_writer.h"
#include "worker-http/media_params.h"
#include "worker-http/mime_header.h"
#include "worker-http/read_headers.h"

namespace kelp {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(tolower(static_cast<unsigned char>(c)));
  return out;
}

// Go's util.CleanWindowsPathBase: backslashes become '/', then path.Base.
std::string CleanWindowsPathBase(std::string name) {
  std::replace(name.begin(), name.end(), '\\', '/');
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  const size_t slash = name.rfind('/');
  if (slash != std::string::npos && name.size() > 1) name = name.substr(slash + 1);
  if (name.empty()) return ".";
  return name;
}

// Go's path.Base.
std::string PathBase(std::string_view p) {
  if (p.empty()) return ".";
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  const size_t slash = p.rfind('/');
  if (slash != std::string_view::npos && p.size() > 1) p = p.substr(slash + 1);
  return std::string(p);
}

struct Part {
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string_view body;
  std::string FileName() const {
    auto it = headers.find("content-disposition");
    if (it == headers.end()) return "";
    // As Go's multipart.Part.FileName: whatever the disposition type, and an
    // empty file name is no name at all.
    std::string type;
    std::map<std::string, std::string> params;
    if (!ParseMediaParams(it->second, &type, &params)) return "";
    auto f = params.find("filename");
    return f == params.end() || f->second.empty() ? "" : PathBase(f->second);
  }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Splits a multipart body into parts. Errors read like Go's mime/multipart.
Status SplitMultipart(std::string_view body, const std::string& boundary, std::vector<Part>* parts) {
  const std::string delim = "--" + boundary;
  size_t pos = body.find(delim);
  if (pos == std::string_view::npos) return Status::Invalid("multipart: NextPart: EOF");
  pos += delim.size();
  for (;;) {
    if (body.substr(pos, 2) == "--") return Status::Ok();  // final boundary
    // Skip transport padding, then the line break after the boundary.
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.substr(pos, 2) == "\r\n") pos += 2;
    else if (body.substr(pos, 1) == "\n") pos += 1;
    else return Status::Invalid("multipart: NextPart: EOF");
    Part part;
    if (Status s = ReadMimeHeader(body, &pos, &part.headers); !s.ok()) return s;
    const std::string next = "\r\n" + delim;
    size_t end = body.find(next, pos);
    size_t skip = next.size();
    if (end == std::string_view::npos) {
      end = body.find("\n" + delim, pos);
      skip = delim.size() + 1;
    }
    if (end == std::string_view::npos) return Status::Invalid("multipart: NextPart: EOF");
    part.body = body.substr(pos, end - pos);
    parts->push_back(std::move(part));
    pos = end + skip;
  }
}

std::map<std::string, std::string> LoadSystemMimeTypes() {
  std::map<std::string, std::string> m;
  for (const char* file : {"/etc/mime.types", "/etc/apache2/mime.types", "/etc/apache/mime.types", "/etc/httpd/conf/mime.types"}) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream words(line);
      std::string type, ext;
      words >> type;
      while (words >> ext) {
        if (ext[0] == '#') break;
        std::string t = type;
        if (t.rfind("text/", 0) == 0 && t.find("charset") == std::string::npos) t += "; charset=utf-8";
        m["." + Lower(ext)] = t;
      }
    }
  }
  return m;
}

}  // namespace

std::string MimeTypeByExtension(std::string_view ext) {
  static const std::map<std::string, std::string> kBuiltin = {
      {".avif", "image/avif"}, {".css", "text/css; charset=utf-8"}, {".gif", "image/gif"},
      {".htm", "text/html; charset=utf-8"}, {".html", "text/html; charset=utf-8"}, {".jpeg", "image/jpeg"},
      {".jpg", "image/jpeg"}, {".js", "text/javascript; charset=utf-8"}, {".json", "application/json"},
      {".mjs", "text/javascript; charset=utf-8"}, {".pdf", "application/pdf"}, {".png", "image/png"},
      {".svg", "image/svg+xml"}, {".wasm", "application/wasm"}, {".webp", "image/webp"}, {".xml", "text/xml; charset=utf-8"}};
  static const std::map<std::string, std::string> kSystem = LoadSystemMimeTypes();
  const std::string key = Lower(ext);
  if (auto it = kSystem.find(key); it != kSystem.end()) return it->second;
  if (auto it = kBuiltin.find(key); it != kBuiltin.end()) return it->second;
  return "";
}

Result<ParsedUpload> ParseUpload(const http::Request& r, uint64_t size_limit, uint64_t inflate_limit) {
  ParsedUpload u;
  for (const auto& [name, value] : r.headers) {
    // Header names arrive lower-cased; Go keeps the canonical "Seaweed-Xyz" form.
    if (name.rfind("seaweed-", 0) == 0 && name.size() > 8) {
      std::string canonical;
      bool upper = true;
      for (char c : name) {
        canonical.push_back(upper ? char(toupper(static_cast<unsigned char>(c))) : c);
        upper = c == '-';
      }
      u.pairs.emplace(canonical.substr(8), value);
    }
  }
  const std::string content_type = r.HeaderOr("content-type");
  std::string part_type = content_type;
  const auto too_big = [&] { return Status::TooLarge("file over the limited " + std::to_string(size_limit) + " bytes"); };
  if (r.method == "POST" && (content_type.empty() || content_type.find("form-data") != std::string::npos)) {
    std::string media;
    std::map<std::string, std::string> params;
    if (content_type.empty() || !ParseMediaParams(content_type, &media, &params) ||
        (media != "multipart/form-data" && media != "multipart/mixed"))
      return Status::Invalid("request Content-Type isn't multipart/form-data");
    auto b = params.find("boundary");
    if (b == params.end() || b->second.empty()) return Status::Invalid("no multipart boundary param in Content-Type");
    std::vector<Part> parts;
    Status s = SplitMultipart(r.body, b->second, &parts);
    if (parts.empty()) return s.ok() ? Status::Invalid("multipart: NextPart: EOF") : s;
    // Go uses the first part, or the first later part that carries a file name.
    const Part* chosen = &parts[0];
    if (chosen->body.size() > size_limit) return too_big();
    u.file_name = chosen->FileName();
    if (u.file_name.empty()) {
      for (size_t i = 1; i < parts.size(); ++i) {
        if (!parts[i].FileName().empty()) {
          if (parts[i].body.size() > size_limit) return too_big();
          chosen = &parts[i];
          u.file_name = CleanWindowsPathBase(parts[i].FileName());
          break;
        }
      }
    } else {
      u.file_name = CleanWindowsPathBase(u.file_name);
    }
    u.data = chosen->body;
    part_type = chosen->Header("content-type");
    u.content_md5 = chosen->Header("content-md5");
    u.gzipped = chosen->Header("content-encoding") == "gzip";
  } else {
    std::string disposition = r.HeaderOr("content-disposition");
    if (disposition.find("name=") != std::string::npos) {
      if (disposition.rfind("inline", 0) != 0 && disposition.rfind("attachment", 0) != 0) disposition = "attachment; " + disposition;
      std::string type;
      std::map<std::string, std::string> params;
      if (ParseMediaParams(disposition, &type, &params)) {
        if (auto f = params.find("filename"); f != params.end()) u.file_name = f->second;
        else if (auto n = params.find("name"); n != params.end()) u.file_name = n->second;
      }
    }
    u.file_name = u.file_name.empty() ? PathBase(r.path) : CleanWindowsPathBase(u.file_name);
    if (r.body.size() > size_limit) return too_big();
    u.data = r.body;
    u.mime = content_type;
    u.gzipped = r.HeaderOr("content-encoding") == "gzip";
  }
  u.chunk_manifest = IsTrueParam(r.Query("cm"));
  if (!u.chunk_manifest) {
    const size_t dot = u.file_name.rfind('.');
    std::string mtype;
    if (dot != std::string::npos && dot > 0) mtype = MimeTypeByExtension(Lower(u.file_name.substr(dot)));
    if (!part_type.empty() && part_type != "application/octet-stream" && mtype != part_type) u.mime = part_type;
    else if (!mtype.empty() && u.mime.empty() && mtype != "application/octet-stream") u.mime = mtype;
  }
  const std::string ts = r.Query("ts");
  u.modified_time = std::strtoull(ts.c_str(), nullptr, 10);
  if (!ts.empty() && ts.find_first_not_of("0123456789") != std::string::npos) u.modified_time = 0;
  auto ttl = ParseTtl(r.Query("ttl"));
  if (ttl.ok()) u.ttl = ttl.value();
  u.original_size = u.data.size();
  std::string_view uncompressed = u.data;
  std::string inflated;
  const std::string expected_md5 = !r.HeaderOr("content-md5").empty() ? r.HeaderOr("content-md5") : u.content_md5;
  if (u.gzipped) {
    // Go ignores data that does not inflate: sizes and MD5 are then of the bytes as sent.
    if (!expected_md5.empty()) {
      if (Gunzip(u.data, size_t(inflate_limit), &inflated)) {
        uncompressed = inflated;
        u.original_size = inflated.size();
      } else if (inflated.size() > inflate_limit) {
        return Status::Invalid("gzipped data inflates to more than " + std::to_string(inflate_limit) + " bytes");
      }
    } else {
      uint64_t n = 0;
      if (GunzippedSize(u.data, inflate_limit, &n)) u.original_size = n;
      else if (n > inflate_limit) return Status::Invalid("gzipped data inflates to more than " + std::to_string(inflate_limit) + " bytes");
    }
  } else if (r.Query("type") != "replicate") {
    // Go passes the whole base name where it means the extension, so only
    // names like ".svg" match the extension rules; kept as Go has it.
    std::string mime = u.mime.empty() ? http::DetectContentType(u.data.substr(0, http::kSniffLen)) : u.mime;
    if (mime == "application/octet-stream") mime.clear();
    if (const auto [should, sure] = IsCompressibleFileType(u.file_name, mime); should && sure) {
      auto gz = std::make_shared<std::string>();
      if (Gzip(u.data, gz.get()) && gz->size() * 10 < u.data.size() * 9) {
        u.data = *gz;
        u.owned_data = std::move(gz);
        u.gzipped = true;
      }
    }
  }
  if (!expected_md5.empty()) {
    u.content_md5 = ContentMd5(uncompressed);
    if (u.content_md5 != expected_md5) {
      return Status::Invalid("Content-MD5 did not match md5 of file data expected [" + expected_md5 + "] received [" +
                             u.content_md5 + "] size " + std::to_string(uncompressed.size()));
    }
  }
  return u;
}

std::pair<bool, bool> IsCompressibleFileType(std::string_view ext, std::string_view mime) {
  auto starts = [](std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; };
  auto ends = [](std::string_view s, std::string_view p) { return s.size() >= p.size() && s.substr(s.size() - p.size()) == p; };
  auto one_of = [&](std::initializer_list<std::string_view> l) {
    for (auto e : l)
      if (ext == e) return true;
    return false;
  };
  if (starts(mime, "text/")) return {true, true};
  if (one_of({".svg", ".bmp", ".wav"})) return {true, true};
  if (starts(mime, "image/")) return {false, true};
  if (one_of({".zip", ".rar", ".gz", ".bz2", ".xz", ".zst", ".br"})) return {false, true};
  if (one_of({".pdf", ".txt", ".html", ".htm", ".css", ".js", ".json", ".php", ".java", ".go", ".rb", ".c", ".cpp",
              ".h", ".hpp"}))
    return {true, true};
  if (one_of({".png", ".jpg", ".jpeg"})) return {false, true};
  if (starts(mime, "application/")) {
    if (ends(mime, "zstd")) return {false, true};
    if (ends(mime, "xml") || ends(mime, "script")) return {true, true};
    if (ends(mime, "vnd.rar")) return {false, true};
  }
  if (starts(mime, "audio/")) {
    const std::string_view sub = mime.substr(6);
    if (sub == "wave" || sub == "wav" || sub == "x-wav" || sub == "x-pn-wav") return {true, true};
  }
  return {false, false};
}

NeedleFields NeedleFieldsFor(const ParsedUpload& u, NeedleId id, Cookie cookie, uint64_t now_s, std::string* pairs_json) {
  NeedleFields f;
  f.id = id;
  f.cookie = cookie;
  f.data = u.data;
  if (u.file_name.size() < 256) {
    f.name = u.file_name;
    f.flags |= kFlagHasName;
  }
  if (u.mime.size() < 256) {
    f.mime = u.mime;
    f.flags |= kFlagHasMime;
  }
  if (!u.pairs.empty()) {
    *pairs_json = GoJsonObject(u.pairs);
    if (pairs_json->size() < 65536) {
      f.pairs = *pairs_json;
      f.flags |= kFlagHasPairs;
    }
  }
  if (u.gzipped) f.flags |= kFlagIsCompressed;
  f.last_modified = u.modified_time ? u.modified_time : now_s;
  f.flags |= kFlagHasLastModified;
  if (!u.ttl.empty()) {
    f.ttl = u.ttl;
    f.flags |= kFlagHasTtl;
  }
  if (u.chunk_manifest) f.flags |= kFlagIsChunkManifest;
  return f;
}

bool IsJpegUpload(const ParsedUpload& u) {
  std::string name(u.file_name);
  for (char& c : name) c = char(tolower(static_cast<unsigned char>(c)));
  auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return u.mime == "image/jpeg" || ends(".jpg") || ends(".jpeg");
}

}  // namespace kelp
