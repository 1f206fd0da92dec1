#include "site_controller/allocation/allocation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "site_controller/allocation/internal/numeric.h"

namespace evgate::allocation {

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kL1:
      return "L1";
    case Phase::kL2:
      return "L2";
    case Phase::kL3:
      return "L3";
  }
  return "L?";
}

const char* PauseReasonName(PauseReason reason) {
  switch (reason) {
    case PauseReason::kNone:
      return "";
    case PauseReason::kInactive:
      return "inactive";
    case PauseReason::kCapacity:
      return "capacity";
    case PauseReason::kSocLimit:
      return "soc_limit";
    case PauseReason::kNoDemand:
      return "no_demand";
    case PauseReason::kFailsafe:
      return "failsafe";
  }
  return "";
}

namespace internal {

// ---------------------------------------------------------------------------------------------
// The engine.
//
// Every limit is a linear constraint over the EVSEs' "levels": the current each one draws on
// each of its wired phases (per-phase AC amperes, also for DC). A constraint has a charging room
// (limit − margin − base load, in A for a circuit phase, in AC W for the contract, in DC W for a
// station) and each EVSE on it a coefficient (1 A per A, n×V W per A, n×V×η W per A).

enum class Kind { kNodePhase, kContract, kStation };

struct Constraint {
  Kind kind = Kind::kNodePhase;
  int node = -1;
  int phase = -1;
  int station = -1;
  double room = 0;               // charging capacity
  double used = 0;               // charging usage
  double deficit = 0;            // base-load overload left to relieve by discharging
  double discharge_room = kInf;  // discharge that keeps |current| / export within limits
  double discharged = 0;         // discharge applied (positive magnitude)
  // Water-filling state.
  double f = 0;  // usage of EVSEs not rising
  double s = 0;  // Σ coefficients of rising EVSEs
  bool saturated = false;
};

using PathEntry = std::pair<int, double>;  // (constraint, coefficient)

// A view of one EVSE's path in Engine::paths_.
struct PathRange {
  const PathEntry* first = nullptr;
  const PathEntry* last = nullptr;
  const PathEntry* begin() const { return first; }
  const PathEntry* end() const { return last; }
};

// What water-filling derives from one priority class's admitted set alone (MakeFillPlan).
struct FillPlan {
  std::vector<int> admitted;                   // items, in rank order
  std::vector<int> member_start, member_list;  // admitted items by constraint (CSR)
  std::vector<int> joins;                      // admitted items by minimum level
  std::vector<std::pair<double, int>> by_max;  // (maximum level, item) ascending
};

// One EVSE as the engine works on it. The structure's part is made once (Prepare); the
// snapshot's part is written at the start of every run (Engine::StartItem). Everything the hot
// loops need of the EVSE is here, so that they never reach into the caller's (large) Evse.
struct Item {
  // Structure.
  int input = 0;
  int node = 0;  // its circuit (0 = grid)
  bool ac = true;
  int n = 1;
  double volts_per_level = 0;  // AC W per level A: n × V
  double dc_w_per_level = 0;   // DC W per level A: n × V × η (DC only)
  double step = 0;             // step_a or step_w
  int64_t q_min = 0, q_max = 0;
  double min_level = 0, max_level = 0;
  PathRange path;
  // Snapshot.
  const Evse* evse = nullptr;
  int priority = 0;
  int tier = 1;
  bool reserved = false;       // Evse::reserved_a is set
  bool may_discharge = false;  // a bidirectional DC EVSE above its SOC lower limit
  bool chargeable = false;
  bool admitted = false;
  int64_t q = 0;
  double level = 0;
  double discharge_w = 0;
  PauseReason reason = PauseReason::kNone;
  int limit_constraint = -1;
  int wf_state = 0;  // 0 waiting, 1 rising, 2 done
  double wf_level = 0;
};

// A binary min-heap of constraint indices keyed by the water level at which each becomes full,
// with in-place key updates: constraints change their key on every event of their EVSEs, so a
// heap of stale entries would grow to (EVSEs × path length) entries.
class TightHeap {
 public:
  void Reset(size_t constraints) {
    pos_.assign(constraints, -1);
    heap_.clear();
  }
  bool empty() const { return heap_.empty(); }
  int top() const { return heap_.front().c; }
  double top_key() const { return heap_.front().key; }
  // Makes the key of `c` at most `key` (inserting it if absent).
  void Lower(int c, double key) {
    if (pos_[c] >= 0) {
      if (heap_[pos_[c]].key <= key) return;
      heap_[pos_[c]].key = key;
    } else {
      pos_[c] = static_cast<int>(heap_.size());
      heap_.push_back({key, c});
    }
    SiftUp(pos_[c]);
  }
  // Sets the key of `c`; kInf removes it.
  void Set(int c, double key) {
    if (key == kInf) {
      if (pos_[c] >= 0) Remove(c);
      return;
    }
    if (pos_[c] < 0) {
      pos_[c] = static_cast<int>(heap_.size());
      heap_.push_back({key, c});
      SiftUp(pos_[c]);
      return;
    }
    const double old = heap_[pos_[c]].key;
    heap_[pos_[c]].key = key;
    if (key < old) {
      SiftUp(pos_[c]);
    } else {
      SiftDown(pos_[c]);
    }
  }
  void Remove(int c) {
    const int i = pos_[c];
    const Node last = heap_.back();
    heap_.pop_back();
    pos_[c] = -1;
    if (last.c == c) return;
    heap_[i] = last;
    pos_[last.c] = i;
    SiftUp(i);
    SiftDown(pos_[last.c]);
  }

 private:
  // Keys are stored in the heap itself (no indirection on every comparison); ties are broken by
  // the constraint index, so the order of equal keys is a total one whatever the layout.
  struct Node {
    double key;
    int c;
  };
  static bool Less(const Node& a, const Node& b) {
    return a.key < b.key || (a.key == b.key && a.c < b.c);
  }
  // Moves the node at `i` up to its place (a hole moves instead of swapping at every level).
  void SiftUp(int i) {
    const Node node = heap_[i];
    while (i > 0) {
      const int parent = (i - 1) / 2;
      if (!Less(node, heap_[parent])) break;
      heap_[i] = heap_[parent];
      pos_[heap_[i].c] = i;
      i = parent;
    }
    heap_[i] = node;
    pos_[node.c] = i;
  }
  void SiftDown(int i) {
    const int n = static_cast<int>(heap_.size());
    const Node node = heap_[i];
    while (true) {
      int child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && Less(heap_[child + 1], heap_[child])) ++child;
      if (!Less(heap_[child], node)) break;
      heap_[i] = heap_[child];
      pos_[heap_[i].c] = i;
      i = child;
    }
    heap_[i] = node;
    pos_[node.c] = i;
  }

