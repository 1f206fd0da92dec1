#include "services/metrics_exporter/site_metrics.h"

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace evgate::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

template <typename Message>
Message Parse(const std::string& text) {
  Message m;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &m)) << text;
  return m;
}

// The exposition text of `set`, requiring that every sample was valid.
std::string Text(FamilySet& set) {
  EXPECT_THAT(set.errors(), ::testing::IsEmpty());
  return prometheus::TextSerializer().Serialize(set.Take());
}

TEST(SiteMetricsTest, EnumLabels) {
  EXPECT_EQ(EnumLabel("CONNECTOR_STATUS_SUSPENDED_EV", "CONNECTOR_STATUS_"), "suspended_ev");
  EXPECT_EQ(EnumLabel("OTHER_NAME", "CONNECTOR_STATUS_"), "other_name");
}

TEST(SiteMetricsTest, CircuitsGridAndFailsafe) {
  FamilySet set;
  AddSiteStatus(Parse<v1::GetSiteStatusResponse>(R"pb(
                  grid {
                    effective_limit_a { l1: 62 l2: 62 l3: 62 }
                    measured_a { l1: 40.5 l2: 30 l3: 20 }
                    ev_load_a { l1: 16 l2: 16 l3: 16 }
                    headroom_a { l1: 21.5 l2: 32 l3: 42 }
                    measured_power_w: 20815
                    contract_power_w: 40000
                    meter_age { nanos: 300000000 }
                    meter_timeout { seconds: 3 }
                  }
                  circuits {
                    circuit_id: "garage"
                    effective_limit_a { l1: 31 l2: 31 }
                    ev_load_a { l1: 16 l2: 0 }
                    headroom_a { l1: 15 l2: 31 }
                    failsafe: true
                  }
                  margin_a: 1
                  failsafe: true
                  failsafe_reason: FAILSAFE_REASON_METER_STALE
                )pb"),
                set);
  const std::string text = Text(set);
  EXPECT_THAT(text,
              HasSubstr("evgate_circuit_current_amperes{circuit=\"grid\",phase=\"L1\"} 40.5"));
  EXPECT_THAT(text, HasSubstr("evgate_circuit_limit_amperes{circuit=\"garage\",phase=\"L2\"} 31"));
  // A phase the circuit does not have (no L3 value) is absent, not 0.
  EXPECT_THAT(text, Not(HasSubstr("circuit=\"garage\",phase=\"L3\"")));
  // No meter on the garage: no measured current, but its EV load is known.
  EXPECT_THAT(text, Not(HasSubstr("evgate_circuit_current_amperes{circuit=\"garage\"")));
  EXPECT_THAT(text,
              HasSubstr("evgate_circuit_ev_current_amperes{circuit=\"garage\",phase=\"L1\"} 16"));
  EXPECT_THAT(text, HasSubstr("evgate_circuit_failsafe{circuit=\"garage\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_grid_power_watts 20815"));
  EXPECT_THAT(text, HasSubstr("evgate_grid_contract_power_watts 40000"));
  EXPECT_THAT(text, Not(HasSubstr("evgate_grid_export_limit_watts")));
  EXPECT_THAT(text, HasSubstr("evgate_grid_meter_age_seconds 0.3"));
  EXPECT_THAT(text, HasSubstr("evgate_grid_meter_timeout_seconds 3"));
  EXPECT_THAT(text, HasSubstr("evgate_failsafe_active{reason=\"meter_stale\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_margin_amperes 1"));
}

TEST(SiteMetricsTest, NoFailsafeHasNoReason) {
  FamilySet set;
  AddSiteStatus(v1::GetSiteStatusResponse(), set);
  const std::string text = Text(set);
  EXPECT_THAT(text, HasSubstr("evgate_failsafe_active 0"));
  EXPECT_THAT(text, HasSubstr("evgate_circuit_failsafe{circuit=\"grid\"} 0"));
}

