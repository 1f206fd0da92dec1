#include "gateway/all_services.h"

#include "device_drivers/driver/device_drivers_entry.h"
#include "device_drivers/sim/simulator_entry.h"
#include "services/grid_controller/grid_controller_entry.h"
#include "services/load_balancer/load_balancer_entry.h"
#include "services/metrics_exporter/metrics_exporter_entry.h"
#include "services/ocpp_bridge/ocpp_bridge_entry.h"
#include "services/session/session_entry.h"

namespace evgate::gateway {

const ServiceCatalog& AllServices() {
  // The OCPP bridge before the drivers: in one process its chargers are
  // devices of their DeviceDriver service (ProcessParts::device_backends).
  static const auto* catalog = new ServiceCatalog{
      sim::SimulatorEntry(),           ocpp::OcppBridgeEntry(),
      devices::DeviceDriversEntry(),   load_balancer::LoadBalancerEntry(),
      session::SessionEntry(),         grid_controller::GridControllerEntry(),
      metrics::MetricsExporterEntry(),
  };
  return *catalog;
}

}  // namespace evgate::gateway
