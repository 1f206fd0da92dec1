#include "runtime/launcher.h"

#include <algorithm>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/args.h"
#include "runtime/auth.h"
#include "runtime/log.h"
#include "runtime/server_host.h"
#include "runtime/signals.h"
#include "site_controller/config/device_profiles.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate {
namespace {

constexpr log::Logger kLog("evgate");

bool Hosts(const std::vector<const ServiceEntry*>& services, const std::string& name) {
  for (const ServiceEntry* entry : services) {
    if (entry->name == name) return true;
  }
  return false;
}

// Says plainly which declared devices nothing in this process will drive, so
// nobody mistakes a quiet site for a healthy one.
void ReportDeviceCoverage(const site::SiteConfig& config, const ServiceCatalog& catalog,
                          const std::vector<const ServiceEntry*>& services) {
  if (!config.simulation.devices.empty()) {
    const ServiceEntry* simulator = FindService(catalog, "simulator");
    if (simulator != nullptr && !simulator->create) {
      kLog.Warning("site declares %d simulated devices (%s) but %s: no device reports live data",
                   config.simulation.devices.size(), absl::StrJoin(config.simulation.devices, ", "),
                   simulator->not_yet);
    } else if (!Hosts(services, "simulator")) {
      kLog.Info("simulated devices (%s) are expected from a separately running simulator",
                absl::StrJoin(config.simulation.devices, ", "));
    }
  }
  std::vector<std::string> undriven;
  for (const site::DeviceConfig& device : config.devices) undriven.push_back(device.id);
  const bool drivers = Hosts(services, "device_drivers") || Hosts(services, "ocpp_bridge");
  // In a split deployment the drivers run elsewhere and site.yaml says where.
  auto remote = config.services.endpoints.find("device_drivers");
  const std::string remote_drivers = remote != config.services.endpoints.end()
                                         ? remote->second.endpoint.value_or("")
                                         : std::string();
  if (!drivers && !undriven.empty()) {
    if (!remote_drivers.empty()) {
      kLog.Info("%d devices are driven by the device drivers at %s (services.device_drivers)",
                undriven.size(), remote_drivers);
    } else {
      const ServiceEntry* entry = FindService(catalog, "device_drivers");
      kLog.Warning("no bus owner runs in this process; %d devices are not driven here (%s)%s",
                   undriven.size(), absl::StrJoin(undriven, ", "),
                   entry == nullptr || entry->create ? "" : absl::StrCat(": ", entry->not_yet));
    }
  }
  if (Hosts(services, "load_balancer") && !drivers && remote_drivers.empty()) {
    kLog.Warning(
        "the load balancer has no grid meter data and stays in failsafe until a device driver "
        "reports it");
  }
}

// site.yaml's principals as the Authorizer takes them (names already
// validated).
std::vector<PrincipalSpec> Principals(const site::ServiceAuthConfig& auth) {
  std::vector<PrincipalSpec> specs;
  for (const site::PrincipalConfig& p : auth.principals) {
    PrincipalSpec& spec = specs.emplace_back();
    spec.name = p.name;
    spec.certificate = p.certificate.value_or("");
    spec.token_file = p.token_file.value_or("");
    for (const std::string& role : p.roles) {
      if (std::optional<Role> parsed = ParseRole(role)) spec.roles.push_back(*parsed);
    }
  }
  return specs;
}

}  // namespace

int Validate(const std::string& site_path, std::ostream& out) {
  site::SiteConfigLoadResult result = site::LoadSiteConfigFromFile(site_path);
  if (!result.ok()) {
    out << result.ErrorText();
    if (!result.ErrorText().empty() && result.ErrorText().back() != '\n') out << "\n";
    out << result.errors.size() << (result.errors.size() == 1 ? " error" : " errors") << " in "
        << site_path << "\n";
    return kExitInvalidConfig;
  }
  out << "OK\n";
  return kExitOk;
}

