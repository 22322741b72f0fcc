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

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> set_;
  bool help_ = false;
};

std::string FlagUsage(const char* program);
// Go's time.ParseDuration subset: [-]N(.N)?(ns|us|µs|ms|s|m|h) repeated.
bool ParseGoDuration(const std::string& s, double* seconds);

}  // namespace kelp