  std::vector<Node> heap_;
  std::vector<int> pos_;
};

// std::priority_queue<T, std::vector<T>, std::greater<T>> over a caller-owned vector, so that its
// memory is reused between runs. Same push_heap/pop_heap calls, hence the same order.
template <typename T>
class MinHeap {
 public:
  explicit MinHeap(std::vector<T>& storage) : c_(storage) { c_.clear(); }
  bool empty() const { return c_.empty(); }
  const T& top() const { return c_.front(); }
  template <typename... Args>
  void emplace(Args&&... args) {
    c_.emplace_back(std::forward<Args>(args)...);
    std::push_heap(c_.begin(), c_.end(), std::greater<T>());
  }
  void pop() {
    std::pop_heap(c_.begin(), c_.end(), std::greater<T>());
    c_.pop_back();
  }
  // pop() then emplace(value), in one pass down the heap. The layout may differ from the two
  // calls' but not the sequence of tops (entries are distinct: a strict total order).
  void ReplaceTop(const T& value) {
    const size_t n = c_.size();
    size_t i = 0;
    while (true) {
      size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && c_[child + 1] < c_[child]) ++child;
      if (!(c_[child] < value)) break;
      c_[i] = c_[child];
      i = child;
    }
    c_[i] = value;
  }
  // Fills an empty heap at once (O(n) instead of n pushes). The layout differs from n pushes but
  // not the sequence of tops, as long as entries are distinct (a strict total order).
  template <typename It>
  void Assign(It first, It last) {
    c_.assign(first, last);
    std::make_heap(c_.begin(), c_.end(), std::greater<T>());
  }

 private:
  std::vector<T>& c_;
};

// The engine is split in two: Prepare() turns the site's structure (tree, limits, EVSE wiring
// and ranges, stations) into flat index-based tables once; Run() allocates for one snapshot of
// the values that change (meters, activity, rotation state, SOC) and reuses every buffer, so a
// control loop re-running it on each meter sample does no string lookups and, once warm, almost
// no heap allocation. Run() must see an input with the structure given to Prepare().
class Engine {
 public:
  void Prepare(const AllocationInput& in) {
    in_ = &in;
    volts_ = in.grid.nominal_voltage_v;
    names_.clear();
    BuildNodes(in);
    BuildConstraintTemplate(in);
    BuildStaticItems(in);
    BuildPaths(in);
    plans_.clear();
    order_.clear();
    items_.clear();
  }

  // Writes into `out`, reusing its memory (its strings keep their capacity).
  void Run(const AllocationInput& in, Allocation& out) {
    in_ = &in;
    BuildItems();
    ComputeBaseLoads();
    BuildConstraints();
    Reserve();
    PeakShave();
    size_t begin = 0;
    for (size_t k = 0; begin < items_.size(); ++k) {
      size_t end = begin;
      while (end < items_.size() && items_[end].priority == items_[begin].priority) {
        ++end;
      }
      if (plans_.size() <= k) plans_.resize(k + 1);
      AllocateClass(begin, end, plans_[k]);
      begin = end;
    }
    Result(out);
  }

 private:
  // --- Structure (Prepare). ---
  void BuildNodes(const AllocationInput& in) {
    const size_t n = in.circuits.size() + 1;
    std::unordered_map<std::string_view, int> node_index;
    node_index.reserve(n);
    parent_.assign(n, -1);
    limits_.resize(n);
    limits_[0] = in.grid.limit_a;
    node_index.emplace(kGridId, 0);
    for (size_t i = 0; i < in.circuits.size(); ++i) {
      node_index.emplace(in.circuits[i].id, static_cast<int>(i + 1));
    }
    for (size_t i = 0; i < in.circuits.size(); ++i) {
      const Circuit& c = in.circuits[i];
      parent_[i + 1] = node_index.at(c.parent);
      limits_[i + 1] = c.limit_a;
    }
    evse_node_.resize(in.evses.size());
    for (size_t i = 0; i < in.evses.size(); ++i) {
      evse_node_[i] = node_index.at(in.evses[i].circuit);
    }
  }

  // Constraints without their per-snapshot rooms, in the order BuildConstraints() fills them.
  void BuildConstraintTemplate(const AllocationInput& in) {
    template_.clear();
    node_phase_.assign(limits_.size(), {-1, -1, -1});
    for (size_t node = 0; node < limits_.size(); ++node) {
      for (int p = 0; p < kPhaseCount; ++p) {
        if (!limits_[node][p]) continue;
        Constraint c;
        c.kind = Kind::kNodePhase;
        c.node = static_cast<int>(node);
        c.phase = p;
        node_phase_[node][p] = static_cast<int>(template_.size());
        template_.push_back(c);
      }
    }
    contract_ = -1;
    if (in.grid.contract_power_w || in.grid.export_limit_w) {
      Constraint c;
      c.kind = Kind::kContract;
      contract_ = static_cast<int>(template_.size());
      template_.push_back(c);
    }
    std::unordered_map<std::string_view, int> station_index;
    station_constraint_.clear();
    for (size_t i = 0; i < in.stations.size(); ++i) {
      Constraint c;
      c.kind = Kind::kStation;
      c.station = static_cast<int>(i);
      station_index.emplace(in.stations[i].id, static_cast<int>(template_.size()));
      station_constraint_.push_back(static_cast<int>(template_.size()));
      template_.push_back(c);
    }
    evse_station_.assign(in.evses.size(), -1);
    for (size_t i = 0; i < in.evses.size(); ++i) {
      if (!in.evses[i].station.empty()) evse_station_[i] = station_index.at(in.evses[i].station);
    }
  }

