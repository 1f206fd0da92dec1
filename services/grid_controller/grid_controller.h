// The grid controller of a V2X site: runs the grid-mode machine
// (site_controller/grid/grid_mode_machine.h) on what the devices report, carries out its box
// commands, and keeps the state (GridState of grid.proto) for GetGridState / WatchGridState.
//
// Inputs: DeviceDriver.WatchDevices events (as a session::DeviceEventHandler), a Tick() every
// second (the countdown, the resync wait, transfer timeouts), operator requests. Every input
// steps the machine at the clock's monotonic time; each transition is logged and kept (the last
// kMaxTransitions) for watchers, so a watcher sees every transition in order even when several
// happen between two of its reads.
//
// Box commands go through a BoxCommander (DeviceDriver.Command `off_grid_box`) from the thread
// that stepped the machine, in the order the machine gave them, outside the state lock; a
// refused or failed command is logged and the machine's transfer timeout retries. When the box
// answers again after it did not (first contact, a restart of the driver, waking up) the
// controller writes site.yaml's standby countdown and P-N pull-in setting into it.
//
// What the controller asks of the rest of the site is in directives(): whether EVSEs may charge
// from the grid, and which EVSE forms the island with what discharge limit. The load balancer
// applying them is not part of this class.
//
// Thread-safe.
#ifndef EVGATE_SERVICES_GRID_CONTROLLER_GRID_CONTROLLER_H_
#define EVGATE_SERVICES_GRID_CONTROLLER_GRID_CONTROLLER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "evgate/v1/grid.pb.h"
#include "runtime/clock.h"
#include "services/grid_controller/grid_inputs.h"
#include "services/session/device_events.h"
#include "site_controller/config/site_config.h"
#include "site_controller/grid/grid_mode_machine.h"

namespace evgate::grid_controller {

// Sends one command to the off-grid box. OK only when the box accepted it.
class BoxCommander {
 public:
  virtual ~BoxCommander() = default;
  virtual absl::Status Send(const std::string& box_device_id,
                            const v1::OffGridBoxCommand& command) = 0;
};

// The machine's settings and V2X EVSEs from site.yaml (`grid_modes` and the bidirectional
// EVSEs). FAILED_PRECONDITION when the site has no grid_modes.
absl::StatusOr<std::unique_ptr<grid::GridModeMachine>> MachineFromSite(
    const site::SiteConfig& config);

class GridController final : public session::DeviceEventHandler {
 public:
  static constexpr size_t kMaxTransitions = 64;

  // `config` must have grid_modes; `clock` and `commander` outlive the controller.
  static absl::StatusOr<std::unique_ptr<GridController>> Create(const site::SiteConfig& config,
                                                                const Clock& clock,
                                                                BoxCommander* commander);

  // session::DeviceEventHandler (any one thread at a time).
  void OnStreamStarted() override;
  void OnDeviceEvent(const v1::WatchDevicesResponse& event) override;
  void OnStreamLost(const absl::Status& status) override;

  // Time passing.
  void Tick();

  // RequestGridMode: the state after the request was accepted, or FAILED_PRECONDITION /
  // NOT_FOUND / INVALID_ARGUMENT saying why not.
  absl::StatusOr<v1::GridState> Request(const v1::RequestGridModeRequest& request);

  v1::GridState State() const;
  grid::Directives directives() const;
  // The V2X parameters evgate applies to one EVSE (site.yaml and grid_modes).
  absl::StatusOr<v1::V2xParameters> Parameters(const std::string& evse_id) const;

  // Transitions so far (counting from 1). TransitionsAfter(after, &through) returns the states
  // after those transitions that came after `after` and are still kept, oldest first, and sets
  // `through` to the number of the last one (transitions() at that moment).
  uint64_t transitions() const;
  std::vector<v1::GridState> TransitionsAfter(uint64_t after, uint64_t* through) const;
  // Waits until there are more than `after` transitions, `timeout` passes or Shutdown().
  void WaitForTransition(uint64_t after, absl::Duration timeout) const;
  // Wakes every waiter for good (the service is stopping).
  void Shutdown();
  bool shut_down() const;

 private:
  GridController(const site::SiteConfig& config, const Clock& clock, BoxCommander* commander,
                 std::unique_ptr<grid::GridModeMachine> machine);

  // Records what a step produced; returns the box commands to send.
  std::vector<v1::OffGridBoxCommand> Record(const grid::StepResult& step)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Observes the inputs, with the settings written to a box that answers again.
  std::vector<v1::OffGridBoxCommand> ObserveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendAll(const std::vector<v1::OffGridBoxCommand>& commands);
  v1::GridState StateLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string box_device_id_;
  const site::GridModesConfig settings_;
  const site::SiteConfig& config_;
  const Clock& clock_;
  BoxCommander* const commander_;

  // Held while commands go out, so that they reach the box in the machine's order.
  absl::Mutex send_mu_;
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(send_mu_);
  std::unique_ptr<grid::GridModeMachine> machine_ ABSL_GUARDED_BY(mu_);
  GridInputs inputs_ ABSL_GUARDED_BY(mu_);
  grid::Directives directives_ ABSL_GUARDED_BY(mu_);
  bool box_was_reachable_ ABSL_GUARDED_BY(mu_) = false;
  bool overload_alarm_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t transitions_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::GridState> recent_ ABSL_GUARDED_BY(mu_);  // states after the last transitions
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace evgate::grid_controller

#endif  // EVGATE_SERVICES_GRID_CONTROLLER_GRID_CONTROLLER_H_