TEST(SiteMetricsTest, EvsesAllocationsAndStateSet) {
  FamilySet set;
  AddSiteStatus(Parse<v1::GetSiteStatusResponse>(R"pb(
                  grid { nominal_voltage_v: 230 }
                  evses {
                    evse_id: "wb1"
                    active: true
                    priority: 2
                    connector_status: CONNECTOR_STATUS_CHARGING
                    measured_a { l1: 15.9 l2: 15.8 l3: 16 }
                    measured_power_w: 11000
                    allocation {
                      evse_id: "wb1"
                      current_a: 16
                      phase_current_a { l1: 16 l2: 16 l3: 16 }
                    }
                  }
                  evses {
                    evse_id: "wb2"
                    connector_status: CONNECTOR_STATUS_SUSPENDED_EVSE
                    allocation {
                      evse_id: "wb2"
                      current_a: 0
                      paused: true
                      pause_reason: PAUSE_REASON_NOT_ENOUGH_CURRENT
                    }
                  }
                  evses {
                    evse_id: "dc1"
                    connector_status: CONNECTOR_STATUS_FAULTED
                    allocation {
                      evse_id: "dc1"
                      power_w: 30000
                      phase_current_a { l1: 45.8 l2: 45.8 l3: 45.8 }
                      not_controlled_reason: "device stale"
                    }
                  }
                )pb"),
                set);
  const std::string text = Text(set);
  EXPECT_THAT(text, HasSubstr("evgate_evse_setpoint_amperes{evse=\"wb1\"} 16"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_setpoint_watts{evse=\"dc1\"} 30000"));
  // The other half of each, derived: AC power at the nominal voltage, DC AC input current.
  EXPECT_THAT(text, HasSubstr("evgate_evse_setpoint_watts{evse=\"wb1\"} 11040"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_setpoint_amperes{evse=\"dc1\"} 45.8"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_setpoint_amperes{evse=\"wb2\"} 0"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_current_amperes{evse=\"wb1\",phase=\"L2\"} 15.8"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_power_watts{evse=\"wb1\"} 11000"));
  EXPECT_THAT(text, Not(HasSubstr("evgate_evse_power_watts{evse=\"wb2\"}")));
  EXPECT_THAT(text, HasSubstr("evgate_evse_paused{evse=\"wb1\"} 0"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_paused{evse=\"wb2\",reason=\"not_enough_current\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_priority{evse=\"wb1\"} 2"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_active{evse=\"wb2\"} 0"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_controlled{evse=\"wb1\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_controlled{evse=\"dc1\",reason=\"device stale\"} 0"));
  // A state set: one series per state, exactly one of them 1.
  EXPECT_THAT(text, HasSubstr("evgate_evse_status{evse=\"wb1\",state=\"charging\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_status{evse=\"wb1\",state=\"available\"} 0"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_status{evse=\"dc1\",state=\"faulted\"} 1"));
  EXPECT_THAT(text, Not(HasSubstr("state=\"unspecified\"")));
}

TEST(SiteMetricsTest, SetpointCountersWithEveryReason) {
  FamilySet set;
  AddSiteStatus(Parse<v1::GetSiteStatusResponse>(R"pb(
                  counters {
                    batches_sent: 40
                    batches_failed: 1
                    setpoints_sent: 80
                    setpoints_refused { key: "device_rejected" value: 3 }
                    setpoints_refused { key: "batch_failed" value: 2 }
                  }
                )pb"),
                set);
  const std::string text = Text(set);
  EXPECT_THAT(text, HasSubstr("evgate_setpoint_batches_total 40"));
  EXPECT_THAT(text, HasSubstr("evgate_setpoint_batches_failed_total 1"));
  EXPECT_THAT(text, HasSubstr("evgate_setpoints_sent_total 80"));
  EXPECT_THAT(text, HasSubstr("evgate_setpoints_refused_total{reason=\"device_rejected\"} 3"));
  EXPECT_THAT(text, HasSubstr("evgate_setpoints_refused_total{reason=\"batch_failed\"} 2"));
  EXPECT_THAT(text, HasSubstr("evgate_setpoints_refused_total{reason=\"device_offline\"} 0"));
  EXPECT_THAT(text, HasSubstr("evgate_setpoints_refused_total{reason=\"no_result\"} 0"));
}

TEST(SiteMetricsTest, UnknownEnumValueFromANewerPeer) {
  FamilySet set;
  v1::GetSiteStatusResponse status;
  status.set_failsafe(true);
  status.set_failsafe_reason(static_cast<v1::FailsafeReason>(99));
  AddSiteStatus(status, set);
  EXPECT_THAT(Text(set), HasSubstr("evgate_failsafe_active{reason=\"unknown\"} 1"));
}

TEST(SiteMetricsTest, DevicesLinkFaultsMetersAndBusTotals) {
  FamilySet set;
  std::vector<v1::DeviceState> devices = {
      Parse<v1::DeviceState>(R"pb(
        device_id: "grid-meter"
        kind: DEVICE_KIND_METER
        bus_id: "rs485-1"
        link {
          requests_total: 100
          errors_total: 2
          timeouts_total: 3
          last_seen { seconds: 1700000000 }
        }
        meter {
          current_a { l1: 10 l2: 11 l3: 12 }
          total_power_w: 7000
          energy_import_wh: 1500
        }
      )pb"),
      Parse<v1::DeviceState>(R"pb(
        device_id: "wb2"
        kind: DEVICE_KIND_AC_WALLBOX
        bus_id: "rs485-1"
        link { requests_total: 50 errors_total: 1 stale: true }
        evses {
          evse_id: "wb2"
          faults { code: "OVER_CURRENT" severity: FAULT_SEVERITY_ERROR vendor_code: "ERR OCP" }
          setpoint { source: SETPOINT_SOURCE_FAILSAFE }
        }
      )pb"),
      Parse<v1::DeviceState>(R"pb(
        device_id: "dc1"
        kind: DEVICE_KIND_DC_CHARGER
        faults { code: "DOOR_OPEN" severity: FAULT_SEVERITY_WARNING }
        evses {
          evse_id: "dc1"
          measurements { soc_pct: 64 }
        }
      )pb"),
  };
  AddDevices(devices, set);
  const std::string text = Text(set);
  EXPECT_THAT(
      text,
      HasSubstr("evgate_device_online{device=\"grid-meter\",bus=\"rs485-1\",kind=\"meter\"} 1"));
  EXPECT_THAT(
      text,
      HasSubstr("evgate_device_online{device=\"wb2\",bus=\"rs485-1\",kind=\"ac_wallbox\"} 0"));
  EXPECT_THAT(text,
              HasSubstr("evgate_device_requests_total{device=\"grid-meter\",bus=\"rs485-1\"} 100"));
  EXPECT_THAT(
      text,
      HasSubstr("evgate_device_last_seen_timestamp_seconds{device=\"grid-meter\"} 1700000000"));
  EXPECT_THAT(text, Not(HasSubstr("evgate_device_last_seen_timestamp_seconds{device=\"wb2\"}")));
  EXPECT_THAT(text, HasSubstr("evgate_bus_requests_total{bus=\"rs485-1\"} 150"));
  EXPECT_THAT(text, HasSubstr("evgate_bus_errors_total{bus=\"rs485-1\"} 3"));
  EXPECT_THAT(text, HasSubstr("evgate_bus_timeouts_total{bus=\"rs485-1\"} 3"));
  // A device without a bus (an OCPP charger) has no bus series.
  EXPECT_THAT(text, Not(HasSubstr("evgate_bus_requests_total{bus=\"\"}")));
  EXPECT_THAT(text, HasSubstr("evgate_device_fault{device=\"wb2\",evse=\"wb2\",code=\"OVER_"
                              "CURRENT\",severity=\"error\"} 1"));
  EXPECT_THAT(
      text,
      HasSubstr("evgate_device_fault{device=\"dc1\",code=\"DOOR_OPEN\",severity=\"warning\"} 1"));
  EXPECT_THAT(text,
              HasSubstr("evgate_meter_current_amperes{device=\"grid-meter\",phase=\"L3\"} 12"));
  EXPECT_THAT(text, HasSubstr("evgate_meter_power_watts{device=\"grid-meter\"} 7000"));
  EXPECT_THAT(text,
              HasSubstr("evgate_meter_energy_import_joules_total{device=\"grid-meter\"} 5400000"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_soc_percent{evse=\"dc1\"} 64"));
  // wb2 on its watchdog value: its setpoint expired.
  EXPECT_THAT(text, HasSubstr("evgate_evse_setpoint_source{evse=\"wb2\",source=\"failsafe\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_evse_setpoint_source{evse=\"wb2\",source=\"controller\"} 0"));
  // No setpoint reported (a meter, dc1 here): no series.
  EXPECT_THAT(text, Not(HasSubstr("evgate_evse_setpoint_source{evse=\"dc1\"")));
}

// The families of `set` (requiring every sample valid), and one sample of
// them by name and labels: prometheus-cpp's own structures, not its text.
std::vector<prometheus::MetricFamily> Families(FamilySet& set) {
  EXPECT_THAT(set.errors(), ::testing::IsEmpty());
  return set.Take();
}
const prometheus::ClientMetric* Sample(const std::vector<prometheus::MetricFamily>& families,
                                       const std::string& name,
                                       const std::map<std::string, std::string>& labels) {
  for (const prometheus::MetricFamily& family : families) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      std::map<std::string, std::string> have;
      for (const prometheus::ClientMetric::Label& l : metric.label) have[l.name] = l.value;
      if (have == labels) return &metric;
    }
  }
  return nullptr;
}
double CounterOf(const std::vector<prometheus::MetricFamily>& families, const std::string& name,
                 const std::map<std::string, std::string>& labels) {
  const prometheus::ClientMetric* m = Sample(families, name, labels);
  EXPECT_NE(m, nullptr) << name << " has no sample with those labels";
  return m == nullptr ? -1 : m->counter.value;
}

TEST(SiteMetricsTest, BusDurationsAsAHistogramAndCanFramesWithEveryErrorKind) {
  FamilySet set;
  AddBuses({Parse<v1::BusHealth>(R"pb(
              bus_id: "rs485-1"
              kind: "modbus"
              requests_total: 12
              request_duration {
                upper_bounds_s: [ 0.005, 0.05 ]
                cumulative_counts: [ 7, 9 ]
                count: 10
                sum_s: 1.25
              }
            )pb"),
            Parse<v1::BusHealth>(R"pb(
              bus_id: "can0"
              kind: "can"
              frames_sent_total: 40
              frames_received_total: 900
              bus_off_total: 2
              other_error_frames_total: 5
              interface_down_total: 1
            )pb"),
            Parse<v1::BusHealth>(R"pb(bus_id: "ocpp" kind: "ocpp" setpoints_expired_total: 3)pb")},
           set);
  const std::vector<prometheus::MetricFamily> f = Families(set);
  const prometheus::ClientMetric* h =
      Sample(f, "evgate_bus_request_duration_seconds", {{"bus", "rs485-1"}});
  ASSERT_NE(h, nullptr);
  ASSERT_EQ(h->histogram.bucket.size(), 3u);
  EXPECT_EQ(h->histogram.bucket[0].upper_bound, 0.005);
  EXPECT_EQ(h->histogram.bucket[0].cumulative_count, 7u);
  EXPECT_EQ(h->histogram.bucket[1].cumulative_count, 9u);
  EXPECT_TRUE(std::isinf(h->histogram.bucket[2].upper_bound));
  EXPECT_EQ(h->histogram.bucket[2].cumulative_count, 10u);
  EXPECT_EQ(h->histogram.sample_count, 10u);
  EXPECT_EQ(h->histogram.sample_sum, 1.25);
  EXPECT_EQ(CounterOf(f, "evgate_can_frames_total", {{"bus", "can0"}, {"direction", "sent"}}), 40);
  EXPECT_EQ(CounterOf(f, "evgate_can_frames_total", {{"bus", "can0"}, {"direction", "received"}}),
            900);
  EXPECT_EQ(CounterOf(f, "evgate_can_error_frames_total", {{"bus", "can0"}, {"kind", "bus_off"}}),
            2);
  EXPECT_EQ(CounterOf(f, "evgate_can_error_frames_total", {{"bus", "can0"}, {"kind", "other"}}), 5);
  // A kind that never happened is there, at 0.
  EXPECT_EQ(CounterOf(f, "evgate_can_error_frames_total", {{"bus", "can0"}, {"kind", "warning"}}),
            0);
  EXPECT_EQ(CounterOf(f, "evgate_can_interface_down_total", {{"bus", "can0"}}), 1);
  // Expiries on every kind of bus, OCPP's included.
  EXPECT_EQ(CounterOf(f, "evgate_setpoints_expired_total", {{"bus", "ocpp"}}), 3);
  EXPECT_EQ(CounterOf(f, "evgate_setpoints_expired_total", {{"bus", "rs485-1"}}), 0);
  // Neither a CAN bus nor OCPP has a duration histogram, nor Modbus or OCPP frames.
  EXPECT_EQ(Sample(f, "evgate_bus_request_duration_seconds", {{"bus", "can0"}}), nullptr);
  EXPECT_EQ(Sample(f, "evgate_bus_request_duration_seconds", {{"bus", "ocpp"}}), nullptr);
  EXPECT_EQ(Sample(f, "evgate_can_frames_total", {{"bus", "ocpp"}, {"direction", "sent"}}),
            nullptr);
  EXPECT_EQ(Sample(f, "evgate_can_frames_total", {{"bus", "rs485-1"}, {"direction", "sent"}}),
            nullptr);
}

// Bad input tried: bounds and counts of different lengths (a malformed
// answer); the shorter wins and +Inf is the total.
TEST(SiteMetricsTest, AHistogramWithMoreBoundsThanCountsServesThePairs) {
  FamilySet set;
  AddBuses({Parse<v1::BusHealth>(R"pb(
             bus_id: "rs485-1"
             kind: "modbus"
             request_duration {
               upper_bounds_s: [ 0.001, 0.01, 0.1 ]
               cumulative_counts: [ 1 ]
               count: 3
               sum_s: 0.2
             }
           )pb")},
           set);
  const std::vector<prometheus::MetricFamily> f = Families(set);
  const prometheus::ClientMetric* h =
      Sample(f, "evgate_bus_request_duration_seconds", {{"bus", "rs485-1"}});
  ASSERT_NE(h, nullptr);
  ASSERT_EQ(h->histogram.bucket.size(), 2u);
  EXPECT_EQ(h->histogram.bucket[0].upper_bound, 0.001);
  EXPECT_EQ(h->histogram.bucket[0].cumulative_count, 1u);
  EXPECT_TRUE(std::isinf(h->histogram.bucket[1].upper_bound));
  EXPECT_EQ(h->histogram.bucket[1].cumulative_count, 3u);
}

TEST(SiteMetricsTest, OpenSessionsReportEveryOpenState) {
  FamilySet set;
  AddOpenSessions({Parse<v1::Session>(R"pb(evse_id: "wb1"
                                           state: SESSION_STATE_ACTIVE
                                           energy_charged_wh: 2500)pb")},
                  set);
  const std::string text = Text(set);
  EXPECT_THAT(text, HasSubstr("evgate_sessions_open{state=\"active\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_sessions_open{state=\"pending_plug_in\"} 0"));
  EXPECT_THAT(text, HasSubstr("evgate_sessions_open{state=\"finishing\"} 0"));
  EXPECT_THAT(text, HasSubstr("evgate_session_energy_joules{evse=\"wb1\"} 9000000"));
}

TEST(SiteMetricsTest, ChargePointsAndUpstream) {
  FamilySet set;
  AddChargePoints(
      {Parse<v1::ChargePoint>(
           R"pb(charge_point_id: "DS60-1"
                connection_state: CHARGE_POINT_CONNECTION_STATE_CONNECTED
                registration_status: REGISTRATION_STATUS_ACCEPTED
                pending_calls: 2
                messages { direction: "in" action: "MeterValues" result: "ok" count: 12 })pb"),
       // Connected but still Pending at boot: not yet a working charger.
       Parse<v1::ChargePoint>(R"pb(charge_point_id: "ICE22-1"
                                   connection_state: CHARGE_POINT_CONNECTION_STATE_CONNECTED
                                   registration_status: REGISTRATION_STATUS_PENDING)pb")},
      set);
  AddUpstream(Parse<v1::GetUpstreamStatusResponse>("state: UPSTREAM_CONNECTION_STATE_CONNECTED "
                                                   "offline_queue_depth: 7"),
              set);
  const std::string text = Text(set);
  EXPECT_THAT(text, HasSubstr("evgate_ocpp_charge_point_connected{charge_point=\"DS60-1\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_ocpp_charge_point_connected{charge_point=\"ICE22-1\"} 0"));
  EXPECT_THAT(text, HasSubstr("evgate_ocpp_charge_point_pending_calls{charge_point=\"DS60-1\"} 2"));
  EXPECT_THAT(text, HasSubstr("evgate_ocpp_messages_total{charge_point=\"DS60-1\",direction=\"in\","
                              "action=\"MeterValues\",result=\"ok\"} 12"));
  EXPECT_THAT(text, HasSubstr("evgate_ocpp_upstream_state{state=\"connected\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_ocpp_upstream_state{state=\"disabled\"} 0"));
  EXPECT_THAT(text, HasSubstr("evgate_ocpp_upstream_queue_length 7"));
}

TEST(SiteMetricsTest, GridModeAndIsland) {
  FamilySet set;
  AddGridState(Parse<v1::GridState>(R"pb(mode: GRID_MODE_OFF_GRID
                                         since { seconds: 1796000000 }
                                         off_grid_box { grid_present: false }
                                         forming_evse_id: "v2x1"
                                         forming_soc_pct: 64
                                         forming_power_w: -7250
                                         forming_discharge_limit_w: 19800)pb"),
               set);
  const std::string text = Text(set);
  EXPECT_THAT(text, HasSubstr("evgate_grid_mode{state=\"off_grid\"} 1"));
  for (const char* other : {"on_grid", "outage_standby", "outage_sleep", "resync"}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("evgate_grid_mode{state=\"", other, "\"} 0")));
  }
  EXPECT_THAT(text, Not(HasSubstr("state=\"unspecified\"")));
  EXPECT_THAT(text, HasSubstr("evgate_grid_mode_since_timestamp_seconds 1796000000"));
  EXPECT_THAT(text, HasSubstr("evgate_grid_box_grid_present 0"));
  EXPECT_THAT(text, HasSubstr("evgate_grid_island_power_watts 7250"));
  EXPECT_THAT(text, HasSubstr("evgate_grid_island_discharge_limit_watts 19800"));
  EXPECT_THAT(text, Not(HasSubstr("evgate_grid_standby_remaining_seconds")));
}

// The countdown is served only while it runs.
TEST(SiteMetricsTest, GridStandbyCountdown) {
  FamilySet standby;
  AddGridState(Parse<v1::GridState>(R"pb(mode: GRID_MODE_OUTAGE_STANDBY
                                         standby_remaining { seconds: 142 nanos: 500000000 })pb"),
               standby);
  std::string text = Text(standby);
  EXPECT_THAT(text, HasSubstr("evgate_grid_standby_remaining_seconds 142.5"));
  EXPECT_THAT(text, Not(HasSubstr("evgate_grid_island_discharge_limit_watts")));

  // A stale countdown in a state that left standby is not served.
  FamilySet sleeping;
  AddGridState(Parse<v1::GridState>(R"pb(mode: GRID_MODE_OUTAGE_SLEEP
                                         standby_remaining { seconds: 3 })pb"),
               sleeping);
  text = Text(sleeping);
  EXPECT_THAT(text, Not(HasSubstr("evgate_grid_standby_remaining_seconds")));
}

// On the grid the island supplies nothing; a box not heard has no grid reading.
TEST(SiteMetricsTest, GridOnGridAndPlainSite) {
  FamilySet on_grid;
  AddGridState(Parse<v1::GridState>("mode: GRID_MODE_ON_GRID since { seconds: 5 }"), on_grid);
  std::string text = Text(on_grid);
  EXPECT_THAT(text, HasSubstr("evgate_grid_mode{state=\"on_grid\"} 1"));
  EXPECT_THAT(text, HasSubstr("evgate_grid_island_power_watts 0"));
  EXPECT_THAT(text, Not(HasSubstr("evgate_grid_box_grid_present")));

  // A site without grid_modes: every mode 0, nothing else made up.
  FamilySet plain;
  AddGridState(Parse<v1::GridState>("mode: GRID_MODE_UNSPECIFIED"), plain);
  text = Text(plain);
  EXPECT_THAT(text, HasSubstr("evgate_grid_mode{state=\"on_grid\"} 0"));
  EXPECT_THAT(text, Not(HasSubstr("evgate_grid_island_power_watts")));
  EXPECT_THAT(text, Not(HasSubstr("evgate_grid_mode_since_timestamp_seconds")));
}

// The catalogue is enforced: a sample of an unknown name, the wrong type or
// the wrong number of labels is refused and reported, not served.
TEST(FamilySetTest, RefusesSamplesTheCatalogueDoesNotHave) {
  FamilySet set;
  set.Gauge("evgate_no_such_metric", {}, 1);
  set.Counter("evgate_up", {"load_balancer"}, 1);  // a gauge
  set.Gauge("evgate_up", {}, 1);                   // one label missing
  set.Gauge("evgate_up", {"session"}, 1);
  EXPECT_EQ(set.errors().size(), 3u);
  const std::string text = prometheus::TextSerializer().Serialize(set.Take());
  EXPECT_THAT(text, Not(HasSubstr("evgate_no_such_metric")));
  EXPECT_THAT(text, HasSubstr("evgate_up{service=\"session\"} 1"));
  EXPECT_THAT(text, Not(HasSubstr("load_balancer")));
}

TEST(FamilySetTest, MergeKeepsCatalogueOrderAndAllSamples) {
  FamilySet a, b;
  a.Gauge("evgate_up", {"session"}, 1);
  b.Gauge("evgate_up", {"load_balancer"}, 0);
  b.Gauge("evgate_build_info", {"1", "r"}, 1);
  a.Merge(std::move(b));
  std::vector<prometheus::MetricFamily> families = a.Take();
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(families[0].name, "evgate_up");
  EXPECT_EQ(families[0].metric.size(), 2u);
  EXPECT_EQ(families[1].name, "evgate_build_info");
}

}  // namespace
}  // namespace evgate::metrics
