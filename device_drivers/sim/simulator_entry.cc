#include "device_drivers/sim/simulator_entry.h"

#include "device_drivers/sim/site_simulator.h"
#include "runtime/clock.h"

namespace evgate::sim {

ServiceEntry SimulatorEntry() {
  return {"simulator", "simulated meters, wallboxes and boxes for demo sites (Simulator API)",
          [](const site::SiteConfig& config,
             ProcessParts&) -> absl::StatusOr<std::unique_ptr<Service>> {
            auto simulator = SiteSimulator::Create(config, SystemClock::Get());
            if (!simulator.ok()) return simulator.status();
            return std::unique_ptr<Service>(*std::move(simulator));
          },
          ""};
}

}  // namespace evgate::sim
