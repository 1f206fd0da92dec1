// SessionManager: the SessionService API (authorize, start, stop, watch) (the class:
// session_manager.h).
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/log.h"
#include "services/session/internal/manager_text.h"
#include "services/session/session_manager.h"
#include "services/session/stop_reasons.h"

namespace evgate::session {
namespace {

constexpr log::Logger kLog("session");

using google::protobuf::util::TimeUtil;
using internal::FromProto;
using internal::IsOpenAuthorized;
using internal::Name;
using internal::TimeText;
using internal::ToProto;

}  // namespace

absl::StatusOr<v1::AuthorizeResponse> SessionManager::Authorize(
    const v1::AuthorizeRequest& request) {
  absl::StatusOr<std::string> id_tag = NormalizeIdTag(request.id_tag(), "id_tag");
  if (!id_tag.ok()) return id_tag.status();
  absl::StatusOr<AuthorizationDecision> decision =
      authorizer_->Authorize(*id_tag, request.evse_id());
  if (!decision.ok()) return decision.status();
  v1::AuthorizeResponse response = decision->response;
  if (response.status() == v1::AUTHORIZATION_STATUS_ACCEPTED) {
    absl::MutexLock lock(&mu_);
    if (ConcurrentSession(*id_tag, response.parent_id_tag(), request.evse_id()) != nullptr) {
      response.set_status(v1::AUTHORIZATION_STATUS_CONCURRENT_TX);
    }
  }
  return response;
}

absl::StatusOr<v1::Session> SessionManager::StartSession(const v1::StartSessionRequest& request) {
  if (request.evse_id().empty()) {
    return absl::InvalidArgumentError("evse_id is empty; give the EVSE to start on");
  }
  absl::StatusOr<std::string> id_tag = NormalizeIdTag(request.id_tag(), "id_tag");
  if (!id_tag.ok()) return id_tag.status();
  v1::ChargeMode mode = v1::CHARGE_MODE_CHARGE;
  if (request.has_mode()) {
    if (!v1::ChargeMode_IsValid(request.mode())) {
      return absl::InvalidArgumentError(
          absl::StrCat("mode ", request.mode(), " is not a ChargeMode; use CHARGE or DISCHARGE"));
    }
    if (request.mode() != v1::CHARGE_MODE_UNSPECIFIED) mode = request.mode();
  }
  std::optional<double> energy_limit;
  if (request.has_energy_limit_wh()) {
    if (!(request.energy_limit_wh() > 0) || !std::isfinite(request.energy_limit_wh())) {
      return absl::InvalidArgumentError(absl::StrCat("energy_limit_wh ", request.energy_limit_wh(),
                                                     " must be a positive number of Wh"));
    }
    energy_limit = request.energy_limit_wh();
  }
  std::optional<google::protobuf::Duration> time_limit;
  if (request.has_time_limit()) {
    const google::protobuf::Duration& limit = request.time_limit();
    if (limit.seconds() < 0 || limit.nanos() < 0 || limit.nanos() > 999999999 ||
        limit.seconds() > TimeUtil::kDurationMaxSeconds ||
        TimeUtil::DurationToMilliseconds(limit) <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "time_limit ", TimeUtil::ToString(request.time_limit()), " must be positive"));
    }
    time_limit = request.time_limit();
  }

  // Checks the EVSE; called before and (after authorizing) again under the
  // lock, since the EVSE may have changed in between.
  auto check_evse = [&](Evse* evse) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (evse == nullptr) {
      std::vector<std::string> known;
      for (const auto& [id, e] : evses_) known.push_back(id);
      return absl::NotFoundError(absl::StrCat("unknown EVSE '", request.evse_id(),
                                              "'; site.yaml defines ", absl::StrJoin(known, ", ")));
    }
    if (mode == v1::CHARGE_MODE_DISCHARGE && !evse->bidirectional) {
      return absl::FailedPreconditionError(
          absl::StrCat("EVSE ", evse->evse_id,
                       " cannot discharge (not bidirectional in site.yaml); start with CHARGE"));
    }
    if (evse->open && evse->open->s().start_mode() != v1::START_MODE_DEVICE_LOCAL) {
      const v1::Session& s = evse->open->s();
      return absl::FailedPreconditionError(
          absl::StrCat("EVSE ", evse->evse_id, " already has session ", s.session_id(), " (",
                       Name(s.state()), s.id_tag().empty() ? "" : ", card " + s.id_tag(),
                       ") since ", TimeText(FromProto(s.start_time())), "; stop it first"));
    }
    const v1::Fault* fault = evse->BlockingFault();
    if (evse->state_known && !evse->stale &&
        (evse->status == v1::CONNECTOR_STATUS_FAULTED ||
         evse->status == v1::CONNECTOR_STATUS_UNAVAILABLE || fault != nullptr)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "EVSE ", evse->evse_id, " cannot charge now (connector ", Name(evse->status),
          fault == nullptr
              ? std::string()
              : absl::StrCat(", fault ", fault->vendor_code(), " ", fault->description()),
          "); try again when it is available"));
    }
    return absl::OkStatus();
  };
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = check_evse(FindEvse(request.evse_id())); !s.ok()) return s;
  }
  absl::StatusOr<AuthorizationDecision> decision =
      authorizer_->Authorize(*id_tag, request.evse_id());
  if (!decision.ok()) return decision.status();
  if (decision->response.status() != v1::AUTHORIZATION_STATUS_ACCEPTED) {
    return absl::PermissionDeniedError(absl::StrCat(
        EnumShortName(v1::AuthorizationStatus_descriptor(), decision->response.status()), ": ",
        decision->explanation));
  }

  absl::MutexLock lock(&mu_);
  Evse* evse = FindEvse(request.evse_id());
  if (absl::Status s = check_evse(evse); !s.ok()) return s;
  if (const OpenSession* other =
          ConcurrentSession(*id_tag, decision->response.parent_id_tag(), evse->evse_id)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "CONCURRENT_TX: card ", *id_tag, " already has session ",
        other->record.session.session_id(), " on EVSE ", other->record.session.evse_id(),
        "; one session per card (or card group) at a time"));
  }
  Pending pending;
  OpenSessionAt(*evse, *id_tag, decision->response, v1::START_MODE_REMOTE, mode, energy_limit,
                time_limit, pending);
  const std::string session_id = evse->open->s().session_id();
  if (absl::Status s = Flush(pending); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("session not started: ", s.message()));
  }
  return evse->open->s();
}

