#include "services/ocpp_bridge/session_authorizer.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/client_context.h"
#include "services/ocpp_bridge/meter_values.h"

namespace evgate::ocpp {

using google::protobuf::util::TimeUtil;

SessionAuthorizer::SessionAuthorizer(std::shared_ptr<grpc::Channel> channel, std::string where,
                                     absl::Duration deadline)
    : stub_(v1::SessionService::NewStub(std::move(channel))),
      where_(std::move(where)),
      deadline_(deadline) {}

absl::StatusOr<nlohmann::json> SessionAuthorizer::Authorize(const std::string& id_tag,
                                                            const std::string& evse_id) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline_));
  v1::AuthorizeRequest request;
  request.set_id_tag(id_tag);
  request.set_evse_id(evse_id);
  v1::AuthorizeResponse response;
  grpc::Status status = stub_->Authorize(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat("session service at ", where_, ": ", status.error_message()));
  }
  return IdTagInfoFor(response);
}

nlohmann::json IdTagInfoFor(const v1::AuthorizeResponse& response) {
  const char* status = "Invalid";
  switch (response.status()) {
    case v1::AUTHORIZATION_STATUS_ACCEPTED:
      status = "Accepted";
      break;
    case v1::AUTHORIZATION_STATUS_BLOCKED:
      status = "Blocked";
      break;
    case v1::AUTHORIZATION_STATUS_EXPIRED:
      status = "Expired";
      break;
    case v1::AUTHORIZATION_STATUS_CONCURRENT_TX:
      status = "ConcurrentTx";
      break;
    default:
      break;
  }
  nlohmann::json info = {{"status", status}};
  if (response.has_expires_at()) {
    info["expiryDate"] = FormatOcppTime(
        absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(response.expires_at())));
  }
  if (!response.parent_id_tag().empty())
    info["parentIdTag"] = response.parent_id_tag().substr(0, 20);
  return info;
}

absl::StatusOr<nlohmann::json> NoAuthorizer::Authorize(const std::string& id_tag,
                                                       const std::string& /*evse_id*/) {
  return absl::FailedPreconditionError(
      absl::StrCat("no session service to decide on ", id_tag,
                   " (none in this process and services.endpoints.session.endpoint is not set)"));
}

}  // namespace evgate::ocpp
