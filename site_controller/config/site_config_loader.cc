#include "site_controller/config/site_config_loader.h"

#include <cerrno>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "site_controller/config/internal/parse.h"
#include "site_controller/config/internal/validate.h"
#include "site_controller/config/internal/yaml_reader.h"
#include "yaml-cpp/yaml.h"

namespace evgate::site {
namespace {

// Relative register map paths are relative to site.yaml, not to the working
// directory of whoever started evgate.
void ResolveRelativePaths(const std::string& site_yaml_path, SiteConfig* config) {
  const size_t slash = site_yaml_path.rfind('/');
  if (slash == std::string::npos) {
    return;
  }
  const std::string dir = site_yaml_path.substr(0, slash + 1);
  for (DeviceConfig& device : config->devices) {
    if (device.register_map && !device.register_map->empty() &&
        device.register_map->front() != '/') {
      device.register_map = dir + *device.register_map;
    }
  }
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open: ", std::generic_category().message(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string ConfigError::ToString() const {
  std::string out = file;
  if (line > 0) {
    absl::StrAppend(&out, ":", line);
  }
  absl::StrAppend(&out, ": ");
  if (!path.empty()) {
    absl::StrAppend(&out, path, ": ");
  }
  absl::StrAppend(&out, message);
  return out;
}

std::string SiteConfigLoadResult::ErrorText() const {
  return absl::StrJoin(errors, "\n", [](std::string* out, const ConfigError& error) {
    absl::StrAppend(out, error.ToString());
  });
}

SiteConfigLoadResult LoadSiteConfig(std::string_view yaml,
                                    std::string_view file_name_for_messages) {
  SiteConfigLoadResult result;
  result.config.source_path = std::string(file_name_for_messages);
  internal::ErrorList errors{std::string(file_name_for_messages)};
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    const int line = e.mark.is_null() ? 1 : e.mark.line + 1;
    errors.Add(line, "", absl::StrCat("YAML syntax error: ", e.msg));
    result.errors = errors.TakeSorted();
    return result;
  }
  try {
    internal::ParseSiteConfig(root, &result.config, &errors);
    // Validate even after parse errors, so that one run lists everything;
    // the validator skips what could not be read.
    internal::ValidateSiteConfig(result.config, &errors);
  } catch (const std::exception& e) {
    // The reader never lets yaml-cpp throw; this is a last line of defence.
    errors.Add(0, "", absl::StrCat("internal error while reading: ", e.what()));
  }
  result.errors = errors.TakeSorted();
  return result;
}

SiteConfigLoadResult LoadSiteConfigFromFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    SiteConfigLoadResult result;
    result.config.source_path = path;
    result.errors.push_back(ConfigError{
        path, 0, "", std::string(absl::StripPrefix(text.status().message(), path + ": "))});
    return result;
  }
  SiteConfigLoadResult result = LoadSiteConfig(*text, path);
  ResolveRelativePaths(path, &result.config);
  return result;
}

absl::StatusOr<SiteConfig> LoadSiteConfigString(std::string_view yaml,
                                                std::string_view file_name_for_messages) {
  SiteConfigLoadResult result = LoadSiteConfig(yaml, file_name_for_messages);
  if (!result.ok()) {
    return absl::InvalidArgumentError(result.ErrorText());
  }
  return std::move(result.config);
}

absl::StatusOr<SiteConfig> LoadSiteConfigFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return text.status();
  }
  SiteConfigLoadResult result = LoadSiteConfig(*text, path);
  if (!result.ok()) {
    return absl::InvalidArgumentError(result.ErrorText());
  }
  ResolveRelativePaths(path, &result.config);
  return std::move(result.config);
}

}  // namespace evgate::site
