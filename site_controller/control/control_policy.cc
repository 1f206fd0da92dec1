#include "site_controller/control/control_policy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace evgate::control {
namespace {

using allocation::AllocationInput;
using allocation::Evse;
using allocation::EvseType;
using allocation::kPhaseCount;

// Slack for comparing setpoints computed through different float paths.
constexpr double kEps = 1e-9;

double FloorToStep(double value, double step) { return std::floor(value / step + kEps) * step; }

// AC W (or DC W at the vehicle) per per-phase ampere of an EVSE.
double WattsPerAmp(const Evse& e, double volts) {
  const double w = static_cast<double>(e.phases.size()) * volts;
  return e.type == EvseType::kAc ? w : w * e.efficiency;
}

}  // namespace

absl::StatusOr<ControlPolicy> ControlPolicy::FromConfig(const site::SiteConfig& config) {
  absl::StatusOr<AllocationInput> structure = AllocationInputFromConfig(config);
  if (!structure.ok()) return structure.status();
  return Create(*structure, ControlParamsFromConfig(config.controller));
}

absl::StatusOr<ControlPolicy> ControlPolicy::Create(const AllocationInput& structure,
                                                    const ControlParams& params) {
  if (!(params.ramp_up_a_per_s > 0) || !(params.hysteresis_a >= 0) ||
      !(params.meter_timeout_s > 0)) {
    return absl::InvalidArgumentError(
        "controller: ramp_up_a_per_s and meter_timeout must be > 0, hysteresis_a >= 0");
  }
  if (!(params.setpoint_ttl_s >= 0) || !(params.device_watchdog_s >= 0)) {
    return absl::InvalidArgumentError("controller: setpoint TTL and device watchdog must be >= 0");
  }
  AllocationInput in = structure;
  std::vector<bool> metered;
  metered.push_back(structure.grid.meter_timeout_s || structure.grid.measured_a);
  for (const allocation::Circuit& c : structure.circuits)
    metered.push_back(c.measured_a.has_value());
  in.margin_a = params.margin_a;
  in.min_pause_s = params.min_pause_s;
  if (in.grid.meter_timeout_s || in.grid.measured_a)
    in.grid.meter_timeout_s = params.meter_timeout_s;
  in.grid.measured_a.reset();
  in.grid.meter_age_s = 0;
  for (allocation::Circuit& c : in.circuits) c.measured_a.reset();
  for (Evse& e : in.evses) {
    e.active = false;
    e.measured_a.reset();
    e.measured_w.reset();
    e.setpoint_a.reset();
    e.setpoint_w.reset();
    e.running_since_s.reset();
    e.paused_since_s.reset();
    e.plugged_at_s.reset();
    e.session_energy_wh = 0;
    e.reserved_a.reset();
  }
  absl::StatusOr<allocation::PreparedSite> site = allocation::PreparedSite::Create(in);
  if (!site.ok()) return site.status();
  return ControlPolicy(std::move(in), params, *std::move(site), metered);
}

ControlPolicy::ControlPolicy(AllocationInput structure, ControlParams params,
                             allocation::PreparedSite site, const std::vector<bool>& metered)
    : configured_(structure),
      input_(std::move(structure)),
      params_(params),
      site_(std::move(site)) {
  meters_.resize(input_.circuits.size() + 1);
  for (size_t n = 0; n < meters_.size(); ++n) meters_[n].metered = metered[n];
  std::map<std::string, int, std::less<>> node_index = {{std::string(allocation::kGridId), 0}};
  for (size_t i = 0; i < input_.circuits.size(); ++i) {
    node_index[input_.circuits[i].id] = static_cast<int>(i + 1);
  }
  parent_.assign(meters_.size(), -1);
  for (size_t i = 0; i < input_.circuits.size(); ++i) {
    parent_[i + 1] = node_index.at(input_.circuits[i].parent);  // validated by PreparedSite
  }
  for (const Evse& e : input_.evses) evse_node_.push_back(node_index.at(e.circuit));
  evse_rt_.resize(input_.evses.size());
  sent_.resize(input_.evses.size());
  for (size_t i = 0; i < input_.evses.size(); ++i) {
    evse_rt_[i].base_priority = input_.evses[i].priority;
    sent_[i].evse = input_.evses[i].id;
    sent_[i].type = input_.evses[i].type;
  }
}

