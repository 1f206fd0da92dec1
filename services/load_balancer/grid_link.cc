#include "services/load_balancer/grid_link.h"

#include "evgate/v1/grid.pb.h"

namespace evgate::load_balancer {

control::GridModeDirective DirectiveOf(const v1::GridState& state) {
  control::GridModeDirective d;
  d.grid_supply =
      state.mode() == v1::GRID_MODE_ON_GRID || state.mode() == v1::GRID_MODE_UNSPECIFIED;
  d.reason = v1::GridMode_Name(state.mode());
  if (state.has_forming_discharge_limit_w() && !state.forming_evse_id().empty()) {
    d.forming_evse = state.forming_evse_id();
    d.forming_discharge_limit_w = std::max(0.0, state.forming_discharge_limit_w());
  }
  return d;
}

}  // namespace evgate::load_balancer
