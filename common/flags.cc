#include "common/flags.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace kelp {

const std::vector<FlagSpec>& VolumeFlagSpecs() {
  static const std::vector<FlagSpec> specs = {
      {"port", FlagKind::kInt, "8080", "http listen port", true},
      {"port.grpc", FlagKind::kInt, "0", "grpc listen port (default: port + 10000)", true},
      {"port.public", FlagKind::kInt, "0", "port opened to public (read-only)", true},
      {"ip", FlagKind::kString, "", "ip or server name, also used as identifier (default: detected address)", true},
      {"id", FlagKind::kString, "", "volume server id (default: ip:port)", true},
      {"publicUrl", FlagKind::kString, "", "publicly accessible address", true},
      {"ip.bind", FlagKind::kString, "", "ip address to bind to (default: same as -ip)", true},
      {"master", FlagKind::kString, "localhost:9333", "comma-separated master servers", true},
      {"mserver", FlagKind::kString, "", "deprecated alias of -master", true},
      {"preStopSeconds", FlagKind::kInt, "10", "seconds between stop heartbeating and stopping the server", true},
      {"pulseSeconds", FlagKind::kInt, "5", "heartbeat interval in seconds", true},
      {"idleTimeout", FlagKind::kInt, "30", "connection idle seconds", true},
      {"dataCenter", FlagKind::kString, "", "data center name of this server", true},
      {"rack", FlagKind::kString, "", "rack name of this server", true},
      {"index", FlagKind::kString, "memory", "needle map type: memory|leveldb|leveldbMedium|leveldbLarge", true},
      {"disk", FlagKind::kString, "", "disk type per -dir: hdd|ssd|<tag>", true},
      {"tags", FlagKind::kString, "", "disk tags per -dir", false},
      {"images.fix.orientation", FlagKind::kBool, "false", "adjust jpg orientation on upload", true},
      {"readMode", FlagKind::kString, "proxy", "for volumes not here: local|proxy|redirect", true},
      {"cpuprofile", FlagKind::kString, "", "cpu profile output file", false},
      {"memprofile", FlagKind::kString, "", "memory profile output file", false},
      {"compactionMBps", FlagKind::kInt, "0", "limit background compaction or copying speed in MB/s", true},
      {"maintenanceMBps", FlagKind::kInt, "0", "limit maintenance IO rate in MB/s", true},
      {"fileSizeLimitMB", FlagKind::kInt, "256", "limit file size to avoid out of memory", true},
      {"index.leveldbTimeout", FlagKind::kInt, "0", "hours to unload idle leveldb indexes", false},
      {"concurrentUploadLimitMB", FlagKind::kInt, "0", "limit total concurrent upload size (0: none)", true},
      {"concurrentDownloadLimitMB", FlagKind::kInt, "0", "limit total concurrent download size (0: none)", true},
      {"pprof", FlagKind::kBool, "false", "enable pprof http handlers", false},
      {"metricsPort", FlagKind::kInt, "0", "prometheus metrics listen port", true},
      {"metricsIp", FlagKind::kString, "", "metrics listen ip (default: -ip.bind)", true},
      {"dir.idx", FlagKind::kString, "", "directory to store .idx files", true},
      {"inflightUploadDataTimeout", FlagKind::kDuration, "60s", "wait time for in-flight upload data", true},
      {"inflightDownloadDataTimeout", FlagKind::kDuration, "60s", "wait time for in-flight download data", true},
      {"hasSlowRead", FlagKind::kBool, "true", "avoid blocking writes behind slow large reads", true},
      {"readBufferSizeMB", FlagKind::kInt, "4", "read buffer size in MB for large needles", true},
      {"volume.allowUntrustedRemoteEndpoints", FlagKind::kBool, "false", "allow remote endpoints from clients", false},
      {"debug", FlagKind::kBool, "false", "serve runtime profiling data", false},
      {"debug.port", FlagKind::kInt, "6060", "http port for debugging", false},
      {"dir", FlagKind::kString, "/tmp", "comma-separated data directories", true},
      {"max", FlagKind::kString, "8", "maximum volume count per -dir, comma-separated (0: auto)", true},
      {"whiteList", FlagKind::kString, "", "comma-separated IPs allowed to write", true},
      {"minFreeSpacePercent", FlagKind::kString, "1", "minimum free disk space percent (deprecated)", false},
      {"minFreeSpace", FlagKind::kString, "", "minimum free disk space, e.g. 10GiB or 5 (percent)", false},
      {"securityFile", FlagKind::kString, "", "path to security.toml", true},
      {"config_dir", FlagKind::kString, "", "directory with toml configuration files", true},
      {"options", FlagKind::kString, "", "a file of command line options, each line in optionName=optionValue format", true},
      // Global logging flags of the weed binary.
      {"v", FlagKind::kInt, "0", "log level for V logs", false},
      {"logtostderr", FlagKind::kBool, "false", "log to standard error instead of files", true},
      {"alsologtostderr", FlagKind::kBool, "false", "log to standard error as well as files", true},
      {"stderrthreshold", FlagKind::kString, "ERROR", "logs at or above this threshold go to stderr", false},
      {"logdir", FlagKind::kString, "", "write log files in this directory", false},
      {"log_dir", FlagKind::kString, "", "write log files in this directory", false},
      {"log_max_files", FlagKind::kInt, "5", "log files kept per severity", false},
      {"log_rotate_hours", FlagKind::kInt, "168", "rotate log files after this many hours", false},
      {"log_json", FlagKind::kBool, "false", "log in JSON", false},
      {"log_compress", FlagKind::kBool, "false", "gzip rotated log files", false},
      {"vmodule", FlagKind::kString, "", "per-file log levels", false},
      {"log_backtrace_at", FlagKind::kString, "", "emit a stack trace at file:line", false},
      // kelp's own.
      {"workers", FlagKind::kInt, "0", "HTTP worker processes (0: one per core)", true},
  };
  return specs;
}