  // The parts of each EVSE's item that depend only on its structure, in input order.
  void BuildStaticItems(const AllocationInput& in) {
    static_items_.assign(in.evses.size(), Item{});
    for (size_t i = 0; i < in.evses.size(); ++i) {
      const Evse& e = in.evses[i];
      Item& it = static_items_[i];
      it.input = static_cast<int>(i);
      it.evse = &e;
      it.node = evse_node_[i];
      it.ac = e.type == EvseType::kAc;
      it.n = static_cast<int>(e.phases.size());
      it.volts_per_level = it.n * volts_;
      if (e.type == EvseType::kAc) {
        it.step = e.step_a;
        it.q_min = StepsCeil(e.min_a, e.step_a);
        it.q_max = StepsFloor(e.max_a, e.step_a);
      } else {
        it.dc_w_per_level = it.n * volts_ * e.efficiency;
        it.step = e.step_w;
        it.q_min = StepsCeil(e.min_w, e.step_w);
        it.q_max = StepsFloor(e.max_w, e.step_w);
      }
      it.min_level = Level(it, it.q_min);
      it.max_level = Level(it, it.q_max);
    }
  }

  // Each EVSE's constraints: its circuit and every ancestor on each wired phase, then the
  // contract power, then its station.
  void BuildPaths(const AllocationInput& in) {
    size_t total = 0;
    for (const Item& it : static_items_) {
      int depth = 0;
      for (int node = it.node; node >= 0; node = parent_[node]) ++depth;
      total += depth * it.n + 2;
    }
    paths_.clear();
    paths_.reserve(total);  // no reallocation below: the ranges point into it
    for (Item& it : static_items_) {
      const Evse& e = in.evses[it.input];
      const size_t first = paths_.size();
      for (int node = it.node; node >= 0; node = parent_[node]) {
        for (Phase ph : e.phases) paths_.emplace_back(node_phase_[node][static_cast<int>(ph)], 1.0);
      }
      if (contract_ >= 0) paths_.emplace_back(contract_, it.volts_per_level);
      if (evse_station_[it.input] >= 0) {
        paths_.emplace_back(evse_station_[it.input],
                            e.type == EvseType::kAc ? it.volts_per_level : it.dc_w_per_level);
      }
      it.path = PathRange{paths_.data() + first, paths_.data() + paths_.size()};
    }
  }

  // --- One snapshot (Run). ---

  // Base load per node and site phase. Sums run in rank order so that the result does not depend
  // on the input order of the EVSEs, not even in the last bit.
  void ComputeBaseLoads() {
    const size_t n = limits_.size();
    ev_.assign(n, PhaseValues{0, 0, 0});
    for (const Item& it : items_) {
      const PhaseValues& m = measured_[it.input];
      for (int node = it.node; node >= 0; node = parent_[node]) {
        for (int p = 0; p < kPhaseCount; ++p) ev_[node][p] += m[p];
      }
    }
    base_raw_.assign(n, PhaseValues{0, 0, 0});
    for (size_t node = 0; node < n; ++node) {
      const std::optional<PhaseValues>& measured =
          node == 0 ? in_->grid.measured_a : in_->circuits[node - 1].measured_a;
      if (!measured) continue;
      for (int p = 0; p < kPhaseCount; ++p) base_raw_[node][p] = (*measured)[p] - ev_[node][p];
    }
  }

  PhaseValues MeasuredEvCurrent(const Evse& e) const {
    PhaseValues m{0, 0, 0};
    const int n = static_cast<int>(e.phases.size());
    if (e.type == EvseType::kAc) {
      for (int k = 0; k < n; ++k) {
        double a = 0;
        if (e.measured_a) {
          a = (*e.measured_a)[k];
        } else if (e.active && e.setpoint_a && !e.reserved_a) {
          a = *e.setpoint_a;
        }
        m[static_cast<int>(e.phases[k])] += a;
      }
    } else {
      double w = 0;
      if (e.measured_w) {
        w = *e.measured_w;
      } else if (e.active && e.setpoint_w && !e.reserved_a) {
        w = *e.setpoint_w;
      }
      const double a = w >= 0 ? w / (n * volts_ * e.efficiency) : w * e.efficiency / (n * volts_);
      for (int k = 0; k < n; ++k) m[static_cast<int>(e.phases[k])] += a;
    }
    return m;
  }

  void BuildConstraints() {
    const AllocationInput& in = *in_;
    const double margin = in.margin_a;
    cons_.assign(template_.begin(), template_.end());
    for (Constraint& c : cons_) {
      switch (c.kind) {
        case Kind::kNodePhase: {
          const double base = base_raw_[c.node][c.phase];
          const double usable = *limits_[c.node][c.phase] - margin;
          c.room = usable - std::max(0.0, base);
          c.deficit = std::max(0.0, -c.room);
          c.discharge_room = std::max(0.0, usable + base);
          break;
        }
        case Kind::kContract: {
          double base_w = 0, raw_w = 0;
          for (int p = 0; p < kPhaseCount; ++p) {
            base_w += std::max(0.0, base_raw_[0][p]) * volts_;
            raw_w += base_raw_[0][p] * volts_;
          }
          if (in.grid.contract_power_w) {
            c.room = *in.grid.contract_power_w - base_w;
            c.deficit = std::max(0.0, -c.room);
          } else {
            // Export limit without a contract limit: unlimited room for charging.
            c.room = kInf;
          }
          if (in.grid.export_limit_w) {
            c.discharge_room = std::max(0.0, *in.grid.export_limit_w + raw_w);
          }
          break;
        }
        case Kind::kStation:
          c.room = in.stations[c.station].max_power_w;
          break;
      }
    }
  }

