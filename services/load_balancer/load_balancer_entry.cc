#include "services/load_balancer/load_balancer_entry.h"

#include "runtime/clock.h"
#include "services/load_balancer/load_balancer_service.h"

namespace evgate::load_balancer {

ServiceEntry LoadBalancerEntry() {
  return {"load_balancer", "allocation engine and control loop (LoadBalancer API)",
          [](const site::SiteConfig& config,
             ProcessParts&) -> absl::StatusOr<std::unique_ptr<Service>> {
            return std::unique_ptr<Service>(
                std::make_unique<LoadBalancerService>(config, SystemClock::Get()));
          },
          ""};
}

}  // namespace evgate::load_balancer
