#include "services/session/session_entry.h"

#include "runtime/clock.h"
#include "services/session/session_service.h"

namespace evgate::session {

ServiceEntry SessionEntry() {
  return {"session", "authorization, sessions and charge records (SessionService API)",
          [](const site::SiteConfig& config,
             ProcessParts&) -> absl::StatusOr<std::unique_ptr<Service>> {
            auto service = SessionService::Create(config, SystemClock::Get());
            if (!service.ok()) return service.status();
            return std::unique_ptr<Service>(*std::move(service));
          },
          ""};
}

}  // namespace evgate::session