namespace {

const FlagSpec* FindSpec(const std::string& name) {
  for (const auto& s : VolumeFlagSpecs())
    if (name == s.name) return &s;
  return nullptr;
}

bool ParseBool(const std::string& v, bool* out) {
  static const char* kTrue[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char* kFalse[] = {"0", "f", "F", "FALSE", "false", "False"};
  for (const char* t : kTrue)
    if (v == t) return *out = true, true;
  for (const char* f : kFalse)
    if (v == f) return *out = false, true;
  return false;
}

bool ValidValue(const FlagSpec& spec, const std::string& v) {
  char* end = nullptr;
  switch (spec.kind) {
    case FlagKind::kString: return true;
    case FlagKind::kInt: errno = 0; std::strtoll(v.c_str(), &end, 0); return !v.empty() && *end == '\0' && errno == 0;
    case FlagKind::kFloat: std::strtod(v.c_str(), &end); return !v.empty() && *end == '\0';
    case FlagKind::kBool: { bool b; return ParseBool(v, &b); }
    case FlagKind::kDuration: { double d; return ParseGoDuration(v, &d); }
  }
  return false;
}

}  // namespace

bool ParseGoDuration(const std::string& s, double* seconds) {
  if (s == "0") return *seconds = 0, true;
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  if (i >= s.size()) return false;
  double total = 0;
  while (i < s.size()) {
    const size_t start = i;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (start == i) return false;
    const double n = std::strtod(s.substr(start, i - start).c_str(), nullptr);
    const size_t ustart = i;
    while (i < s.size() && !((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    const std::string unit = s.substr(ustart, i - ustart);
    double mul;
    if (unit == "ns") mul = 1e-9;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") mul = 1e-6;
    else if (unit == "ms") mul = 1e-3;
    else if (unit == "s") mul = 1;
    else if (unit == "m") mul = 60;
    else if (unit == "h") mul = 3600;
    else return false;
    total += n * mul;
  }
  *seconds = neg ? -total : total;
  return true;
}

Result<Flags> Flags::Parse(const std::vector<std::string>& args) {
  Flags f;
  for (const auto& s : VolumeFlagSpecs()) f.values_[s.name] = s.default_value;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      f.positional.insert(f.positional.end(), args.begin() + long(i) + 1, args.end());
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      // Go stops at the first non-flag argument.
      f.positional.insert(f.positional.end(), args.begin() + long(i), args.end());
      break;
    }
    std::string body = a.substr(a[1] == '-' ? 2 : 1);
    if (body.empty() || body[0] == '-' || body[0] == '=') return Status::Invalid("bad flag syntax: " + a);
    std::string name = body, value;
    bool has_value = false;
    if (const size_t eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    if (name == "h" || name == "help") {
      f.help_ = true;
      continue;
    }
    const FlagSpec* spec = FindSpec(name);
    if (!spec) return Status::Invalid("flag provided but not defined: -" + name);
    if (!has_value) {
      if (spec->kind == FlagKind::kBool) {
        value = "true";
      } else {
        if (i + 1 >= args.size()) return Status::Invalid("flag needs an argument: -" + name);
        value = args[++i];
      }
    }
    if (!ValidValue(*spec, value))
      return Status::Invalid("invalid value \"" + value + "\" for flag -" + name + ": parse error");
    f.values_[name] = value;
    f.set_[name] = true;
  }
  return f;
}

const std::string& Flags::Str(const std::string& name) const { return values_.at(name); }
long long Flags::Int(const std::string& name) const { return std::strtoll(values_.at(name).c_str(), nullptr, 0); }
bool Flags::Bool(const std::string& name) const {
  bool b = false;
  ParseBool(values_.at(name), &b);
  return b;
}
double Flags::Seconds(const std::string& name) const {
  double d = 0;
  ParseGoDuration(values_.at(name), &d);
  return d;
}

std::vector<std::string> Flags::UnimplementedSet() const {
  std::vector<std::string> out;
  for (const auto& s : VolumeFlagSpecs())
    if (!s.implemented && IsSet(s.name) && values_.at(s.name) != s.default_value) out.push_back(s.name);
  return out;
}

namespace {

// The weed binary's own flags (weed.go and glog), which Go reads as WEED_NAME.
bool IsGlobalFlag(const std::string& name) {
  static const char* kGlobal[] = {"config_dir",  "v",           "logtostderr",   "alsologtostderr", "stderrthreshold",
                                  "logdir",      "log_dir",     "log_max_files", "log_rotate_hours", "log_json",
                                  "log_compress", "vmodule",    "log_backtrace_at"};
  for (const char* g : kGlobal)
    if (name == g) return true;
  return false;
}

bool IsKelpFlag(const std::string& name) { return name == "workers"; }

std::string EnvNameOf(const std::string& flag) {
  std::string env = IsGlobalFlag(flag) ? "WEED_" : "";
  for (char c : flag) env.push_back(c == '-' || c == '.' ? '_' : char(std::toupper(static_cast<unsigned char>(c))));
  return env;
}

}  // namespace

Status Flags::SetFrom(const std::string& name, std::string value, const std::string& origin) {
  const FlagSpec* spec = FindSpec(name);
  if (spec->kind == FlagKind::kBool && value.empty()) value = "true";
  if (!ValidValue(*spec, value)) return Status::Invalid("invalid value \"" + value + "\" for " + origin + ": parse error");
  values_[name] = std::move(value);
  set_[name] = true;
  return Status::Ok();
}

Status Flags::FillFromEnvironment(char** environ, std::vector<std::string>* sources) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq && eq != *e) env.emplace(std::string(*e, size_t(eq - *e)), std::string(eq + 1));
  }
  for (const auto& s : VolumeFlagSpecs()) {
    if (IsSet(s.name) || IsKelpFlag(s.name)) continue;
    const std::string key = EnvNameOf(s.name);
    const auto it = env.find(key);
    if (it == env.end()) continue;
    if (Status st = SetFrom(s.name, it->second, "environment variable " + std::string(s.name)); !st.ok()) return st;
    sources->push_back("-" + std::string(s.name) + " (from " + key + ")");
  }
  return Status::Ok();
}