int Run(const RunOptions& options, const ServiceCatalog& catalog) {
  BlockShutdownSignals();
  site::SiteConfigLoadResult loaded = site::LoadSiteConfigFromFile(options.site_path);
  if (!loaded.ok()) {
    std::cerr << loaded.ErrorText();
    if (loaded.ErrorText().back() != '\n') std::cerr << "\n";
    kLog.Error("%s is invalid (%d errors); nothing started", options.site_path,
               loaded.errors.size());
    return kExitInvalidConfig;
  }
  const site::SiteConfig& config = loaded.config;

  auto selected = SelectServices(catalog, options.services);
  if (!selected.ok()) {
    kLog.Error("%s", selected.status().message());
    return kExitUsage;
  }
  if (options.services.empty() && config.simulation.devices.empty()) {
    // A real site: nothing to simulate, so no Simulator API either.
    selected->erase(std::remove_if(selected->begin(), selected->end(),
                                   [](const ServiceEntry* e) { return e->name == "simulator"; }),
                    selected->end());
  }
  if (selected->empty()) {
    kLog.Error("no service selected");
    return kExitUsage;
  }

  std::vector<std::unique_ptr<Service>> services;
  std::vector<Service*> hosted;
  std::vector<std::string> names;
  ProcessParts parts;
  for (const ServiceEntry* entry : *selected) parts.hosted.push_back(entry->name);
  for (const ServiceEntry* entry : *selected) {
    auto service = entry->create(config, parts);
    if (!service.ok()) {
      kLog.Error("%s: %s", entry->name, service.status().message());
      return kExitStartFailed;
    }
    hosted.push_back(service->get());
    names.push_back(entry->name);
    services.push_back(*std::move(service));
  }
  kLog.Info("site '%s' from %s: %d circuits, %d devices, %d stations; hosting %s", config.site.id,
            options.site_path, config.circuits.size(), config.devices.size(),
            config.stations.size(), absl::StrJoin(names, ", "));
  ReportDeviceCoverage(config, catalog, *selected);

  ServerOptions server;
  server.listen = options.listen.empty() ? config.services.api_listen : options.listen;
  server.insecure = config.insecure_demo;
  if (config.services.tls) {
    server.tls.cert_file = config.services.tls->cert_file;
    server.tls.key_file = config.services.tls->key_file;
    server.tls.client_ca_file = config.services.tls->client_ca_file.value_or("");
    server.insecure = false;
  }
  std::unique_ptr<Authorizer> authorizer;
  if (!server.insecure) {
    auto created = Authorizer::Create(Principals(config.services.auth));
    if (!created.ok()) {
      kLog.Error("services.auth: %s", created.status().message());
      return kExitStartFailed;
    }
    authorizer = *std::move(created);
    server.authorizer = authorizer.get();
  }
  auto host = ServerHost::Start(server, hosted);
  if (!host.ok()) {
    kLog.Error("%s", host.status().message());
    return host.status().code() == absl::StatusCode::kUnavailable ||
                   host.status().code() == absl::StatusCode::kInvalidArgument
               ? kExitCannotListen
               : kExitStartFailed;
  }
  kLog.Info("ready; stop with SIGTERM or Ctrl-C");

  const int signal = WaitForShutdownSignal();
  kLog.Info("signal %d: shutting down", signal);
  (*host)->Shutdown(absl::Seconds(5));
  kLog.Info("stopped");
  return kExitOk;
}

int RunFromArgs(const std::vector<std::string>& argv, const ServiceCatalog& catalog,
                const std::string& fixed_service) {
  auto args = ParseArgs(argv, {"help"});
  if (!args.ok()) {
    std::cerr << args.status().message() << "\n";
    return kExitUsage;
  }
  std::set<std::string> allowed = {"site", "listen", "log-level", "help"};
  if (fixed_service.empty()) allowed.insert("services");
  const std::string command = fixed_service.empty() ? "run" : fixed_service;
  if (auto s = CheckFlags(*args, allowed, command); !s.ok()) {
    std::cerr << s.message() << "\n";
    return kExitUsage;
  }
  if (!args->Has("site") || !args->words.empty()) {
    std::cerr << "usage: " << (fixed_service.empty() ? "evgate run" : fixed_service)
              << " --site FILE" << (fixed_service.empty() ? " [--services a,b,...]" : "")
              << " [--listen HOST:PORT] [--log-level debug|info|warning|error]\n";
    return kExitUsage;
  }
  if (args->Has("log-level")) {
    log::Level level;
    if (!log::ParseLevel(args->Get("log-level"), &level)) {
      std::cerr << "--log-level must be debug, info, warning or error\n";
      return kExitUsage;
    }
    log::SetMinLevel(level);
  }
  RunOptions options;
  options.site_path = args->Get("site");
  options.services = fixed_service.empty() ? args->Get("services") : fixed_service;
  options.listen = args->Get("listen");
  return Run(options, catalog);
}

}  // namespace evgate
