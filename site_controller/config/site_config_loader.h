// Loads `site.yaml` into a SiteConfig and validates it completely.
//
// Contract:
//  - Every problem in the file is reported, not just the first: YAML syntax,
//    unknown fields (typos never pass silently), wrong types, missing required
//    fields, bad ids and references, ranges, device-profile limits, topology
//    (cycles, phases), bus ownership, security settings. docs/site-yaml.md
//    lists the rules.
//  - Each error names the file, the 1-based line, the path of the field and
//    what is allowed, e.g.
//      site.yaml:42: stations[3].evses[0].max_current_a: 40 exceeds the
//      maximum of profile cabur_ev_plus_22kw (32 A); allowed 6–32
//    Errors are sorted by line.
//  - No exception escapes; nothing is read but the given file (and nothing
//    from the environment).
//
// Thread-safety: the functions are thread-safe (no shared state).

#ifndef EVGATE_SITE_CONTROLLER_CONFIG_SITE_CONFIG_LOADER_H_
#define EVGATE_SITE_CONTROLLER_CONFIG_SITE_CONFIG_LOADER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "site_controller/config/site_config.h"

namespace evgate::site {

// One problem in a site.yaml.
struct ConfigError {
  std::string file;
  int line = 0;      // 1-based; 0 when the problem is not on a line
  std::string path;  // e.g. "stations[3].evses[0].max_current_a"; may be ""
  std::string message;

  // "FILE:LINE: PATH: MESSAGE" (the parts that are empty are left out).
  std::string ToString() const;

  friend bool operator==(const ConfigError& a, const ConfigError& b) {
    return a.file == b.file && a.line == b.line && a.path == b.path && a.message == b.message;
  }
};

struct SiteConfigLoadResult {
  // Complete and valid only when `errors` is empty; otherwise best effort.
  SiteConfig config;
  std::vector<ConfigError> errors;  // sorted by line

  bool ok() const { return errors.empty(); }
  // All errors, one ToString() per line.
  std::string ErrorText() const;
};

// Parses and validates `yaml`; messages name `file_name_for_messages`.
SiteConfigLoadResult LoadSiteConfig(std::string_view yaml, std::string_view file_name_for_messages);

// Reads `path` and loads it. An unreadable file is one error with line 0.
// Relative `register_map` paths are resolved against the file's directory.
SiteConfigLoadResult LoadSiteConfigFromFile(const std::string& path);

// As above, as a StatusOr: on any error, InvalidArgumentError whose message
// is ErrorText() (NotFoundError when the file cannot be read).
absl::StatusOr<SiteConfig> LoadSiteConfigString(std::string_view yaml,
                                                std::string_view file_name_for_messages);
absl::StatusOr<SiteConfig> LoadSiteConfigFile(const std::string& path);

}  // namespace evgate::site

#endif  // EVGATE_SITE_CONTROLLER_CONFIG_SITE_CONFIG_LOADER_H_