absl::StatusOr<int> ControlPolicy::EvseIndex(const std::string& id) const {
  for (size_t i = 0; i < input_.evses.size(); ++i) {
    if (input_.evses[i].id == id) return static_cast<int>(i);
  }
  return absl::NotFoundError(absl::StrCat("unknown EVSE \"", id, "\""));
}

absl::StatusOr<int> ControlPolicy::NodeIndex(const std::string& id) const {
  if (id == allocation::kGridId) return 0;
  for (size_t i = 0; i < input_.circuits.size(); ++i) {
    if (input_.circuits[i].id == id) return static_cast<int>(i + 1);
  }
  return absl::NotFoundError(absl::StrCat("unknown circuit \"", id, "\""));
}

void ControlPolicy::Advance(absl::Time t) { now_ = std::max(now_, t); }

absl::StatusOr<Decision> ControlPolicy::OnMeterSample(const MeterSample& sample) {
  if (absl::Status status = ApplyMeterSample(sample); !status.ok()) return status;
  return Recompute();
}

absl::StatusOr<Decision> ControlPolicy::OnEvseUpdate(const EvseUpdate& update) {
  if (absl::Status status = ApplyEvseUpdate(update); !status.ok()) return status;
  return Recompute();
}

absl::StatusOr<Decision> ControlPolicy::OnSamples(const std::vector<MeterSample>& meters,
                                                  const std::vector<EvseUpdate>& evses,
                                                  absl::Time now) {
  for (const EvseUpdate& u : evses) {
    if (absl::Status status = ApplyEvseUpdate(u); !status.ok()) return status;
  }
  for (const MeterSample& m : meters) {
    if (absl::Status status = ApplyMeterSample(m); !status.ok()) return status;
  }
  Advance(now);
  return Recompute();
}

absl::Status ControlPolicy::ApplyMeterSample(const MeterSample& sample) {
  absl::StatusOr<int> node = NodeIndex(sample.node);
  if (!node.ok()) return node.status();
  Advance(sample.at);
  const allocation::PhaseLimits& phases =
      *node == 0 ? configured_.grid.limit_a : configured_.circuits[*node - 1].limit_a;
  std::string invalid = sample.invalid_reason;
  allocation::PhaseValues values = {0, 0, 0};
  for (int p = 0; p < kPhaseCount && invalid.empty(); ++p) {
    if (!phases[p]) continue;  // a phase the node lacks: not required
    if (!std::isfinite(sample.current_a[p])) {
      invalid = absl::StrCat(allocation::PhaseName(static_cast<allocation::Phase>(p)),
                             " is not a finite number");
    }
    values[p] = sample.current_a[p];
  }
  NodeMeter& m = meters_[*node];
  m.metered = true;  // a node that sends readings has a meter, and they age
  if (*node == 0 && !input_.grid.meter_timeout_s)
    input_.grid.meter_timeout_s = params_.meter_timeout_s;
  if (!invalid.empty()) {
    // At once, whatever its time: an unusable reading is no evidence of the present load.
    m.invalid_reason = std::move(invalid);
    m.invalid_at = std::max(m.invalid_at, sample.at);
    return absl::OkStatus();
  }
  // Older than the reading in use, or than the invalid one: changes nothing.
  if ((m.at && sample.at < *m.at) || (!m.invalid_reason.empty() && sample.at < m.invalid_at)) {
    return absl::OkStatus();
  }
  m.invalid_reason.clear();
  m.at = sample.at;
  m.current_a = values;
  return absl::OkStatus();
}