  void BuildItems() {
    const AllocationInput& in = *in_;
    const double min_run = in.min_run_s.value_or(in.min_pause_s);
    // Canonical rank order: makes the result independent of the input order. (Sorting compact
    // keys moves and touches less memory than sorting the items.)
    // Everything a run needs of the EVSEs is read here, in input order (the caller's array
    // front to back); later passes go in rank order and touch only the items.
    keys_.clear();
    snapshot_.resize(in.evses.size());
    measured_.resize(in.evses.size());
    for (size_t i = 0; i < in.evses.size(); ++i) {
      const Evse& e = in.evses[i];
      int tier = 1;
      if (e.running_since_s && in.now_s - *e.running_since_s < min_run) {
        tier = 0;
      } else if (e.paused_since_s && in.now_s - *e.paused_since_s < in.min_pause_s) {
        tier = 2;
      }
      keys_.push_back({e.priority, tier, e.session_energy_wh, e.plugged_at_s.value_or(kInf),
                       e.connector, &e.id, static_cast<int>(i)});
      Snapshot& snap = snapshot_[i];
      snap.reason = PauseReason::kNone;
      snap.chargeable = false;
      if (e.reserved_a) {
        snap.reason = e.active ? PauseReason::kFailsafe : PauseReason::kInactive;
      } else if (!e.active) {
        snap.reason = PauseReason::kInactive;
      } else if (e.type == EvseType::kDc && e.soc_pct && *e.soc_pct >= e.soc_max_pct) {
        snap.reason = PauseReason::kSocLimit;
      } else if (static_items_[i].q_max <= 0) {
        snap.reason = PauseReason::kNoDemand;
      } else {
        snap.chargeable = true;
      }
      snap.reserved = e.reserved_a.has_value();
      snap.may_discharge = e.active && !e.reserved_a && e.type == EvseType::kDc &&
                           e.bidirectional && e.soc_pct && *e.soc_pct > e.soc_min_pct &&
                           e.max_discharge_w > 0;
      measured_[i] = MeasuredEvCurrent(e);
    }
    auto less = [](const Key& a, const Key& b) {
      if (a.priority != b.priority) return a.priority > b.priority;
      if (a.tier != b.tier) return a.tier < b.tier;
      if (a.energy != b.energy) return a.energy < b.energy;
      if (a.plugged != b.plugged) return a.plugged < b.plugged;
      if (a.connector != b.connector) return a.connector < b.connector;
      return *a.id < *b.id;
    };
    // Ids are unique, so the order is a strict total one and its sorted permutation unique: when
    // the previous run's order is still strictly increasing (the common case of a control loop,
    // whose rankings rarely change between two samples), it is the sorted order and the sort is
    // skipped, with the same result; the items are then already in that order.
    bool sorted = order_.size() == keys_.size() && items_.size() == keys_.size();
    for (size_t k = 1; sorted && k < order_.size(); ++k) {
      sorted = less(keys_[order_[k - 1]], keys_[order_[k]]);
    }
    if (!sorted) {
      plans_.clear();  // they name items by rank
      sorted_keys_ = keys_;
      std::sort(sorted_keys_.begin(), sorted_keys_.end(), less);
      order_.resize(keys_.size());
      rank_.resize(keys_.size());
      items_.clear();
      for (size_t k = 0; k < keys_.size(); ++k) {
        order_[k] = sorted_keys_[k].index;
        rank_[order_[k]] = static_cast<int>(k);
        items_.push_back(static_items_[order_[k]]);
      }
    }
    for (Item& it : items_) StartItem(it, in.evses[it.input]);
  }

  // The snapshot's part of an item, whatever an earlier run left in it.
  void StartItem(Item& it, const Evse& e) const {
    const Snapshot& snap = snapshot_[it.input];
    const Key& key = keys_[it.input];
    it.evse = &e;
    it.priority = key.priority;
    it.tier = key.tier;
    it.reserved = snap.reserved;
    it.may_discharge = snap.may_discharge;
    it.chargeable = snap.chargeable;
    it.admitted = false;
    it.q = 0;
    it.level = 0;
    it.discharge_w = 0;
    it.reason = snap.reason;
    it.limit_constraint = -1;
    it.wf_state = 0;
    it.wf_level = 0;
  }

  // Reserved EVSEs (not controlled) as fixed loads, in rank order (deterministic sums).
  void Reserve() {
    for (const Item& it : items_) {
      if (!it.reserved) continue;
      const double level = *it.evse->reserved_a;
      for (const auto& [c, coef] : it.path) cons_[c].used += coef * level;
    }
  }

  double Level(const Item& it, int64_t q) const {
    if (it.ac) return static_cast<double>(q) * it.step;
    return static_cast<double>(q) * it.step / it.dc_w_per_level;
  }

  bool IsDischarge(int c) const { return cons_[c].kind != Kind::kStation; }

  // --- Peak shaving. ---
  void PeakShave() {
    bool overloaded = false;
    for (const Constraint& c : cons_) overloaded |= c.deficit > Tolerance(c.room);
    if (!overloaded) return;
    std::vector<int> dischargers;
    for (size_t i = 0; i < items_.size(); ++i) {
      if (items_[i].may_discharge) dischargers.push_back(static_cast<int>(i));
    }
    // The fullest batteries (relative to their lower limit) discharge first.
    std::stable_sort(dischargers.begin(), dischargers.end(), [&](int a, int b) {
      const Evse& x = *items_[a].evse;
      const Evse& y = *items_[b].evse;
      return *x.soc_pct - x.soc_min_pct > *y.soc_pct - y.soc_min_pct;
    });
    for (int i : dischargers) {
      Item& it = items_[i];
      const Evse& e = *it.evse;
      double need = 0;  // per-phase A
      int worst = -1;
      double cap = e.max_discharge_w * e.efficiency / it.volts_per_level;
      for (const auto& [c, coef] : it.path) {
        if (!IsDischarge(c)) continue;
        const Constraint& k = cons_[c];
        if (k.deficit > Tolerance(k.room) && k.deficit / coef > need) {
          need = k.deficit / coef;
          worst = c;
        }
        cap = std::min(cap, (k.discharge_room - k.discharged) / coef);
      }
      if (need <= 0 || cap <= 0) continue;
      const double w_per_level = it.volts_per_level / e.efficiency;
      const double p_need = std::ceil(need * w_per_level / e.step_w - kStepEps) * e.step_w;
      const double p_cap = std::floor(cap * w_per_level / e.step_w + kStepEps) * e.step_w;
      const double p = std::min(p_need, p_cap);
      if (p <= 0) continue;
      const double level = p / w_per_level;
      for (const auto& [c, coef] : it.path) {
        if (!IsDischarge(c)) continue;
        cons_[c].deficit -= level * coef;
        cons_[c].discharged += level * coef;
      }
      it.discharge_w = p;
      it.chargeable = false;
      it.reason = PauseReason::kNone;
      it.limit_constraint = worst;
    }
  }

  // --- Charging, one priority class. ---
  int Blocking(const Item& it, double delta_level) const {
    int worst = -1;
    double worst_over = 0;
    for (const auto& [c, coef] : it.path) {
      const Constraint& k = cons_[c];
      const double over = k.used + coef * delta_level - k.room - Tolerance(k.room);
      if (over > 0 && (worst < 0 || over / coef > worst_over)) {
        worst = c;
        worst_over = over / coef;
      }
    }
    return worst;
  }

  // Blocking(it, delta_level) >= 0, stopping at the first constraint that blocks. A path starts
  // at the EVSE's own circuit, which is the one that blocks most often.
  bool Blocked(const Item& it, double delta_level) const {
    for (const auto& [c, coef] : it.path) {
      const Constraint& k = cons_[c];
      if (k.used + coef * delta_level - k.room - Tolerance(k.room) > 0) return true;
    }
    return false;
  }

