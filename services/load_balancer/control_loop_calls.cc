// ControlLoop's calls from the API (SetDynamicLimits, SetEvsePriority) and
// what it shows (Snapshot, WaitForAllocation, ReactionTimes): checked on the
// caller's thread, carried out on the loop thread.
#include <algorithm>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/log.h"
#include "services/load_balancer/control_loop.h"
#include "services/load_balancer/proto_conversions.h"
#include "services/load_balancer/setpoint_values.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::load_balancer {
namespace {

constexpr log::Logger kLog("load_balancer");

// How long an RPC waits for the loop thread to take its call.
constexpr absl::Duration kCallTimeout = absl::Seconds(2);

}  // namespace

absl::StatusOr<std::vector<ActiveDynamicLimit>> ControlLoop::SetDynamicLimits(
    const std::vector<std::pair<v1::DynamicLimit, absl::Time>>& limits) {
  std::set<std::string> nodes = {site::kGridCircuitId};
  for (const site::CircuitConfig& circuit : config_.circuits) nodes.insert(circuit.id);
  std::vector<control::DynamicLimit> converted;
  for (size_t i = 0; i < limits.size(); ++i) {
    const v1::DynamicLimit& in = limits[i].first;
    const std::string where = absl::StrFormat("updates[%d]", i);
    const std::string node = in.circuit_id().empty() ? site::kGridCircuitId : in.circuit_id();
    if (in.source().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".limit.source: required (who sets the limit, e.g. \"utility\")"));
    }
    if (nodes.count(node) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".limit.circuit_id: no circuit \"", node, "\" on this site"));
    }
    control::DynamicLimit limit;
    limit.source = in.source();
    limit.node = node;
    for (int p = 0; p < allocation::kPhaseCount; ++p) {
      std::optional<double> a = GetPhase(in.current_limit_a(), p);
      if (a && !(*a >= 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".limit.current_limit_a: must be >= 0"));
      }
      limit.limit_a[p] = a;
    }
    if (in.has_power_limit_w()) {
      if (node != site::kGridCircuitId || !(in.power_limit_w() >= 0)) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".limit.power_limit_w: must be >= 0 and set on the grid connection only"));
      }
      limit.power_w = in.power_limit_w();
    }
    if (in.has_export_limit_w()) {
      if (node != site::kGridCircuitId || !(in.export_limit_w() >= 0)) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".limit.export_limit_w: must be >= 0 and set on the grid connection only"));
      }
      limit.export_limit_w = in.export_limit_w();
    }
    limit.expires_at = limits[i].second;  // wall clock: made monotonic on the loop thread
    converted.push_back(std::move(limit));
  }

  auto done = std::make_shared<std::promise<std::vector<ActiveDynamicLimit>>>();
  std::future<std::vector<ActiveDynamicLimit>> result = done->get_future();
  Input input;
  input.kind = Input::Kind::kCall;
  input.call = [this, converted, limits, done] {
    const Stamp stamp = Now();
    const absl::Time now = stamp.wall;
    for (size_t i = 0; i < converted.size(); ++i) {
      control::DynamicLimit limit = converted[i];
      limit.expires_at = MonoOf(limit.expires_at, stamp);
      Apply([&] { return policy_.OnDynamicLimit(limit, stamp.mono); });
      auto& active = working_.dynamic_limits;
      active.erase(std::remove_if(active.begin(), active.end(),
                                  [&](const ActiveDynamicLimit& l) {
                                    return l.limit.source() == converted[i].source &&
                                           (l.limit.circuit_id().empty()
                                                ? std::string(site::kGridCircuitId)
                                                : l.limit.circuit_id()) == converted[i].node;
                                  }),
                   active.end());
      if (converted[i].expires_at > now) {
        ActiveDynamicLimit entry;
        entry.limit = limits[i].first;
        entry.limit.set_circuit_id(converted[i].node);
        *entry.limit.mutable_set_at() = api::ToProto(now);
        entry.limit.clear_expires_at();
        if (converted[i].expires_at != absl::InfiniteFuture()) {
          *entry.limit.mutable_expires_at() = api::ToProto(converted[i].expires_at);
        }
        entry.expires_at = converted[i].expires_at;
        entry.expires_mono = limit.expires_at;
        active.push_back(std::move(entry));
      }
    }
    {
      // Visible to GetSiteStatus as soon as the call returns.
      absl::MutexLock lock(&mu_);
      snapshot_.dynamic_limits = working_.dynamic_limits;
    }
    done->set_value(working_.dynamic_limits);
  };
  input.call_trigger = v1::ALLOCATION_TRIGGER_DYNAMIC_LIMIT;
  Post(std::move(input));
  if (result.wait_for(absl::ToChronoNanoseconds(kCallTimeout)) != std::future_status::ready) {
    return absl::UnavailableError("the control loop did not take the call in time");
  }
  return result.get();
}

void ControlLoop::SetGridMode(control::GridModeDirective directive) {
  Input input;
  input.kind = Input::Kind::kCall;
  input.call = [this, directive] {
    const Stamp now = Now();
    kLog.Info("grid mode: %s%s", directive.grid_supply ? "grid supply" : "no grid supply",
              directive.forming_evse.empty()
                  ? ""
                  : absl::StrFormat(", %s forms the island (at most %.0f W)",
                                    directive.forming_evse, directive.forming_discharge_limit_w));
    Apply([&] { return policy_.OnGridMode(directive, now.mono); });
  };
  input.call_trigger = v1::ALLOCATION_TRIGGER_GRID_MODE;
  Post(std::move(input));
}

absl::Status ControlLoop::SetEvsePriority(const std::string& evse_id, int priority,
                                          absl::Time expires_at) {
  if (evse_routes_.count(evse_id) == 0) {
    return absl::NotFoundError(absl::StrCat("no EVSE \"", evse_id, "\" on this site"));
  }
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> result = done->get_future();
  Input input;
  input.kind = Input::Kind::kCall;
  input.call = [this, evse_id, priority, expires_at, done] {
    const Stamp now = Now();
    Apply([&] {
      return policy_.OnPriorityOverride(evse_id, priority, MonoOf(expires_at, now), now.mono);
    });
    LoopSnapshot::Evse& shown = working_.evses[evse_id];
    shown.priority_override = priority;
    shown.priority_expires_at = expires_at;
    shown.priority_expires_mono = MonoOf(expires_at, now);
    {
      absl::MutexLock lock(&mu_);
      snapshot_.evses[evse_id] = shown;
    }
    done->set_value();
  };
  input.call_trigger = v1::ALLOCATION_TRIGGER_PRIORITY_CHANGE;
  Post(std::move(input));
  if (result.wait_for(absl::ToChronoNanoseconds(kCallTimeout)) != std::future_status::ready) {
    return absl::UnavailableError("the control loop did not take the call in time");
  }
  return absl::OkStatus();
}

LoopSnapshot ControlLoop::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

std::optional<v1::Allocation> ControlLoop::WaitForAllocation(uint64_t after,
                                                             absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto newer = [this, after]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || allocation_sequence_ > after;
  };
  mu_.AwaitWithTimeout(absl::Condition(&newer), timeout);
  if (allocation_sequence_ <= after || !published_) return std::nullopt;
  return published_;
}

bool ControlLoop::stopped() const {
  absl::MutexLock lock(&mu_);
  return stop_;
}

std::vector<absl::Duration> ControlLoop::ReactionTimes() const {
  absl::MutexLock lock(&mu_);
  return {reactions_.begin(), reactions_.end()};
}

}  // namespace evgate::load_balancer
