// The semantic half of loading site.yaml: checks a parsed SiteConfig as a
// whole (ids and references, circuit tree, phases, profile limits, bus
// ownership, security settings, ranges) and records every problem with the
// line of the field it is about. docs/site-yaml.md lists the rules.
//
// Thread-compatible. Private to site_controller/config.

#ifndef EVGATE_SITE_CONTROLLER_CONFIG_INTERNAL_VALIDATE_H_
#define EVGATE_SITE_CONTROLLER_CONFIG_INTERNAL_VALIDATE_H_

#include "site_controller/config/internal/yaml_reader.h"
#include "site_controller/config/site_config.h"

namespace evgate::site::internal {

void ValidateSiteConfig(const SiteConfig& config, ErrorList* errors);

}  // namespace evgate::site::internal

#endif  // EVGATE_SITE_CONTROLLER_CONFIG_INTERNAL_VALIDATE_H_