  void Apply(Item& it, int64_t q) {
    const double level = Level(it, q);
    for (const auto& [c, coef] : it.path) cons_[c].used += coef * (level - it.level);
    it.q = q;
    it.level = level;
  }

  void AllocateClass(size_t begin, size_t end, FillPlan& plan) {
    std::vector<int>& admitted = admitted_;
    admitted.clear();
    for (size_t i = begin; i < end; ++i) {
      Item& it = items_[i];
      if (!it.chargeable) continue;
      const int blocking = Blocking(it, it.min_level);
      if (blocking >= 0) {
        it.reason = PauseReason::kCapacity;
        it.limit_constraint = blocking;
        continue;
      }
      it.admitted = true;
      Apply(it, it.q_min);
      admitted.push_back(static_cast<int>(i));
    }
    if (admitted.empty()) return;
    if (plan.admitted != admitted) MakeFillPlan(admitted, plan);
    WaterFill(admitted, plan);
    for (int i : admitted) {
      Item& it = items_[i];
      const double scaled = it.ac ? it.wf_level : it.wf_level * it.dc_w_per_level;
      const int64_t q = std::clamp(StepsFloor(scaled, it.step), it.q_min, it.q_max);
      Apply(it, q);
    }
    TopUp(admitted);
  }

  // What WaterFill derives from the admitted set alone: the members of each constraint, the
  // order of joins (minimum levels) and of maxima. A control loop's classes admit the same EVSEs
  // from one sample to the next, so it is kept per class and remade only when that set changes.
  void MakeFillPlan(const std::vector<int>& admitted, FillPlan& plan) const {
    plan.admitted = admitted;
    // Members of each constraint among the admitted EVSEs, as one flat array (CSR).
    std::vector<int>& start = plan.member_start;
    start.assign(cons_.size() + 1, 0);
    for (int i : admitted) {
      for (const auto& [c, coef] : items_[i].path) ++start[c + 1];
    }
    for (size_t c = 0; c < cons_.size(); ++c) start[c + 1] += start[c];
    plan.member_list.resize(start.back());
    std::vector<int> fill(start.begin(), start.end() - 1);
    for (int i : admitted) {
      for (const auto& [c, coef] : items_[i].path) plan.member_list[fill[c]++] = i;
    }
    plan.joins.assign(admitted.begin(), admitted.end());
    std::stable_sort(plan.joins.begin(), plan.joins.end(),
                     [&](int a, int b) { return items_[a].min_level < items_[b].min_level; });
    // Maxima in (level, index) order. The heap of joined EVSEs this replaces gave the same events:
    // an entry not joined yet has its maximum above the next join (its minimum), so it is never
    // taken before it joins; settled and blocked entries are skipped as the heap skipped them.
    plan.by_max.clear();
    for (int i : admitted) {
      if (items_[i].max_level > items_[i].min_level) {
        plan.by_max.emplace_back(items_[i].max_level, i);
      }
    }
    std::sort(plan.by_max.begin(), plan.by_max.end());
  }

  // Max-min fair progressive filling: a common water level t rises; an EVSE follows it from its
  // minimum until its maximum, or until a constraint on its path is full (it then stays there).
  // Event driven: O((EVSEs × path length) log) instead of simulating small increments.
  void WaterFill(const std::vector<int>& admitted, const FillPlan& plan) {
    for (int i : admitted) {
      items_[i].wf_state = 0;
      items_[i].wf_level = items_[i].min_level;
    }
    for (Constraint& k : cons_) {
      k.f = k.used;
      k.s = 0;
      k.saturated = false;
    }
    const std::vector<int>& member_start = plan.member_start;
    const std::vector<int>& member_list = plan.member_list;
    const std::vector<int>& joins = plan.joins;
    const std::vector<std::pair<double, int>>& by_max = plan.by_max;
    size_t next_max = 0;
    tight_.Reset(cons_.size());
    double t = 0;
    // Heap keys may be earlier than a constraint's true fill level (never later): an early key
    // is corrected when it reaches the top. So a join, which makes its constraints fill
    // sooner, only ever lowers keys.
    auto schedule = [&](int c) {
      const Constraint& k = cons_[c];
      if (!k.saturated && k.s > 1e-12) tight_.Lower(c, std::max(t, (k.room - k.f) / k.s));
    };
    auto settle = [&](int i, double level) {
      Item& it = items_[i];
      it.wf_state = 2;
      it.wf_level = level;
      for (const auto& [c, coef] : it.path) {
        // The constraint now fills later; its heap key is left early and corrected when it
        // reaches the top (see below), which saves most heap updates.
        cons_[c].f += coef * level;
        cons_[c].s -= coef;
      }
    };
    // Joins at one level in a row (most AC minimums are equal) cannot be separated by another
    // event unless one of them makes a constraint full at exactly that level: all other keys are
    // above it, or the join would not have come first. So their key updates are collected and
    // applied at once when that happens or the run of joins ends, before any other event is
    // looked at. A join only lowers keys, so the last key computed for a constraint is what the
    // updates one by one would leave: the heap holds the same keys and pops in the same order.
    dirty_flag_.assign(cons_.size(), 0);
    dirty_.clear();
    double pending_min = kInf;
    auto flush = [&] {
      for (int c : dirty_) {
        dirty_flag_[c] = 0;
        schedule(c);
      }
      dirty_.clear();
      pending_min = kInf;
    };
    size_t next_join = 0;
    while (true) {
      if (!dirty_.empty() && !(pending_min > t && next_join < joins.size() &&
                               items_[joins[next_join]].min_level <= t)) {
        flush();
      }
      while (next_max < by_max.size() && items_[by_max[next_max].second].wf_state == 2) {
        ++next_max;
      }
      const double tt = tight_.empty() ? kInf : tight_.top_key();
      const double tm = next_max < by_max.size() ? by_max[next_max].first : kInf;
      const double tj = next_join < joins.size() ? items_[joins[next_join]].min_level : kInf;
      if (tt == kInf && tm == kInf && tj == kInf) break;
      if (tt <= tm && tt <= tj) {
        const int c = tight_.top();
        const Constraint& k = cons_[c];
        if (k.s <= 1e-12) {
          tight_.Remove(c);
          continue;
        }
        const double actual = std::max(t, (k.room - k.f) / k.s);
        if (actual > tt) {
          tight_.Set(c, actual);
          continue;
        }
        tight_.Remove(c);
        t = std::max(t, tt);
        cons_[c].saturated = true;
        for (int m = member_start[c]; m < member_start[c + 1]; ++m) {
          if (items_[member_list[m]].wf_state == 1) settle(member_list[m], t);
        }
      } else if (tm <= tj) {
        const int i = by_max[next_max++].second;
        t = std::max(t, tm);
        settle(i, items_[i].max_level);
      } else {
        const int i = joins[next_join++];
        t = std::max(t, tj);
        Item& it = items_[i];
        bool blocked = it.max_level <= it.min_level;
        for (const auto& [c, coef] : it.path) blocked |= cons_[c].saturated;
        if (blocked) {
          it.wf_state = 2;
          continue;
        }
        it.wf_state = 1;
        for (const auto& [c, coef] : it.path) {
          Constraint& k = cons_[c];
          k.f -= coef * it.min_level;
          k.s += coef;
          if (!k.saturated && k.s > 1e-12) {  // as schedule(c), deferred
            pending_min = std::min(pending_min, std::max(t, (k.room - k.f) / k.s));
            if (!dirty_flag_[c]) {
              dirty_flag_[c] = 1;
              dirty_.push_back(c);
            }
          }
        }
      }
    }
  }