absl::StatusOr<v1::Session> SessionManager::StopSession(const v1::StopSessionRequest& request) {
  if (request.target_case() == v1::StopSessionRequest::TARGET_NOT_SET ||
      (request.target_case() == v1::StopSessionRequest::kSessionId &&
       request.session_id().empty()) ||
      (request.target_case() == v1::StopSessionRequest::kEvseId && request.evse_id().empty())) {
    return absl::InvalidArgumentError("give session_id or evse_id of the session to stop");
  }
  if (!v1::StopReason_IsValid(request.reason())) {
    return absl::InvalidArgumentError(
        absl::StrCat("reason ", request.reason(), " is not a StopReason"));
  }
  const v1::StopReason reason =
      request.reason() == v1::STOP_REASON_UNSPECIFIED ? v1::STOP_REASON_REMOTE : request.reason();

  absl::MutexLock lock(&mu_);
  Evse* evse = nullptr;
  if (request.target_case() == v1::StopSessionRequest::kEvseId) {
    evse = FindEvse(request.evse_id());
    if (evse == nullptr) {
      return absl::NotFoundError(absl::StrCat("unknown EVSE '", request.evse_id(), "'"));
    }
    if (!evse->open) {
      return absl::NotFoundError(
          absl::StrCat("EVSE ", request.evse_id(), " has no open session; nothing to stop"));
    }
  } else {
    for (auto& [id, e] : evses_) {
      if (e.open && e.open->s().session_id() == request.session_id()) evse = &e;
    }
    if (evse == nullptr) {
      absl::StatusOr<SessionRecord> stored = store_->GetSession(request.session_id());
      if (!stored.ok()) return stored.status();
      const v1::Session& s = stored->session;
      return absl::FailedPreconditionError(absl::StrCat(
          "session ", s.session_id(), " already ended at ",
          s.has_end_time() ? TimeText(FromProto(s.end_time())) : std::string("?"), " (",
          Name(s.state()), ", stop reason ", Name(s.stop_reason()), "); nothing to stop"));
    }
  }
  const std::string session_id = evse->open->s().session_id();
  Pending pending;
  RequestStop(*evse, reason, "", "", pending);
  if (pending.saves.empty()) return evse->open->s();  // already FINISHING
  const v1::Session after = pending.saves.at(session_id).session;
  if (absl::Status s = Flush(pending); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("session not stopped: ", s.message()));
  }
  return after;
}

absl::StatusOr<std::shared_ptr<SessionWatch>> SessionManager::Watch(
    const std::vector<std::string>& evse_ids) {
  absl::MutexLock lock(&mu_);
  for (const std::string& id : evse_ids) {
    if (FindEvse(id) == nullptr) {
      return absl::NotFoundError(absl::StrCat("unknown EVSE '", id, "' in evse_ids"));
    }
  }
  std::shared_ptr<SessionWatch> watch(new SessionWatch(
      std::set<std::string>(evse_ids.begin(), evse_ids.end()), options_.max_queued_watch_events));
  const absl::Time now = clock_.Now();
  for (const auto& [id, evse] : evses_) {
    if (evse.open) watch->Push(now, v1::SESSION_EVENT_TYPE_SNAPSHOT, &evse.open->record.session);
  }
  watch->Push(now, v1::SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE, nullptr);
  watches_.insert(watch);
  return watch;
}

void SessionManager::EndWatch(const std::shared_ptr<SessionWatch>& watch) {
  absl::MutexLock lock(&mu_);
  watches_.erase(watch);
}

void SessionManager::EndAllWatches(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  for (const std::shared_ptr<SessionWatch>& watch : watches_) watch->End(status);
  watches_.clear();
}

std::vector<v1::Session> SessionManager::OpenSessions() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Session> sessions;
  for (const auto& [id, evse] : evses_) {
    if (evse.open) sessions.push_back(evse.open->record.session);
  }
  return sessions;
}

}  // namespace evgate::session
