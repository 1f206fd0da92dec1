#include "services/session/session_watch.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "services/session/internal/manager_text.h"

namespace evgate::session {

using internal::ToProto;

SessionWatch::Next SessionWatch::Wait(absl::Duration timeout, v1::WatchSessionsResponse* event,
                                      absl::Status* end) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || ended_.has_value();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (ended_) {
    *end = *ended_;
    return Next::kEnded;
  }
  if (queue_.empty()) return Next::kTimeout;
  *event = std::move(queue_.front());
  queue_.pop_front();
  return Next::kEvent;
}

void SessionWatch::Push(absl::Time at, v1::SessionEventType type, const v1::Session* session) {
  if (session != nullptr && !evse_ids_.empty() && evse_ids_.count(session->evse_id()) == 0) {
    return;
  }
  absl::MutexLock lock(&mu_);
  if (ended_) return;
  if (queue_.size() >= max_queued_) {
    queue_.clear();
    ended_ = absl::ResourceExhaustedError(
        absl::StrCat("this WatchSessions stream fell more than ", max_queued_,
                     " events behind; reconnect to get a fresh snapshot"));
    return;
  }
  v1::WatchSessionsResponse& event = queue_.emplace_back();
  event.set_sequence(++sequence_);
  *event.mutable_at() = ToProto(at);
  event.set_event(type);
  if (session != nullptr) *event.mutable_session() = *session;
}

void SessionWatch::End(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (ended_) return;
  queue_.clear();
  ended_ = std::move(status);
}

}  // namespace evgate::session
