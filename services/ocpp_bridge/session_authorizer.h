// IdTagAuthorizer over the session service's Authorize RPC: the local
// Central System decides on cards exactly as the rest of the site does (card
// list, groups, per-EVSE restrictions, cache, the upstream CSMS).
//
// evgate's decision -> OCPP 1.6 idTagInfo.status: ACCEPTED Accepted, BLOCKED
// Blocked, EXPIRED Expired, CONCURRENT_TX ConcurrentTx, INVALID and
// NOT_ALLOWED_HERE Invalid (1.6 has no status for "not at this EVSE"; the
// charger must not charge, which Invalid says). expires_at -> expiryDate,
// parent_id_tag -> parentIdTag.
//
// Each call waits at most `deadline`: the answer is awaited on a connection
// thread of the websocket server. Thread-safe.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_SESSION_AUTHORIZER_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_SESSION_AUTHORIZER_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "evgate/v1/session.grpc.pb.h"
#include "grpcpp/channel.h"
#include "services/ocpp_bridge/central_system.h"

namespace evgate::ocpp {

class SessionAuthorizer final : public IdTagAuthorizer {
 public:
  SessionAuthorizer(std::shared_ptr<grpc::Channel> channel, std::string where,
                    absl::Duration deadline = absl::Seconds(3));

  absl::StatusOr<nlohmann::json> Authorize(const std::string& id_tag,
                                           const std::string& evse_id) override;

 private:
  std::unique_ptr<v1::SessionService::Stub> stub_;
  const std::string where_;
  const absl::Duration deadline_;
};

// The idTagInfo for a session service decision.
nlohmann::json IdTagInfoFor(const v1::AuthorizeResponse& response);

// When no session service is reachable from the bridge at all (none in this
// process and no endpoint configured): every idTag is refused with an error,
// so chargers get InternalError rather than a silent Accepted.
class NoAuthorizer final : public IdTagAuthorizer {
 public:
  absl::StatusOr<nlohmann::json> Authorize(const std::string& id_tag,
                                           const std::string& evse_id) override;
};

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_SESSION_AUTHORIZER_H_
