// site.yaml → SiteConfig: the structural half of loading.
//
// Reads every section with the MapReader layer, so unknown fields, wrong
// types, bad enum values, malformed ids and missing required fields are
// reported here. Fills in every default (from `defaults::` and the device
// profiles) and resolves what one field inherits from another (circuit
// phases from the parent, AC/DC EVSE limits from the station's profile).
// Range and cross-reference checks are left to validate.h.
//
// Thread-compatible. Private to site_controller/config.

#ifndef EVGATE_SITE_CONTROLLER_CONFIG_INTERNAL_PARSE_H_
#define EVGATE_SITE_CONTROLLER_CONFIG_INTERNAL_PARSE_H_

#include "site_controller/config/internal/yaml_reader.h"
#include "site_controller/config/site_config.h"
#include "yaml-cpp/yaml.h"

namespace evgate::site::internal {

// `root` is the parsed document. Never throws.
void ParseSiteConfig(const YAML::Node& root, SiteConfig* config, ErrorList* errors);

}  // namespace evgate::site::internal

#endif  // EVGATE_SITE_CONTROLLER_CONFIG_INTERNAL_PARSE_H_