  // After rounding down, hand out the remaining steps, lowest level first, until no EVSE can
  // take one more step on every constraint of its path (Pareto efficiency).
  void TopUp(const std::vector<int>& admitted) {
    using Entry = std::pair<double, int>;
    // Entries are distinct: each EVSE is in the queue at most once.
    topup_.clear();
    // An AC EVSE whose next step is blocked now stays blocked (usage only grows here), and its
    // pop would do nothing: it is left out of the queue, which changes no other pop.
    for (int i : admitted) {
      const Item& it = items_[i];
      if (it.q >= it.q_max) continue;
      if (it.ac && Blocked(it, Level(it, it.q + 1) - it.level)) {
        continue;
      }
      topup_.emplace_back(it.level, i);
    }
    MinHeap<Entry> queue(heap_);
    queue.Assign(topup_.begin(), topup_.end());
    while (!queue.empty()) {
      const int i = queue.top().second;
      Item& it = items_[i];
      int64_t dq = 1;
      if (!it.ac) {
        // DC steps are tiny (1 W); hand them out in chunks of about 0.1 A per phase.
        double feasible = kInf;
        for (const auto& [c, coef] : it.path) {
          feasible = std::min(feasible, (cons_[c].room - cons_[c].used) / coef);
        }
        const int64_t chunk = std::max<int64_t>(
            1, static_cast<int64_t>(std::ceil(0.1 * it.dc_w_per_level / it.step)));
        dq = std::min(
            {chunk, it.q_max - it.q,
             feasible <= 0 ? int64_t{0} : StepsFloor(feasible * it.dc_w_per_level, it.step)});
      }
      if (dq > 1 && Blocked(it, Level(it, it.q + dq) - it.level)) dq = 1;
      if (dq <= 0 || Blocked(it, Level(it, it.q + dq) - it.level)) {
        queue.pop();
        continue;
      }
      Apply(it, it.q + dq);
      if (it.q < it.q_max) {
        queue.ReplaceTop({it.level, i});
      } else {
        queue.pop();
      }
    }
  }

  // --- Result. ---
  // Names are built once per constraint: many EVSEs report the same limit.
  const std::string& ConstraintName(int c) const {
    static const std::string kNone;
    if (c < 0) return kNone;
    if (names_.empty()) names_.resize(cons_.size());
    if (names_[c].empty()) names_[c] = BuildConstraintName(c);
    return names_[c];
  }

  // Names the binding constraint `c` (-1: none) on `a`, in words and structured.
  void SetLimit(EvseAllocation& a, int c) const {
    ClearLimit(a);
    if (c < 0) return;
    a.limited_by = ConstraintName(c);
    const Constraint& k = cons_[c];
    switch (k.kind) {
      case Kind::kNodePhase:
        a.limit.kind = Limit::Kind::kCircuitPhase;
        a.limit.circuit = k.node == 0 ? kGridId : std::string_view(in_->circuits[k.node - 1].id);
        a.limit.phase = static_cast<Phase>(k.phase);
        break;
      case Kind::kContract:
        a.limit.kind = Limit::Kind::kContractPower;
        a.limit.circuit = kGridId;
        break;
      case Kind::kStation:
        a.limit.kind = Limit::Kind::kStationPower;
        a.limit.station = in_->stations[k.station].id;
        break;
    }
  }

  // No limit, keeping the strings' memory.
  static void ClearLimit(EvseAllocation& a) {
    a.limited_by.clear();
    a.limit.kind = Limit::Kind::kNone;
    a.limit.circuit.clear();
    a.limit.phase.reset();
    a.limit.station.clear();
  }

  std::string BuildConstraintName(int c) const {
    const Constraint& k = cons_[c];
    switch (k.kind) {
      case Kind::kNodePhase:
        return absl::StrCat(
            k.node == 0 ? "grid" : absl::StrCat("circuit ", in_->circuits[k.node - 1].id), " ",
            PhaseName(static_cast<Phase>(k.phase)));
      case Kind::kContract:
        return "grid contract power";
      case Kind::kStation:
        return absl::StrCat("station ", in_->stations[k.station].id);
    }
    return "";
  }

  int Tightest(const Item& it) const {
    int best = -1;
    double best_room = kInf;
    for (const auto& [c, coef] : it.path) {
      const double r = (cons_[c].room - cons_[c].used) / coef;
      if (r < best_room) {
        best_room = r;
        best = c;
      }
    }
    return best;
  }

