// What the grid controller reads of the device events. Bad inputs tried: events before any
// snapshot, events of devices it does not watch, a fault cleared that was never raised, an
// unspecified switch position, a stale link, a lost stream.

#include "services/grid_controller/grid_inputs.h"

#include "gtest/gtest.h"

namespace evgate::grid_controller {
namespace {

v1::WatchDevicesResponse BoxSnapshot(bool grid, v1::TransferSwitchPosition position) {
  v1::WatchDevicesResponse event;
  event.set_device_id("box");
  v1::DeviceState& d = *event.mutable_snapshot();
  d.set_device_id("box");
  d.set_kind(v1::DEVICE_KIND_OFFGRID_BOX);
  d.mutable_link()->mutable_last_seen()->set_seconds(1800000000);
  d.mutable_off_grid_box()->set_grid_present(grid);
  d.mutable_off_grid_box()->set_transfer_switch(position);
  d.mutable_off_grid_box()->set_qf1_closed(true);
  d.mutable_off_grid_box()->set_qf2_closed(true);
  return event;
}

v1::WatchDevicesResponse ChargerSnapshot(v1::ConnectorStatus status, double soc) {
  v1::WatchDevicesResponse event;
  event.set_device_id("ice22");
  v1::DeviceState& d = *event.mutable_snapshot();
  d.set_device_id("ice22");
  d.mutable_link()->mutable_last_seen()->set_seconds(1800000000);
  v1::EvseState& e = *d.add_evses();
  e.set_evse_id("v2x1");
  e.set_connector_status(status);
  e.mutable_measurements()->set_soc_pct(soc);
  return event;
}

TEST(GridInputsTest, NothingIsReachableBeforeASnapshot) {
  GridInputs inputs("box", "meter", {"v2x1"});
  v1::WatchDevicesResponse change;
  change.set_device_id("box");
  change.mutable_off_grid_box_change()->set_grid_present(true);
  EXPECT_FALSE(inputs.Apply(change));  // no snapshot on this stream yet
  const grid::Observation o = inputs.Observe();
  EXPECT_FALSE(o.box.reachable);
  ASSERT_EQ(o.evses.size(), 1u);
  EXPECT_EQ(o.evses[0].evse_id, "v2x1");
  EXPECT_FALSE(o.evses[0].reachable);
}

TEST(GridInputsTest, ADeviceThatNeverAnsweredSaysNothingYet) {
  GridInputs inputs("box", "meter", {"v2x1"});
  v1::WatchDevicesResponse before_first_poll =
      BoxSnapshot(false, v1::TRANSFER_SWITCH_POSITION_UNSPECIFIED);
  before_first_poll.mutable_snapshot()->mutable_link()->clear_last_seen();
  EXPECT_TRUE(inputs.Apply(before_first_poll));
  EXPECT_FALSE(inputs.Observe().box.reachable);  // not an outage
}

TEST(GridInputsTest, TheBoxAndTheV2xEvseAreReadFromSnapshotsAndChanges) {
  GridInputs inputs("box", "meter", {"v2x1"});
  EXPECT_TRUE(inputs.Apply(BoxSnapshot(true, v1::TRANSFER_SWITCH_POSITION_ON_GRID)));
  EXPECT_TRUE(inputs.Apply(ChargerSnapshot(v1::CONNECTOR_STATUS_AVAILABLE, 0)));
  v1::WatchDevicesResponse other = ChargerSnapshot(v1::CONNECTOR_STATUS_CHARGING, 50);
  other.mutable_snapshot()->set_device_id("ds60");
  other.mutable_snapshot()->mutable_evses(0)->set_evse_id("dc1");
  EXPECT_FALSE(inputs.Apply(other));  // not a device the grid controller watches

  grid::Observation o = inputs.Observe();
  EXPECT_TRUE(o.box.reachable);
  EXPECT_TRUE(o.box.grid_present);
  EXPECT_EQ(o.box.transfer_switch, grid::TransferSwitch::kOnGrid);
  EXPECT_EQ(o.box.qf1_closed, true);
  EXPECT_TRUE(o.evses[0].reachable);
  EXPECT_FALSE(o.evses[0].vehicle_connected);

  // Grid lost, countdown running; a vehicle arrives; telemetry moves the SOC.
  v1::WatchDevicesResponse lost;
  lost.set_device_id("box");
  lost.mutable_off_grid_box_change()->set_grid_present(false);
  lost.mutable_off_grid_box_change()->set_transfer_switch(v1::TRANSFER_SWITCH_POSITION_OPEN);
  lost.mutable_off_grid_box_change()->mutable_standby_remaining()->set_seconds(170);
  EXPECT_TRUE(inputs.Apply(lost));
  v1::WatchDevicesResponse plug;
  plug.set_device_id("ice22");
  *plug.mutable_evse_state_change()->mutable_state() =
      ChargerSnapshot(v1::CONNECTOR_STATUS_PREPARING, 80).snapshot().evses(0);
  EXPECT_TRUE(inputs.Apply(plug));
  EXPECT_FALSE(inputs.Observe().evses[0].soc_pct.has_value())
      << "the 80 % in the state of its arrival is not this vehicle's reading yet";
  v1::WatchDevicesResponse telemetry;
  telemetry.set_device_id("ice22");
  v1::EvseTelemetry& t = *telemetry.mutable_telemetry()->add_evses();
  t.set_evse_id("v2x1");
  t.mutable_measurements()->set_soc_pct(79);
  EXPECT_TRUE(inputs.Apply(telemetry));
  o = inputs.Observe();
  EXPECT_FALSE(o.box.grid_present);
  EXPECT_EQ(o.box.transfer_switch, grid::TransferSwitch::kOpen);
  EXPECT_EQ(o.box.standby_remaining, absl::Seconds(170));
  EXPECT_FALSE(o.box.qf1_closed.has_value());  // the change did not carry it
  EXPECT_TRUE(o.evses[0].vehicle_connected);
  EXPECT_EQ(o.evses[0].soc_pct, 79);

  // An unspecified position is unknown, never "on grid".
  lost.mutable_off_grid_box_change()->set_transfer_switch(v1::TRANSFER_SWITCH_POSITION_UNSPECIFIED);
  inputs.Apply(lost);
  EXPECT_EQ(inputs.Observe().box.transfer_switch, grid::TransferSwitch::kUnknown);
}

TEST(GridInputsTest, BlockingFaultsOfTheEvseOrItsDeviceAndStaleLinks) {
  GridInputs inputs("box", "meter", {"v2x1"});
  inputs.Apply(BoxSnapshot(false, v1::TRANSFER_SWITCH_POSITION_OPEN));
  inputs.Apply(ChargerSnapshot(v1::CONNECTOR_STATUS_PREPARING, 60));
  v1::WatchDevicesResponse raised;
  raised.set_device_id("ice22");
  v1::Fault& fault = *raised.mutable_fault_raised()->mutable_fault();
  fault.set_code("ice22_alarm");
  fault.set_vendor_code("CA104");
  fault.set_description("DC overvoltage");
  fault.set_blocks_charging(true);
  inputs.Apply(raised);  // device-wide (no evse_id)
  grid::Observation o = inputs.Observe();
  EXPECT_TRUE(o.evses[0].blocking_fault);
  EXPECT_EQ(o.evses[0].fault_detail, "CA104 DC overvoltage");

  v1::WatchDevicesResponse cleared;
  cleared.set_device_id("ice22");
  *cleared.mutable_fault_cleared()->mutable_fault() = fault;
  inputs.Apply(cleared);
  inputs.Apply(cleared);  // cleared twice: nothing left to clear, no harm
  EXPECT_FALSE(inputs.Observe().evses[0].blocking_fault);

  v1::WatchDevicesResponse stale;
  stale.set_device_id("box");
  stale.mutable_link_state_change()->mutable_link()->set_stale(true);
  inputs.Apply(stale);
  EXPECT_FALSE(inputs.Observe().box.reachable);
  EXPECT_FALSE(inputs.box_reachable());

  inputs.Reset();  // a lost stream
  o = inputs.Observe();
  EXPECT_FALSE(o.box.reachable);
  EXPECT_FALSE(o.evses[0].reachable);
}

}  // namespace
}  // namespace evgate::grid_controller
