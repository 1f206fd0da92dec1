// What the session manager's parts share: times as the charge records keep
// them (whole microseconds, so an answer equals what is stored), times and
// enums in log and error text, and which sessions hold an authorization.
#ifndef EVGATE_SERVICES_SESSION_INTERNAL_MANAGER_TEXT_H_
#define EVGATE_SERVICES_SESSION_INTERNAL_MANAGER_TEXT_H_

#include <string>

#include "absl/time/time.h"
#include "evgate/v1/session.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"
#include "services/session/session_store.h"

namespace evgate::session::internal {

inline google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

inline absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(ts));
}

inline std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

inline std::string Name(const v1::SessionState state) {
  return session::EnumShortName(v1::SessionState_descriptor(), state);
}
inline std::string Name(const v1::StopReason reason) {
  return session::EnumShortName(v1::StopReason_descriptor(), reason);
}
inline std::string Name(const v1::ConnectorStatus status) {
  return session::EnumShortName(v1::ConnectorStatus_descriptor(), status);
}

inline bool IsOpenAuthorized(const v1::Session& s) {
  return s.start_mode() != v1::START_MODE_DEVICE_LOCAL &&
         (s.state() == v1::SESSION_STATE_PENDING_PLUG_IN || s.state() == v1::SESSION_STATE_ACTIVE);
}

}  // namespace evgate::session::internal

#endif  // EVGATE_SERVICES_SESSION_INTERNAL_MANAGER_TEXT_H_
