// The services a process can host, by name, and how to build each one from a
// validated site config. Each service package offers its entry (e.g.
// services/session:session_entry); a binary hosts the entries it links: the
// service binaries one each, `evgate run` (gateway/) all of them.
//
// A catalog may list services that later work brings without a factory, so
// that asking for one gives an honest "not in this build yet" instead of
// "unknown".
#ifndef EVGATE_RUNTIME_SERVICE_CATALOG_H_
#define EVGATE_RUNTIME_SERVICE_CATALOG_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/service.h"
#include "site_controller/config/site_config.h"

namespace evgate {

namespace devices {
class DeviceBackend;
}  // namespace devices

// What the services built for one process hand to each other. Built in
// catalog order, so a service may leave something here for one built after
// it.
struct ProcessParts {
  // Every service this process hosts, by name.
  std::vector<std::string> hosted;
  // Device backends of other services for the DeviceDriver service of this
  // process (the OCPP bridge's chargers in `evgate run`).
  std::vector<std::shared_ptr<devices::DeviceBackend>> device_backends;

  bool Hosts(const std::string& name) const {
    for (const std::string& n : hosted) {
      if (n == name) return true;
    }
    return false;
  }
};

using ServiceFactory = std::function<absl::StatusOr<std::unique_ptr<Service>>(
    const site::SiteConfig& config, ProcessParts& parts)>;

struct ServiceEntry {
  std::string name;         // as on the command line: "load_balancer"
  std::string description;  // one line for `evgate services`
  ServiceFactory create;    // empty: not part of this build yet
  std::string not_yet;      // for entries without a factory: what is missing
};

// In start order: what a service hands to another (ProcessParts) is built
// first, consumers after (gateway/all_services.cc says why its order is).
using ServiceCatalog = std::vector<ServiceEntry>;

// The entry named `name`, or nullptr.
const ServiceEntry* FindService(const ServiceCatalog& catalog, const std::string& name);

// Resolves a comma-separated `--services` value ("" = every service this
// build has) to catalog entries, in catalog order. Unknown names, services
// not in this build and a name given twice are errors that name what is
// available.
absl::StatusOr<std::vector<const ServiceEntry*>> SelectServices(const ServiceCatalog& catalog,
                                                                const std::string& names);

}  // namespace evgate

#endif  // EVGATE_RUNTIME_SERVICE_CATALOG_H_