absl::Status ControlPolicy::ApplyEvseUpdate(const EvseUpdate& update) {
  absl::StatusOr<int> index = EvseIndex(update.evse);
  if (!index.ok()) return index.status();
  Advance(update.at);
  Evse& e = input_.evses[*index];
  if (update.active && !e.active) e.plugged_at_s = Seconds(now_);
  if (!update.active) {
    e.plugged_at_s.reset();
    e.session_energy_wh = 0;
  }
  e.active = update.active;
  if (update.measured_w && !std::isfinite(*update.measured_w)) {
    return absl::InvalidArgumentError(absl::StrCat("EVSE ", e.id, ": measured_w is not finite"));
  }
  if (update.last_accepted && !(std::isfinite(update.last_accepted->current_a) &&
                                std::isfinite(update.last_accepted->power_w))) {
    return absl::InvalidArgumentError(absl::StrCat("EVSE ", e.id, ": last_accepted not finite"));
  }
  if (update.measured_a) {
    if (e.type != EvseType::kAc || update.measured_a->size() != e.phases.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "EVSE ", e.id, ": measured_a needs one value per wired phase (", e.phases.size(), ")"));
    }
  }
  // Measurements are replaced, never kept: a reading from before (say, of the vehicle that
  // just left) would be subtracted from the meter as EV load that is no longer there.
  e.measured_a = update.measured_a;
  e.measured_w = update.measured_w;
  EvseRuntime& rt = evse_rt_[*index];
  rt.commandable = update.commandable;
  if (update.last_accepted) rt.last_accepted = update.last_accepted;
  if (e.measured_a) {
    double a = 0;
    for (double v : *e.measured_a) a = std::max(a, v);
    rt.last_measured_a = a;
  } else if (e.measured_w) {
    rt.last_measured_a = std::max(0.0, DcAmps(e, *e.measured_w));
  }
  if (update.soc_pct) e.soc_pct = update.soc_pct;
  if (update.session_energy_wh) e.session_energy_wh = *update.session_energy_wh;
  return absl::OkStatus();
}

absl::StatusOr<Decision> ControlPolicy::OnDynamicLimit(const DynamicLimit& limit, absl::Time now) {
  absl::StatusOr<int> node = NodeIndex(limit.node);
  if (!node.ok()) return node.status();
  for (const std::optional<double>& a : limit.limit_a) {
    if (a && !(*a >= 0)) return absl::InvalidArgumentError("dynamic limit_a must be >= 0");
  }
  if (limit.power_w && !(*limit.power_w >= 0)) {
    return absl::InvalidArgumentError("dynamic power_w must be >= 0");
  }
  if (limit.export_limit_w && !(*limit.export_limit_w >= 0)) {
    return absl::InvalidArgumentError("dynamic export_limit_w must be >= 0");
  }
  if (limit.export_limit_w && *node != 0) {
    return absl::InvalidArgumentError("an export limit applies to the grid connection only");
  }
  Advance(now);
  dynamic_[*node].by_source[limit.source] = limit;
  if (absl::Status status = RebuildStructure(); !status.ok()) return status;
  return Recompute();
}

absl::StatusOr<Decision> ControlPolicy::OnPriorityOverride(const std::string& evse, int priority,
                                                           absl::Time expires_at, absl::Time now) {
  absl::StatusOr<int> index = EvseIndex(evse);
  if (!index.ok()) return index.status();
  Advance(now);
  evse_rt_[*index].priority_override = priority;
  evse_rt_[*index].override_expires = expires_at;
  return Recompute();
}

absl::StatusOr<Decision> ControlPolicy::OnGridMode(const GridModeDirective& directive,
                                                   absl::Time now) {
  if (!directive.forming_evse.empty()) {
    absl::StatusOr<int> i = EvseIndex(directive.forming_evse);
    if (!i.ok()) return i.status();
    if (input_.evses[*i].type != EvseType::kDc) {
      return absl::InvalidArgumentError(
          absl::StrCat(directive.forming_evse, " is not a DC EVSE: it cannot form an island"));
    }
  }
  if (!(directive.forming_discharge_limit_w >= 0)) {
    return absl::InvalidArgumentError("the forming EVSE's discharge limit must be >= 0 W");
  }
  Advance(now);
  grid_mode_ = directive;
  return Recompute();
}

absl::StatusOr<Decision> ControlPolicy::OnTick(absl::Time now) {
  Advance(now);
  return Recompute();
}