  // Every field of every entry is written: `out` may hold an earlier result.
  void Result(Allocation& out) const {
    out.failsafe = false;
    out.failsafe_reason.clear();
    out.evses.resize(items_.size());
    // In input order: the caller's EVSEs and the result front to back.
    for (size_t input = 0; input < items_.size(); ++input) {
      const Item& it = items_[rank_[input]];
      const Evse& e = *it.evse;
      EvseAllocation& a = out.evses[it.input];
      a.id = e.id;
      a.type = e.type;
      a.current_a = 0;
      a.power_w = 0;
      a.paused = true;
      ClearLimit(a);
      a.pause_reason = it.reason;
      a.controlled = true;
      if (e.reserved_a) {
        SetReserved(a, e);
        continue;
      }
      if (it.discharge_w > 0) {
        a.power_w = -it.discharge_w;
        a.current_a = -it.discharge_w * e.efficiency / it.volts_per_level;
        a.paused = false;
        SetLimit(a, it.limit_constraint);
        continue;
      }
      if (it.admitted && it.q > 0) {
        a.paused = false;
        a.pause_reason = PauseReason::kNone;
        if (e.type == EvseType::kAc) {
          a.current_a = FloorScaled(static_cast<double>(it.q) * it.step, 1000);
          a.power_w = a.current_a * it.volts_per_level;
        } else {
          a.power_w = FloorScaled(static_cast<double>(it.q) * it.step, 1000);
          a.current_a = it.level;
        }
        if (it.q < it.q_max) SetLimit(a, Tightest(it));
      } else {
        a.paused = true;
        if (it.admitted) {  // DC with min_w 0 that got nothing
          a.pause_reason = PauseReason::kCapacity;
          SetLimit(a, Tightest(it));
        } else if (it.reason == PauseReason::kCapacity) {
          SetLimit(a, it.limit_constraint);
        }
      }
    }
    out.circuits.resize(limits_.size());
    for (size_t node = 0; node < limits_.size(); ++node) {
      CircuitLoad& load = out.circuits[node];
      load.id = node == 0 ? kGridId : std::string_view(in_->circuits[node - 1].id);
      for (int p = 0; p < kPhaseCount; ++p) {
        load.load_a[p].reset();
        load.headroom_a[p].reset();
        const int c = node_phase_[node][p];
        if (c < 0) continue;
        const double value =
            std::max(0.0, base_raw_[node][p]) + cons_[c].used - cons_[c].discharged;
        load.load_a[p] = CeilScaled(value, 100);
        load.headroom_a[p] = FloorScaled(*limits_[node][p] - in_->margin_a - value, 100);
      }
    }
  }

  // A reserved EVSE's output: its failsafe value (0 when inactive), not controlled.
  void SetReserved(EvseAllocation& a, const Evse& e) const {
    a.controlled = false;
    const double volts = e.phases.size() * volts_;
    if (e.type == EvseType::kAc) {
      a.current_a = e.active ? e.failsafe_a : 0.0;
      a.power_w = a.current_a * volts;
      a.paused = a.current_a <= 0;
    } else {
      a.power_w = e.active ? e.failsafe_w : 0.0;
      a.current_a = a.power_w / (volts * e.efficiency);
      a.paused = a.power_w <= 0;
    }
    ClearLimit(a);
    if (e.active) {
      a.limited_by = "failsafe";
      a.limit.kind = Limit::Kind::kFailsafe;
    }
    a.pause_reason = !e.active  ? PauseReason::kInactive
                     : a.paused ? PauseReason::kFailsafe
                                : PauseReason::kNone;
  }

  struct Key {
    int priority, tier;
    double energy, plugged;
    int connector;
    const std::string* id;
    int index;
  };

  const AllocationInput* in_ = nullptr;  // the snapshot being allocated
  double volts_ = kDefaultNominalVoltageV;
  // Structure (Prepare).
  std::vector<int> parent_;
  std::vector<PhaseLimits> limits_;
  std::vector<int> evse_node_;     // by input index
  std::vector<int> evse_station_;  // station constraint by input index, or -1
  std::vector<std::array<int, kPhaseCount>> node_phase_;
  std::vector<Constraint> template_;
  int contract_ = -1;
  std::vector<int> station_constraint_;
  std::vector<Item> static_items_;  // input order
  std::vector<PathEntry> paths_;
  // Per snapshot (Run); kept to reuse their memory.
  std::vector<Key> keys_;  // input order
  std::vector<Key> sorted_keys_;
  std::vector<int> order_;  // input indices in rank order, from the last run
  std::vector<int> rank_;   // the inverse: rank by input index
  // What BuildItems reads of each EVSE, by input index.
  struct Snapshot {
    PauseReason reason = PauseReason::kNone;
    bool chargeable = false;
    bool reserved = false;
    bool may_discharge = false;
  };
  std::vector<Snapshot> snapshot_;
  std::vector<PhaseValues> measured_;  // MeasuredEvCurrent()
  std::vector<PhaseValues> ev_;
  std::vector<PhaseValues> base_raw_;
  std::vector<Constraint> cons_;
  std::vector<Item> items_;  // rank order
  std::vector<int> admitted_;
  std::vector<std::pair<double, int>> heap_;
  std::vector<std::pair<double, int>> topup_;
  TightHeap tight_;
  std::vector<FillPlan> plans_;   // by priority class, for the items' current rank order
  std::vector<int> dirty_;        // WaterFill: constraints with a deferred key update
  std::vector<char> dirty_flag_;  // by constraint
  mutable std::vector<std::string> names_;
};

Allocation Failsafe(const AllocationInput& in, std::string reason) {
  Allocation out;
  out.failsafe = true;
  out.failsafe_reason = std::move(reason);
  for (const Evse& e : in.evses) {
    EvseAllocation a;
    a.id = e.id;
    a.type = e.type;
    const double volts = e.phases.size() * in.grid.nominal_voltage_v;
    if (e.type == EvseType::kAc) {
      a.current_a = e.active ? e.failsafe_a : 0.0;
      a.power_w = a.current_a * volts;
      a.paused = a.current_a <= 0;
    } else {
      a.power_w = e.active ? e.failsafe_w : 0.0;
      a.current_a = a.power_w / (volts * e.efficiency);
      a.paused = a.power_w <= 0;
    }
    if (!e.active) {
      a.pause_reason = PauseReason::kInactive;
    } else {
      a.limited_by = "failsafe";
      a.limit.kind = Limit::Kind::kFailsafe;
      if (a.paused) a.pause_reason = PauseReason::kFailsafe;
    }
    out.evses.push_back(std::move(a));
  }
  return out;
}

}  // namespace internal

