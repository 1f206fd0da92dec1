// One WatchSessions stream's queue of session events: the SessionManager
// pushes every committed change into the queues of the streams whose EVSE
// filter it passes; the gRPC handler waits on it.
#ifndef EVGATE_SERVICES_SESSION_SESSION_WATCH_H_
#define EVGATE_SERVICES_SESSION_SESSION_WATCH_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "evgate/v1/session.pb.h"

namespace evgate::session {

// One WatchSessions stream's queue. Thread-safe.
class SessionWatch {
 public:
  enum class Next { kEvent, kTimeout, kEnded };

  // Waits up to `timeout` (real time) for the next event. kEnded: the
  // stream is over and `*end` says why (OK at shutdown, RESOURCE_EXHAUSTED
  // when the client fell behind).
  Next Wait(absl::Duration timeout, v1::WatchSessionsResponse* event, absl::Status* end);

 private:
  friend class SessionManager;
  explicit SessionWatch(std::set<std::string> evse_ids, size_t max_queued)
      : evse_ids_(std::move(evse_ids)), max_queued_(max_queued) {}
  // Queues an event for this stream (if it passes the EVSE filter).
  void Push(absl::Time at, v1::SessionEventType type, const v1::Session* session);
  void End(absl::Status status);

  const std::set<std::string> evse_ids_;  // empty = all
  const size_t max_queued_;
  absl::Mutex mu_;
  std::deque<v1::WatchSessionsResponse> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<absl::Status> ended_ ABSL_GUARDED_BY(mu_);
};

}  // namespace evgate::session

#endif  // EVGATE_SERVICES_SESSION_SESSION_WATCH_H_