Status Flags::FillFromOptionsFile(std::vector<std::string>* sources) {
  const std::string path = Str("options");
  if (path.empty()) return Status::Ok();
  std::ifstream in(path);
  if (!in) return Status::Invalid("open " + path + ": " + std::strerror(errno));
  std::string line;
  while (std::getline(in, line)) {
    const size_t first = line.find_first_not_of(" \t\r\v\f");
    if (first == std::string::npos) continue;
    line = line.substr(first, line.find_last_not_of(" \t\r\v\f") - first + 1);
    if (line[0] == '#' || line.rfind("//", 0) == 0 || line.rfind("--", 0) == 0) continue;
    std::string name = line, value;
    if (const size_t sep = line.find_first_of("= :"); sep != std::string::npos) {
      name = line.substr(0, sep);
      value = line.substr(sep + 1);
      auto trim = [](std::string& t) {
        t.erase(0, t.find_first_not_of(" \t"));
        t.erase(t.find_last_not_of(" \t") + 1);
      };
      trim(name);
      trim(value);
    }
    if (!name.empty() && name[0] == '-') name.erase(0, 1);
    if (IsSet(name) || !FindSpec(name)) continue;
    if (Status st = SetFrom(name, value, "configuration variable " + name); !st.ok()) return st;
    sources->push_back("-" + name + " (from " + path + ")");
  }
  return Status::Ok();
}

std::vector<std::string> Flags::SetArgs() const {
  std::vector<std::string> out;
  for (const auto& [name, set] : set_)
    if (set) out.push_back("-" + name + "=" + values_.at(name));
  return out;
}

std::string FlagUsage(const char* program) {
  std::string out = std::string("Usage: ") + program + " [flags]\n  kelp volume server, a drop-in replacement for `weed volume`.\n\n";
  for (const auto& s : VolumeFlagSpecs()) {
    out += "  -" + std::string(s.name);
    if (s.kind != FlagKind::kBool) out += " value";
    out += "\n    \t" + std::string(s.help);
    if (s.default_value[0] != '\0' && std::strcmp(s.default_value, "false") != 0 && std::strcmp(s.default_value, "0") != 0)
      out += " (default " + std::string(s.kind == FlagKind::kString ? "\"" : "") + s.default_value +
             (s.kind == FlagKind::kString ? "\"" : "") + ")";
    out += "\n";
  }
  return out;
}

}  // namespace kelp
