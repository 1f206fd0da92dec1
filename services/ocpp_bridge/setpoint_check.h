// Verify, don't trust: whether an OCPP charger follows the limit evgate set
// on one connector. Chargers are known to answer SetChargingProfile Accepted
// and then ignore the profile (SteVe #1192, evcc #31597); a load balancer that
// believes them trips breakers. Two independent checks, each only in the
// unsafe direction (a charger drawing less, or holding a lower limit, is
// fine):
//   - the meter: measured power above the highest limit in force at any time
//     within `grace` before the sample (the time a DC charger needs to ramp
//     down and report it; a load balancer that moves the limit every second
//     never resets it), by more than the tolerance, in two samples in a row
//     (one sample over is taken as a spike); no sample is judged until a
//     limit has been in force for `grace`. A discharge limit (negative) is a
//     cap on the discharge: discharging less is fine, drawing from the grid
//     above the tolerance is not;
//   - the read-back: the charger's composite schedule (GetCompositeSchedule)
//     has no limit, or one above evgate's by more than the tolerance.
// Either makes `problem()` say what is wrong; a meter sample within the limit
// clears the meter's verdict, a matching read-back the read-back's.
//
// Pure and deterministic (times are passed in). Not thread-safe; the OCPP
// device backend holds one per EVSE under its lock.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_SETPOINT_CHECK_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_SETPOINT_CHECK_H_

#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "absl/time/time.h"

namespace evgate::ocpp {

struct SetpointCheckOptions {
  // How long a charger has to get below a lowered limit.
  absl::Duration grace = absl::Seconds(20);
  // Allowed excess: the larger of the two.
  double tolerance_w = 1000;
  double tolerance_fraction = 0.05;
};

class SetpointCheck {
 public:
  explicit SetpointCheck(SetpointCheckOptions options = {}) : options_(options) {}

  // The limit the charger accepted (or its failsafe, once the live profile
  // ended) is in force from `at`.
  void LimitInForce(double limit_w, absl::Time at);
  // A meter sample (net power, W), received at `at` (evgate's clock, not
  // the charger's). True when problem() changed.
  bool Meter(double power_w, absl::Time at);
  // The composite schedule's limit now (nullopt: the charger has none in
  // force, or refused to say), read when `expected_w` was in force. True
  // when problem() changed.
  bool Readback(std::optional<double> schedule_limit_w, double expected_w);

  // What is wrong; nullopt while nothing shows that the charger disobeys.
  std::optional<std::string> problem() const;
  std::optional<double> limit_w() const;

 private:
  double Tolerance(double limit_w) const;
  // The highest limit in force within `grace` before `at`; nullopt while the
  // first limit has not been in force that long.
  std::optional<double> BindingLimit(absl::Time at) const;

  SetpointCheckOptions options_;
  // Each limit and since when it is in force, in time order; limits that
  // ended more than twice the grace ago are dropped.
  std::deque<std::pair<absl::Time, double>> limits_;
  std::optional<absl::Time> over_since_;
  std::optional<std::string> meter_problem_;
  std::optional<std::string> readback_problem_;
};

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_SETPOINT_CHECK_H_