absl::Status ControlPolicy::Expire() {
  for (EvseRuntime& rt : evse_rt_) {
    if (rt.priority_override && rt.override_expires <= now_) rt.priority_override.reset();
  }
  bool changed = false;
  for (auto node = dynamic_.begin(); node != dynamic_.end();) {
    auto& by_source = node->second.by_source;
    for (auto it = by_source.begin(); it != by_source.end();) {
      if (it->second.expires_at <= now_) {
        it = by_source.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    node = by_source.empty() ? dynamic_.erase(node) : std::next(node);
  }
  return changed ? RebuildStructure() : absl::OkStatus();
}

absl::Status ControlPolicy::RebuildStructure() {
  const double volts = configured_.grid.nominal_voltage_v;
  input_.grid.limit_a = configured_.grid.limit_a;
  input_.grid.contract_power_w = configured_.grid.contract_power_w;
  input_.grid.export_limit_w = configured_.grid.export_limit_w;
  for (size_t i = 0; i < input_.circuits.size(); ++i) {
    input_.circuits[i].limit_a = configured_.circuits[i].limit_a;
  }
  for (const auto& [node, limits] : dynamic_) {
    allocation::PhaseLimits& target =
        node == 0 ? input_.grid.limit_a : input_.circuits[node - 1].limit_a;
    int phases = 0;
    for (const auto& l : target) phases += l.has_value();
    for (const auto& [source, limit] : limits.by_source) {
      for (int p = 0; p < kPhaseCount; ++p) {
        if (!target[p]) continue;
        if (limit.limit_a[p]) target[p] = std::min(*target[p], *limit.limit_a[p]);
        if (limit.power_w && node != 0) {
          target[p] = std::min(*target[p], *limit.power_w / (phases * volts));
        }
      }
      if (limit.power_w && node == 0) {
        input_.grid.contract_power_w =
            std::min(input_.grid.contract_power_w.value_or(*limit.power_w), *limit.power_w);
      }
      if (limit.export_limit_w && node == 0) {
        input_.grid.export_limit_w = std::min(
            input_.grid.export_limit_w.value_or(*limit.export_limit_w), *limit.export_limit_w);
      }
    }
  }
  absl::StatusOr<allocation::PreparedSite> site = allocation::PreparedSite::Create(input_);
  if (!site.ok()) return site.status();
  site_ = *std::move(site);
  return absl::OkStatus();
}

double ControlPolicy::DcAmps(const Evse& e, double w) const {
  const double n_v = static_cast<double>(e.phases.size()) * input_.grid.nominal_voltage_v;
  return w >= 0 ? w / (n_v * e.efficiency) : w * e.efficiency / n_v;
}

std::string ControlPolicy::NodeFailure(int n) const {
  const NodeMeter& m = meters_[n];
  const std::string name =
      n == 0 ? "grid meter" : absl::StrCat("circuit ", input_.circuits[n - 1].id, " meter");
  if (!m.invalid_reason.empty()) return absl::StrCat(name, " reading invalid: ", m.invalid_reason);
  // A node is metered when configured so, or from its first reading on.
  if (!m.metered && !m.at) return "";
  if (!m.at) return absl::StrCat(name, " reading missing");
  const double age = absl::ToDoubleSeconds(now_ - *m.at);
  if (age > params_.meter_timeout_s) {
    return absl::StrFormat("%s reading is %g s old (timeout %g s)", name, age,
                           params_.meter_timeout_s);
  }
  return "";
}

double ControlPolicy::WorstCaseA(int i, bool commandable) const {
  const Evse& e = input_.evses[i];
  const EvseRuntime& rt = evse_rt_[i];
  const bool ac = e.type == EvseType::kAc;
  const double failsafe = ac ? e.failsafe_a : DcAmps(e, e.failsafe_w);
  std::optional<double> accepted;
  if (rt.last_accepted) {
    const AcceptedSetpoint& s = *rt.last_accepted;
    accepted = s.paused ? 0.0 : std::max(0.0, ac ? s.current_a : DcAmps(e, s.power_w));
  }
  if (commandable) {
    // Told its failsafe value now (0 when inactive); until it follows, it may still draw what it
    // was told before, what it accepted, or what it was last measured at.
    double w = std::max(e.active ? failsafe : 0.0, std::max(0.0, sent_[i].current_a));
    if (rt.last_measured_a) w = std::max(w, *rt.last_measured_a);
    if (accepted) w = std::max(w, *accepted);
    return w;
  }
  // Not commandable. Its driver refreshes an accepted setpoint for at most its TTL, and the
  // device falls back to its failsafe at most one watchdog period after the last refresh.
  if (rt.last_accepted && now_ >= rt.last_accepted->at + absl::Seconds(params_.setpoint_ttl_s +
                                                                       params_.device_watchdog_s)) {
    return failsafe;
  }
  if (!rt.last_measured_a && !accepted) return ac ? e.max_a : DcAmps(e, e.max_w);
  // Its watchdog may fire at any moment: the failsafe is a possible value too.
  return std::max({failsafe, rt.last_measured_a.value_or(0.0), accepted.value_or(0.0)});
}

double ControlPolicy::NextValue(int i, double target, double prev, bool failsafe) {
  const Evse& e = input_.evses[i];
  EvseRuntime& rt = evse_rt_[i];
  const bool ac = e.type == EvseType::kAc;
  const double unit = ac ? 1.0 : WattsPerAmp(e, input_.grid.nominal_voltage_v);
  // A failsafe value is applied at once, also when it is an increase: it was counted already.
  const bool fixed = failsafe || e.reserved_a.has_value();
  if (fixed || target <= prev + kEps) {
    rt.ramp_anchor = absl::InfinitePast();  // at or above target: nothing pending
    return target;
  }
  // An increase: ramp from when it became pending, send only steps ≥ the hysteresis.
  if (rt.ramp_anchor == absl::InfinitePast()) rt.ramp_anchor = now_;
  const double ramp = params_.ramp_up_a_per_s * unit * absl::ToDoubleSeconds(now_ - rt.ramp_anchor);
  double next = std::min(target, prev + ramp);
  if (ac) {
    if (prev <= 0) next = std::max(next, e.min_a);  // resume: nothing between 0 and min
    next = std::min(target, std::max(prev, FloorToStep(next, e.step_a)));
  } else if (prev <= 0 && next < e.min_w) {
    next = std::min(target, e.min_w);
  }
  const bool resume = prev <= 0 && next > 0;
  if (!resume && next - prev < params_.hysteresis_a * unit - kEps) next = prev;
  if (next > prev + kEps) rt.ramp_anchor = now_;  // the next step ramps from here
  return next;
}

void ControlPolicy::HoldIncreasesForVehicleLag(const allocation::Allocation& target,
                                               const std::vector<double>& prev,
                                               std::vector<double>& next) {
  if (target.failsafe || target.circuits.size() != meters_.size()) return;
  const double volts = input_.grid.nominal_voltage_v;
  auto amps = [&](size_t i, double value) {
    const Evse& e = input_.evses[i];
    return std::max(0.0, e.type == EvseType::kAc ? value : value / WattsPerAmp(e, volts));
  };
  // What lowered EVSEs may still draw above their new setpoints, per node and site phase.
  excess_buf_.assign(meters_.size(), {0, 0, 0});
  bool any = false;
  for (size_t i = 0; i < next.size(); ++i) {
    const EvseRuntime& rt = evse_rt_[i];
    if (!rt.releasing_a || input_.evses[i].reserved_a) continue;
    const double t = *rt.releasing_a - amps(i, next[i]);
    if (t <= kEps) continue;
    any = true;
    for (allocation::Phase p : input_.evses[i].phases) {
      for (int k = evse_node_[i]; k >= 0; k = parent_[k]) excess_buf_[k][static_cast<int>(p)] += t;
    }
  }
  if (!any) return;
  // The room on each node and phase: the allocation's headroom, plus what increases still
  // ramping towards their targets leave unused.
  room_buf_.assign(meters_.size(), {0, 0, 0});
  for (size_t k = 0; k < meters_.size(); ++k) {
    for (int p = 0; p < allocation::kPhaseCount; ++p) {
      const std::optional<double>& h = target.circuits[k].headroom_a[p];
      room_buf_[k][p] = h ? *h : std::numeric_limits<double>::infinity();
    }
  }
  for (size_t i = 0; i < next.size(); ++i) {
    if (!(next[i] > prev[i] + kEps)) continue;
    const allocation::EvseAllocation& a = target.evses[i];
    const double unused = std::max(0.0, (a.paused ? 0.0 : a.current_a) - amps(i, next[i]));
    for (allocation::Phase p : input_.evses[i].phases) {
      for (int k = evse_node_[i]; k >= 0; k = parent_[k])
        room_buf_[k][static_cast<int>(p)] += unused;
    }
  }
  for (size_t i = 0; i < next.size(); ++i) {
    if (!(next[i] > prev[i] + kEps) || input_.evses[i].reserved_a) continue;
    bool hold = false;
    for (allocation::Phase p : input_.evses[i].phases) {
      const int q = static_cast<int>(p);
      for (int k = evse_node_[i]; k >= 0 && !hold; k = parent_[k]) {
        hold = excess_buf_[k][q] > room_buf_[k][q] + kEps;
      }
    }
    if (hold) {
      next[i] = prev[i];
      evse_rt_[i].ramp_anchor = now_;  // it ramps from when it may go
    }
  }
}

absl::StatusOr<Decision> ControlPolicy::Recompute() {
  if (absl::Status status = Expire(); !status.ok()) return status;
  const double now_s = Seconds(now_);
  input_.now_s = now_s;
  // Meters: fresh valid readings are used; a node whose own reading is missing, stale or invalid
  // is in failsafe (the grid: the whole site, decided by the engine from the reading's age).
  std::vector<std::string> failure(meters_.size());
  for (size_t n = 0; n < meters_.size(); ++n) {
    NodeMeter& m = meters_[n];
    failure[n] = NodeFailure(static_cast<int>(n));
    if (failure[n].empty()) {
      m.failsafe_since.reset();
    } else if (!m.failsafe_since) {
      m.failsafe_since = now_;
    }
    const bool usable = m.at && m.invalid_reason.empty();
    if (n == 0) {
      input_.grid.measured_a =
          usable ? std::optional<allocation::PhaseValues>(m.current_a) : std::nullopt;
      input_.grid.meter_age_s = m.at ? std::max(0.0, absl::ToDoubleSeconds(now_ - *m.at)) : 0.0;
    } else {
      input_.circuits[n - 1].measured_a = usable && failure[n].empty()
                                              ? std::optional<allocation::PhaseValues>(m.current_a)
                                              : std::nullopt;
    }
  }
  // A circuit is in a failed subtree when it or an ancestor below the grid failed.
  std::vector<char> subtree_failed(meters_.size(), 0);
  for (size_t n = 1; n < meters_.size(); ++n) {
    for (int k = static_cast<int>(n); k > 0; k = parent_[k]) {
      if (!failure[k].empty()) {
        subtree_failed[n] = 1;
        break;
      }
    }
  }
  for (size_t i = 0; i < input_.evses.size(); ++i) {
    Evse& e = input_.evses[i];
    const EvseRuntime& rt = evse_rt_[i];
    e.priority = rt.priority_override.value_or(rt.base_priority);
    e.running_since_s = rt.running_since_s;
    e.paused_since_s = rt.paused_since_s;
    if (e.type == EvseType::kAc) {
      e.setpoint_a = sent_[i].current_a;
    } else {
      e.setpoint_w = sent_[i].power_w;
    }
    if (rt.releasing_a && now_ >= rt.releasing_until) evse_rt_[i].releasing_a.reset();
    const bool reserve = subtree_failed[evse_node_[i]] || !rt.commandable;
    e.reserved_a = reserve ? std::optional<double>(WorstCaseA(static_cast<int>(i), rt.commandable))
                           : std::nullopt;
  }
  if (absl::Status status = site_.Allocate(input_, spare_); !status.ok()) return status;
  allocation::Allocation* const out = &spare_;
  if (out->failsafe && !meters_[0].invalid_reason.empty()) out->failsafe_reason = failure[0];

  Decision d;
  d.at = now_;
  d.failsafe = out->failsafe;
  d.failsafe_reason = out->failsafe_reason;
  if (d.failsafe)
    d.failsafe_nodes.push_back({std::string(allocation::kGridId), d.failsafe_reason,
                                meters_[0].failsafe_since.value_or(now_)});
  for (size_t n = 1; n < meters_.size(); ++n) {
    if (!failure[n].empty()) {
      d.failsafe_nodes.push_back(
          {input_.circuits[n - 1].id, failure[n], *meters_[n].failsafe_since});
    }
  }
  const double volts = input_.grid.nominal_voltage_v;
  const size_t count = input_.evses.size();
  std::vector<double>& prev = prev_buf_;
  std::vector<double>& next = next_buf_;
  prev.assign(count, 0.0);
  next.assign(count, 0.0);
  for (size_t i = 0; i < count; ++i) {
    const Evse& e = input_.evses[i];
    const allocation::EvseAllocation& a = out->evses[i];
    const bool ac = e.type == EvseType::kAc;
    prev[i] = ac ? sent_[i].current_a : sent_[i].power_w;
    next[i] = NextValue(static_cast<int>(i),
                        ac ? (a.paused ? 0.0 : a.current_a) : (a.paused ? 0.0 : a.power_w), prev[i],
                        out->failsafe);
    if (!out->failsafe && !e.reserved_a && next[i] < prev[i] - kEps && prev[i] > 0) {
      // Lowered: for the vehicle's response time it may still draw what it was offered before.
      EvseRuntime& rt = evse_rt_[i];
      const double was_a = ac ? prev[i] : prev[i] / WattsPerAmp(e, volts);
      rt.releasing_a = rt.releasing_a ? std::max(*rt.releasing_a, was_a) : was_a;
      rt.releasing_until = now_ + absl::Seconds(params_.ev_response_s);
    }
  }
  HoldIncreasesForVehicleLag(*out, prev, next);
  const bool no_grid = !grid_mode_.grid_supply;
  if (no_grid) {
    // No grid to charge from: every EVSE paused at once; the island's former discharges.
    for (size_t i = 0; i < count; ++i) {
      const bool forming = input_.evses[i].id == grid_mode_.forming_evse;
      next[i] = forming ? -grid_mode_.forming_discharge_limit_w : 0.0;
    }
  }
  for (size_t i = 0; i < count; ++i) {
    const Evse& e = input_.evses[i];
    EvseRuntime& rt = evse_rt_[i];
    const Setpoint prev_sp = sent_[i];
    const bool ac = e.type == EvseType::kAc;
    const double was = prev[i];
    const double now_value = next[i];
    // Rotation bookkeeping for the engine's ranking.
    if (!e.active) {
      rt.running_since_s.reset();
      rt.paused_since_s.reset();
    } else if (now_value != 0 && was == 0) {
      rt.running_since_s = now_s;
      rt.paused_since_s.reset();
    } else if (now_value == 0 && was != 0) {
      rt.paused_since_s = now_s;
      rt.running_since_s.reset();
    }
    Setpoint sp;
    sp.evse = e.id;
    sp.type = e.type;
    if (ac) {
      sp.current_a = now_value;
      sp.power_w = now_value * WattsPerAmp(e, volts);
    } else {
      sp.power_w = now_value;
      const double n_v = static_cast<double>(e.phases.size()) * volts;
      sp.current_a =
          now_value >= 0 ? now_value / (n_v * e.efficiency) : now_value * e.efficiency / n_v;
    }
    sp.paused = now_value == 0;
    sp.commandable = rt.commandable;
    sp.failsafe = out->failsafe || subtree_failed[evse_node_[i]];
    sp.grid_mode = no_grid;
    sp.changed = !dispatched_once_ || now_value != was || sp.paused != prev_sp.paused;
    d.any_changed |= sp.changed;
    d.setpoints.push_back(sp);
  }
  d.grid_supply = !no_grid;
  d.grid_mode_reason = no_grid ? grid_mode_.reason : std::string();
  dispatched_once_ = true;
  sent_ = d.setpoints;
  failsafe_ = d.failsafe;
  d.target = std::move(spare_);
  return d;
}

}  // namespace evgate::control
