#include "worker-http/content_sniff.h"

#include <cctype>
#include <cstring>

namespace kelp::http {
namespace {

bool IsWs(unsigned char c) { return c == '\t' || c == '\n' || c == '\x0c' || c == '\r' || c == ' '; }

bool StartsWith(std::string_view d, std::string_view p) { return d.size() >= p.size() && d.substr(0, p.size()) == p; }

// pattern/mask comparison; `skip_ws` drops leading whitespace first.
bool Masked(std::string_view d, std::string_view pat, std::string_view mask, bool skip_ws) {
  size_t i = 0;
  if (skip_ws)
    while (i < d.size() && IsWs(static_cast<unsigned char>(d[i]))) ++i;
  if (d.size() - i < pat.size()) return false;
  for (size_t k = 0; k < pat.size(); ++k)
    if ((static_cast<unsigned char>(d[i + k]) & static_cast<unsigned char>(mask[k])) != static_cast<unsigned char>(pat[k])) return false;
  return true;
}

// An HTML tag name, case-insensitive, followed by a space or '>'.
bool HtmlSig(std::string_view d, std::string_view tag) {
  size_t i = 0;
  while (i < d.size() && IsWs(static_cast<unsigned char>(d[i]))) ++i;
  if (d.size() - i < tag.size() + 1) return false;
  for (size_t k = 0; k < tag.size(); ++k) {
    unsigned char c = static_cast<unsigned char>(d[i + k]);
    if (tag[k] >= 'A' && tag[k] <= 'Z') c = static_cast<unsigned char>(toupper(c));
    if (c != static_cast<unsigned char>(tag[k])) return false;
  }
  const char t = d[i + tag.size()];
  return t == ' ' || t == '>';
}

bool Mp4Sig(std::string_view d) {
  if (d.size() < 12) return false;
  const uint32_t box = uint32_t(static_cast<unsigned char>(d[0])) << 24 | uint32_t(static_cast<unsigned char>(d[1])) << 16 |
                       uint32_t(static_cast<unsigned char>(d[2])) << 8 | uint32_t(static_cast<unsigned char>(d[3]));
  if (d.size() < box || box % 4 != 0) return false;
  if (d.substr(4, 4) != "ftyp") return false;
  for (size_t st = 8; st < box; st += 4) {
    if (st == 12) continue;  // minor version
    if (d.substr(st, 3) == "mp4") return true;
  }
  return false;
}

}  // namespace

std::string DetectContentType(std::string_view d) {
  if (d.size() > kSniffLen) d = d.substr(0, kSniffLen);
  using std::string_view;
  static const char* kHtml[] = {"<!DOCTYPE HTML", "<HTML", "<HEAD", "<SCRIPT", "<IFRAME", "<H1", "<DIV", "<FONT", "<TABLE",
                                "<A", "<STYLE", "<TITLE", "<B", "<BODY", "<BR", "<P", "<!--"};
  for (const char* t : kHtml)
    if (HtmlSig(d, t)) return "text/html; charset=utf-8";
  if (Masked(d, "<?xml", "\xFF\xFF\xFF\xFF\xFF", true)) return "text/xml; charset=utf-8";
  if (StartsWith(d, "%PDF-")) return "application/pdf";
  if (StartsWith(d, "%!PS-Adobe-")) return "application/postscript";
  if (Masked(d, string_view("\xFE\xFF\x00\x00", 4), string_view("\xFF\xFF\x00\x00", 4), false)) return "text/plain; charset=utf-16be";
  if (Masked(d, string_view("\xFF\xFE\x00\x00", 4), string_view("\xFF\xFF\x00\x00", 4), false)) return "text/plain; charset=utf-16le";
  if (Masked(d, string_view("\xEF\xBB\xBF\x00", 4), string_view("\xFF\xFF\xFF\x00", 4), false)) return "text/plain; charset=utf-8";
  if (StartsWith(d, string_view("\x00\x00\x01\x00", 4)) || StartsWith(d, string_view("\x00\x00\x02\x00", 4))) return "image/x-icon";
  if (StartsWith(d, "BM")) return "image/bmp";
  if (StartsWith(d, "GIF87a") || StartsWith(d, "GIF89a")) return "image/gif";
  if (Masked(d, string_view("RIFF\x00\x00\x00\x00WEBPVP", 14), string_view("\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF", 14), false)) return "image/webp";
  if (StartsWith(d, "\x89PNG\x0D\x0A\x1A\x0A")) return "image/png";
  if (StartsWith(d, "\xFF\xD8\xFF")) return "image/jpeg";
  if (Masked(d, string_view("FORM\x00\x00\x00\x00" "AIFF", 12), string_view("\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF", 12), false)) return "audio/aiff";
  if (StartsWith(d, "ID3")) return "audio/mpeg";
  if (StartsWith(d, string_view("OggS\x00", 5))) return "application/ogg";
  if (StartsWith(d, string_view("MThd\x00\x00\x00\x06", 8))) return "audio/midi";
  if (Masked(d, string_view("RIFF\x00\x00\x00\x00" "AVI ", 12), string_view("\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF", 12), false)) return "video/avi";
  if (Masked(d, string_view("RIFF\x00\x00\x00\x00WAVE", 12), string_view("\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF", 12), false)) return "audio/wave";
  if (Mp4Sig(d)) return "video/mp4";
  if (StartsWith(d, "\x1A\x45\xDF\xA3")) return "video/webm";
  if (Masked(d, string_view("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00LP", 36),
             string_view("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xFF\xFF", 36), false))
    return "application/vnd.ms-fontobject";
  if (StartsWith(d, string_view("\x00\x01\x00\x00", 4))) return "font/ttf";
  if (StartsWith(d, "OTTO")) return "font/otf";
  if (StartsWith(d, "ttcf")) return "font/collection";
  if (StartsWith(d, "wOFF")) return "font/woff";
  if (StartsWith(d, "wOF2")) return "font/woff2";
  if (StartsWith(d, "\x1F\x8B\x08")) return "application/x-gzip";
  if (StartsWith(d, "PK\x03\x04")) return "application/zip";
  if (StartsWith(d, string_view("Rar!\x1A\x07\x00", 7)) || StartsWith(d, string_view("Rar!\x1A\x07\x01\x00", 8))) return "application/x-rar-compressed";
  if (StartsWith(d, string_view("\x00\x61\x73\x6D", 4))) return "application/wasm";
  for (unsigned char c : d)
    if (c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1A) || (c >= 0x1C && c <= 0x1F)) return "application/octet-stream";
  return "text/plain; charset=utf-8";
}

}  // namespace kelp::http
