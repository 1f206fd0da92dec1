// What the load balancer applies of the grid controller's state. Bad inputs tried: a negative
// discharge limit, a limit without an EVSE, an EVSE without a limit.
#include "services/load_balancer/grid_link.h"

#include "gtest/gtest.h"

namespace evgate::load_balancer {
namespace {

TEST(DirectiveOfTest, OnlyOnGridOrWithoutGridModesMayEvsesChargeFromTheGrid) {
  v1::GridState state;
  EXPECT_TRUE(DirectiveOf(state).grid_supply);  // UNSPECIFIED: no grid modes on this site
  state.set_mode(v1::GRID_MODE_ON_GRID);
  EXPECT_TRUE(DirectiveOf(state).grid_supply);
  for (v1::GridMode mode : {v1::GRID_MODE_OUTAGE_STANDBY, v1::GRID_MODE_OUTAGE_SLEEP,
                            v1::GRID_MODE_OFF_GRID, v1::GRID_MODE_RESYNC}) {
    state.set_mode(mode);
    EXPECT_FALSE(DirectiveOf(state).grid_supply) << v1::GridMode_Name(mode);
  }
}

TEST(DirectiveOfTest, TheFormerAndItsLimitGoTogether) {
  v1::GridState state;
  state.set_mode(v1::GRID_MODE_OFF_GRID);
  state.set_forming_evse_id("v2x1");
  EXPECT_TRUE(DirectiveOf(state).forming_evse.empty());  // no limit: nothing to discharge
  state.set_forming_discharge_limit_w(19800);
  control::GridModeDirective d = DirectiveOf(state);
  EXPECT_EQ(d.forming_evse, "v2x1");
  EXPECT_EQ(d.forming_discharge_limit_w, 19800);
  state.set_forming_discharge_limit_w(-5);
  EXPECT_EQ(DirectiveOf(state).forming_discharge_limit_w, 0);
  state.clear_forming_evse_id();
  EXPECT_TRUE(DirectiveOf(state).forming_evse.empty());
}

}  // namespace
}  // namespace evgate::load_balancer
