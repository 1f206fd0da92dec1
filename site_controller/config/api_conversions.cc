#include "site_controller/config/api_conversions.h"

#include "google/protobuf/util/time_util.h"

namespace evgate::api {

using ::google::protobuf::util::TimeUtil;

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

google::protobuf::Duration ToProto(absl::Duration d) {
  return TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(t));
}

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Nanoseconds(TimeUtil::DurationToNanoseconds(d));
}

v1::Phase ToProto(site::Phase phase) {
  switch (phase) {
    case site::Phase::kL1:
      return v1::PHASE_L1;
    case site::Phase::kL2:
      return v1::PHASE_L2;
    case site::Phase::kL3:
      return v1::PHASE_L3;
  }
  return v1::PHASE_UNSPECIFIED;
}

v1::DeviceKind ToProto(site::DeviceKind kind) {
  switch (kind) {
    case site::DeviceKind::kMeter:
      return v1::DEVICE_KIND_METER;
    case site::DeviceKind::kAcWallbox:
      return v1::DEVICE_KIND_AC_WALLBOX;
    case site::DeviceKind::kDcCharger:
      return v1::DEVICE_KIND_DC_CHARGER;
    case site::DeviceKind::kOffgridBox:
      return v1::DEVICE_KIND_OFFGRID_BOX;
  }
  return v1::DEVICE_KIND_UNSPECIFIED;
}

std::optional<double> GetPhase(const v1::PhaseValues& values, site::Phase phase) {
  switch (phase) {
    case site::Phase::kL1:
      return values.has_l1() ? std::optional<double>(values.l1()) : std::nullopt;
    case site::Phase::kL2:
      return values.has_l2() ? std::optional<double>(values.l2()) : std::nullopt;
    case site::Phase::kL3:
      return values.has_l3() ? std::optional<double>(values.l3()) : std::nullopt;
  }
  return std::nullopt;
}

void SetPhase(v1::PhaseValues* values, site::Phase phase, double value) {
  switch (phase) {
    case site::Phase::kL1:
      values->set_l1(value);
      break;
    case site::Phase::kL2:
      values->set_l2(value);
      break;
    case site::Phase::kL3:
      values->set_l3(value);
      break;
  }
}

}  // namespace evgate::api
