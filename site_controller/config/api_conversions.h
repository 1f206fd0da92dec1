// The site model's types (site_config.h) and absl time in the public API's
// vocabulary (proto/evgate/v1): one place for the conversions every bus
// owner, simulator and service needs, so a phase or a timestamp is mapped the
// same way everywhere.
//
// Thread-safety: pure functions; thread-safe.
#ifndef EVGATE_SITE_CONTROLLER_CONFIG_API_CONVERSIONS_H_
#define EVGATE_SITE_CONTROLLER_CONFIG_API_CONVERSIONS_H_

#include <optional>

#include "absl/time/time.h"
#include "evgate/v1/common.pb.h"
#include "evgate/v1/device.pb.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "site_controller/config/device_profiles.h"
#include "site_controller/config/site_config.h"

namespace evgate::api {

google::protobuf::Timestamp ToProto(absl::Time t);
google::protobuf::Duration ToProto(absl::Duration d);
absl::Time FromProto(const google::protobuf::Timestamp& t);
absl::Duration FromProto(const google::protobuf::Duration& d);

v1::Phase ToProto(site::Phase phase);
v1::DeviceKind ToProto(site::DeviceKind kind);

// The value of `phase` in `values`, or nullopt when absent.
std::optional<double> GetPhase(const v1::PhaseValues& values, site::Phase phase);
void SetPhase(v1::PhaseValues* values, site::Phase phase, double value);

}  // namespace evgate::api

#endif  // EVGATE_SITE_CONTROLLER_CONFIG_API_CONVERSIONS_H_