namespace {

// The failsafe rule: a metered grid without a fresh reading.
std::optional<Allocation> MeterFailsafe(const AllocationInput& input) {
  const Grid& g = input.grid;
  if (!g.measured_a && !g.meter_timeout_s) return std::nullopt;
  const double timeout = g.meter_timeout_s.value_or(kDefaultMeterTimeoutS);
  if (!g.measured_a) return internal::Failsafe(input, "grid meter reading missing");
  if (g.meter_age_s > timeout) {
    return internal::Failsafe(
        input,
        absl::StrFormat("grid meter reading is %g s old (timeout %g s)", g.meter_age_s, timeout));
  }
  return std::nullopt;
}

bool Finite(const std::optional<double>& v) { return !v || std::isfinite(*v); }

// True when every field that PreparedSite::Allocate accepts as changed passes ValidateInput's
// checks. Boolean only and allocation-free; the caller asks ValidateInput for the messages.
bool SnapshotFieldsValid(const AllocationInput& in) {
  const Grid& g = in.grid;
  bool ok = std::isfinite(in.now_s) && std::isfinite(in.margin_a) && in.margin_a >= 0 &&
            std::isfinite(in.min_pause_s) && in.min_pause_s >= 0 &&
            (!in.min_run_s || (std::isfinite(*in.min_run_s) && *in.min_run_s >= 0)) &&
            std::isfinite(g.meter_age_s) && g.meter_age_s >= 0;
  auto values_ok = [](const std::optional<PhaseValues>& m) {
    return !m || (std::isfinite((*m)[0]) && std::isfinite((*m)[1]) && std::isfinite((*m)[2]));
  };
  ok = ok && values_ok(g.measured_a);
  for (const Circuit& c : in.circuits) ok = ok && values_ok(c.measured_a);
  for (const Evse& e : in.evses) {
    ok = ok && std::isfinite(e.session_energy_wh) && e.session_energy_wh >= 0 &&
         Finite(e.plugged_at_s) && Finite(e.running_since_s) && Finite(e.paused_since_s) &&
         !(e.running_since_s && e.paused_since_s) &&
         (!e.reserved_a || (std::isfinite(*e.reserved_a) && *e.reserved_a >= 0));
    if (e.type == EvseType::kAc) {
      if (e.measured_a) {
        ok = ok && e.measured_a->size() == e.phases.size();
        for (double a : *e.measured_a) ok = ok && std::isfinite(a);
      }
      ok = ok && (!e.setpoint_a || (std::isfinite(*e.setpoint_a) && *e.setpoint_a >= 0));
    } else {
      ok = ok && Finite(e.measured_w) && Finite(e.setpoint_w) &&
           (!e.soc_pct || (*e.soc_pct >= 0 && *e.soc_pct <= 100));
    }
    if (!ok) return false;
  }
  return ok;
}

}  // namespace

absl::StatusOr<Allocation> Allocate(const AllocationInput& input) {
  if (absl::Status status = ValidateInput(input); !status.ok()) return status;
  if (std::optional<Allocation> failsafe = MeterFailsafe(input)) return *std::move(failsafe);
  internal::Engine engine;
  engine.Prepare(input);
  Allocation out;
  engine.Run(input, out);
  return out;
}

PreparedSite::PreparedSite() = default;
PreparedSite::~PreparedSite() = default;
PreparedSite::PreparedSite(PreparedSite&&) noexcept = default;
PreparedSite& PreparedSite::operator=(PreparedSite&&) noexcept = default;

absl::StatusOr<PreparedSite> PreparedSite::Create(const AllocationInput& structure) {
  if (absl::Status status = ValidateInput(structure); !status.ok()) return status;
  PreparedSite site;
  site.structure_ = std::make_unique<AllocationInput>(structure);
  site.engine_ = std::make_unique<internal::Engine>();
  site.engine_->Prepare(*site.structure_);
  return site;
}

bool PreparedSite::SameStructure(const AllocationInput& input) const {
  const AllocationInput& s = *structure_;
  if (input.circuits.size() != s.circuits.size() || input.stations.size() != s.stations.size() ||
      input.evses.size() != s.evses.size() || input.grid.limit_a != s.grid.limit_a ||
      input.grid.contract_power_w != s.grid.contract_power_w ||
      input.grid.export_limit_w != s.grid.export_limit_w ||
      input.grid.nominal_voltage_v != s.grid.nominal_voltage_v) {
    return false;
  }
  for (size_t i = 0; i < s.circuits.size(); ++i) {
    const Circuit& a = input.circuits[i];
    const Circuit& b = s.circuits[i];
    if (a.id != b.id || a.parent != b.parent || a.limit_a != b.limit_a) return false;
  }
  for (size_t i = 0; i < s.stations.size(); ++i) {
    const Station& a = input.stations[i];
    const Station& b = s.stations[i];
    if (a.id != b.id || a.max_power_w != b.max_power_w) return false;
  }
  for (size_t i = 0; i < s.evses.size(); ++i) {
    const Evse& a = input.evses[i];
    const Evse& b = s.evses[i];
    if (a.id != b.id || a.circuit != b.circuit || a.type != b.type || a.phases != b.phases ||
        a.connector != b.connector || a.station != b.station || a.min_a != b.min_a ||
        a.max_a != b.max_a || a.step_a != b.step_a || a.failsafe_a != b.failsafe_a ||
        a.min_w != b.min_w || a.max_w != b.max_w || a.step_w != b.step_w ||
        a.efficiency != b.efficiency || a.failsafe_w != b.failsafe_w ||
        a.bidirectional != b.bidirectional || a.max_discharge_w != b.max_discharge_w ||
        a.soc_min_pct != b.soc_min_pct || a.soc_max_pct != b.soc_max_pct) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<Allocation> PreparedSite::Allocate(const AllocationInput& snapshot) {
  Allocation out;
  if (absl::Status status = Allocate(snapshot, out); !status.ok()) return status;
  return out;
}

absl::Status PreparedSite::Allocate(const AllocationInput& snapshot, Allocation& out) {
  if (engine_ == nullptr) return absl::FailedPreconditionError("PreparedSite is not prepared");
  if (snapshot.evses.size() != structure_->evses.size() ||
      snapshot.circuits.size() != structure_->circuits.size() ||
      snapshot.stations.size() != structure_->stations.size()) {
    return absl::InvalidArgumentError(
        "snapshot does not have the structure of the prepared site (counts differ)");
  }
  if (!SnapshotFieldsValid(snapshot)) {
    absl::Status status = ValidateInput(snapshot);
    return status.ok() ? absl::InternalError("snapshot rejected without a validation error")
                       : status;
  }
  if (std::optional<Allocation> failsafe = MeterFailsafe(snapshot)) {
    out = *std::move(failsafe);
    return absl::OkStatus();
  }
  engine_->Run(snapshot, out);
  return absl::OkStatus();
}

}  // namespace evgate::allocation
