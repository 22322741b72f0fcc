// Command-line flags of `weed volume`, accepted with Go's flag syntax:
// -name=value, -name value, --name=value, --name value; booleans as -name or
// -name=false (a bare following word is never taken as a boolean's value).
// (upstream: weed/command/volume.go and the global logging flags)
#pragma once
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace kelp {

enum class FlagKind { kString, kInt, kBool, kDuration, kFloat };

struct FlagSpec {
  const char* name;
  FlagKind kind;
  const char* default_value;
  const char* help;
  bool implemented;  // false: accepted, warned about when set
};

const std::vector<FlagSpec>& VolumeFlagSpecs();

class Flags {
 public:
  // Parses argv[1..]. Errors read like Go's ("flag provided but not defined: -x").
  static Result<Flags> Parse(const std::vector<std::string>& args);

  const std::string& Str(const std::string& name) const;
  long long Int(const std::string& name) const;
  bool Bool(const std::string& name) const;
  double Seconds(const std::string& name) const;  // durations
  bool IsSet(const std::string& name) const { return set_.count(name) != 0; }
  bool help() const { return help_; }
  // Set flags whose behaviour is not built yet.
  std::vector<std::string> UnimplementedSet() const;
  std::vector<std::string> positional;

  // Go's fla9 fills a flag the command line did not set from the environment:
  // the flag's name in upper case with '-' and '.' as '_', after "WEED_" for
  // the weed binary's global flags (DIR, PORT_GRPC, WHITELIST, WEED_CONFIG_DIR).
  // kelp's own flags are never taken from the environment. Appends
  // "-name (from ENV)" to `sources` for each one taken.
  Status FillFromEnvironment(char** environ, std::vector<std::string>* sources);
  // Then from the -options file, one "name=value" (or "name value",
  // "name:value", bare boolean "name") per line; '#', "//" and "--" lines are
  // comments, names it does not know are ignored, as Go ignores them.
  Status FillFromOptionsFile(std::vector<std::string>* sources);
  // Every flag that is set, as "-name=value": what the workers are started
  // with, so that they see exactly the configuration the supervisor resolved.
  std::vector<std::string> SetArgs() const;

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> set_;
  bool help_ = false;
  Status SetFrom(const std::string& name, std::string value, const std::string& origin);
};

std::string FlagUsage(const char* program);
// Go's time.ParseDuration subset: [-]N(.N)?(ns|us|µs|ms|s|m|h) repeated.
bool ParseGoDuration(const std::string& s, double* seconds);

}  // namespace kelp
