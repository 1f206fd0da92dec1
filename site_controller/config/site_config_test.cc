#include "site_controller/config/site_config.h"

#include <cstdlib>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::site {

// Readable gmock output for mismatches.
void PrintTo(const ConfigError& error, std::ostream* os) { *os << error.ToString(); }

namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// Four lines that make a minimal valid site; test bodies start on line 5.
constexpr char kHeader[] =
    "insecure_demo: true\n"
    "site: {id: test-site}\n"
    "grid: {fuse_limit_a: 63}\n"
    "services: {session_database: /var/lib/evgate/test.db}\n";

SiteConfigLoadResult Load(const std::string& body) {
  return LoadSiteConfig(absl::StrCat(kHeader, body), "site.yaml");
}

// Loads a complete file (no header).
SiteConfigLoadResult LoadRaw(const std::string& yaml) { return LoadSiteConfig(yaml, "site.yaml"); }

// Matches a ConfigError at `line` / `path` whose message contains `text`.
::testing::Matcher<const ConfigError&> ErrorAt(int line, const std::string& path,
                                               const std::string& text) {
  return AllOf(Field("line", &ConfigError::line, line), Field("path", &ConfigError::path, path),
               Field("message", &ConfigError::message, HasSubstr(text)));
}

std::vector<std::string> Lines(const SiteConfigLoadResult& result) {
  std::vector<std::string> lines;
  for (const ConfigError& error : result.errors) {
    lines.push_back(error.ToString());
  }
  return lines;
}

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "evgate", "/", path);
}

// A site with buses, devices and one AC and one DC station, for the tests
// that change one thing: lines 5–22 of the file; it ends inside `devices:`,
// so a body may append devices.
constexpr char kDevices[] = R"(ocpp:
  local: {listen: 127.0.0.1:9000, security_profile: 0}
buses:
  - id: can-1
    type: can
    interface: can0
  - id: rs485-1
    type: modbus_rtu
    port: /dev/ttyUSB0
    baud: 9600
devices:
  - id: wallbox-1
    profile: cabur_ev_plus_22kw
    bus: can-1
    address: 1
  - id: ds60-1
    profile: ds60
    charge_point_id: DS60-1
)";

// ---------------------------------------------------------------------------
// The demo and the documented broken example.

TEST(DemoSite, IsValidAndHasTheDocumentedFacts) {
  const SiteConfigLoadResult result = LoadSiteConfigFromFile(Runfile("gateway/sites/demo.yaml"));
  ASSERT_TRUE(result.ok()) << result.ErrorText();
  const SiteConfig& c = result.config;

  EXPECT_TRUE(c.insecure_demo);
  EXPECT_EQ(c.grid.phases, (std::vector<Phase>{Phase::kL1, Phase::kL2, Phase::kL3}));
  EXPECT_EQ(c.grid.fuse_limit_a, (std::vector<double>{63, 63, 63}));
  EXPECT_EQ(c.grid.nominal_voltage_v, 230);
  EXPECT_EQ(c.grid.contract_power_w, 43000);
  EXPECT_EQ(c.grid.export_limit_w, 0);
  EXPECT_EQ(c.grid.meter, "grid-meter");

  int ac = 0;
  int dc = 0;
  for (const StationConfig& station : c.stations) {
    for (const EvseConfig& evse : station.evses) {
      EXPECT_NE(evse.ac.has_value(), evse.dc.has_value()) << evse.id;
      ac += evse.ac.has_value();
      dc += evse.dc.has_value();
    }
  }
  EXPECT_EQ(ac, 4);
  EXPECT_EQ(dc, 3);

  // Three-level circuit tree; the single-phase sub-circuit inherits nothing.
  ASSERT_NE(c.FindCircuit("garage-1ph"), nullptr);
  EXPECT_EQ(c.FindCircuit("garage-1ph")->parent, "garage");
  EXPECT_EQ(c.FindCircuit("garage")->limit_a, (std::vector<double>{32, 32, 32}));

  ASSERT_NE(c.FindEvse("wb2"), nullptr);
  EXPECT_EQ(c.FindEvse("wb2")->phases, (std::vector<Phase>{Phase::kL2, Phase::kL3, Phase::kL1}));
  EXPECT_EQ(c.FindEvse("wb3")->phases, (std::vector<Phase>{Phase::kL1}));
  EXPECT_EQ(c.FindEvse("wb4")->phases, (std::vector<Phase>{Phase::kL2}));
  EXPECT_EQ(c.FindEvse("wb1")->ac->max_current_a, 32);

  const StationConfig* dc_station = c.FindStation("dc");
  ASSERT_NE(dc_station, nullptr);
  EXPECT_EQ(dc_station->max_power_w, 60000);
  ASSERT_THAT(dc_station->evses, SizeIs(2));
  EXPECT_EQ(dc_station->evses[0].connector, 1);
  EXPECT_EQ(dc_station->evses[1].connector, 2);

  const EvseConfig* v2x = c.FindEvse("v2x1");
  ASSERT_NE(v2x, nullptr);
  ASSERT_TRUE(v2x->dc.has_value());
  EXPECT_TRUE(v2x->dc->bidirectional);
  EXPECT_EQ(v2x->dc->soc_min_pct, 30);
  EXPECT_EQ(v2x->dc->soc_max_pct, 100);
  EXPECT_EQ(v2x->dc->max_discharge_power_w, 22000);
  EXPECT_EQ(v2x->dc->max_discharge_power_offgrid_w, 19800);

  EXPECT_EQ(c.FindDevice("grid-meter")->address, 1);
  EXPECT_EQ(c.FindDevice("offgrid-box")->address, 2);
  EXPECT_EQ(c.FindDevice("offgrid-box")->bus, "rs485-1");
  EXPECT_EQ(c.authorization.free_vend_evses, std::vector<std::string>{"wb4"});
  EXPECT_EQ(c.simulation.devices.size(), c.devices.size());
  ASSERT_THAT(c.simulation.vehicles, SizeIs(3));
  EXPECT_EQ(c.simulation.vehicles[0].evse, "wb1");
  EXPECT_EQ(c.simulation.vehicles[0].phases, 3);
  EXPECT_EQ(c.simulation.vehicles[0].id_tag, "04B2C3D4E5F607");
  EXPECT_EQ(c.simulation.vehicles[1].evse, "wb3");
  EXPECT_EQ(c.simulation.vehicles[1].phases, 1);
  EXPECT_EQ(c.simulation.vehicles[2].evse, "dc1");
  EXPECT_EQ(c.simulation.vehicles[2].max_power_w, 30000);
  EXPECT_EQ(c.simulation.vehicles[2].id_tag, "04D4E5F6071829");
  EXPECT_EQ(c.services.session_database, "/var/lib/evgate/demo-sessions.db");
}

TEST(BrokenExample, ProducesExactlyTheDocumentedErrors) {
  // Loaded under the name docs/site-yaml.md shows.
  std::ifstream in(Runfile("gateway/sites/broken-example.yaml"));
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  const std::vector<std::string> lines =
      Lines(LoadSiteConfig(text.str(), "gateway/sites/broken-example.yaml"));
  EXPECT_THAT(
      lines,
      ElementsAre(
          "gateway/sites/broken-example.yaml:11: grid.nominal_voltage_v: 400 V is out of range; "
          "give the "
          "phase-to-neutral voltage, allowed 100–280 (400 V looks like the phase-to-phase "
          "voltage; that is 231 V phase-to-neutral)",
          "gateway/sites/broken-example.yaml:27: buses[1].port: serial port /dev/ttyUSB0 is "
          "already owned by "
          "buses[0] 'rs485-1'; one physical bus has exactly one owner: put all its devices on "
          "'rs485-1'",
          "gateway/sites/broken-example.yaml:36: devices[0].bus: device 'grid-meter' "
          "(eastron_sdm630) talks "
          "Modbus but bus 'can-1' is a can bus; use a modbus_rtu or modbus_tcp bus",
          "gateway/sites/broken-example.yaml:45: devices[2].address: address 1 on bus 'can-1' is "
          "already used "
          "by device 'wallbox-1' (devices[1]); each device on a bus needs its own address",
          "gateway/sites/broken-example.yaml:53: stations[0].evses[0].phases: wired to L3 but "
          "circuit "
          "'garage' has only L1, L2",
          "gateway/sites/broken-example.yaml:54: stations[0].evses[0].max_current_a: 40 exceeds "
          "the maximum "
          "of profile cabur_ev_plus_22kw (32 A); allowed 6–32",
          "gateway/sites/broken-example.yaml:57: stations[1].circuit: unknown circuit 'garge' (did "
          "you mean "
          "'garage'?); known: grid, garage",
          "gateway/sites/broken-example.yaml:61: stations[1].evses[0].max_curent_a: unknown field "
          "'max_curent_a' in an EVSE (did you mean 'max_current_a'?); allowed: id, connector, "
          "phases, min_current_a, max_current_a, current_step_a, failsafe_current_a, "
          "min_power_w, max_power_w, efficiency, failsafe_power_w, bidirectional, "
          "max_discharge_power_w, max_discharge_power_offgrid_w, soc_min_pct, soc_max_pct, "
          "connector_type, priority, groups",
          "gateway/sites/broken-example.yaml:65: authorization.cards[0].uid: '04:A1:B2:C3' is not "
          "a valid "
          "card UID; use 8–20 hex digits (an even number, no separators), e.g. "
          "\"04A1B2C3D4E5F6\"",
          "gateway/sites/broken-example.yaml:70: ocpp.local.security_profile: 0 (no "
          "authentication, no TLS) "
          "is allowed only with 'insecure_demo: true'; use 2 (TLS + basic auth) or 3 (mutual "
          "TLS)",
          "gateway/sites/broken-example.yaml:72: services.tls: required unless 'insecure_demo: "
          "true': the "
          "gRPC APIs must use TLS; add 'tls: {cert_file: ..., key_file: ...}'",
          "gateway/sites/broken-example.yaml:72: services.auth: required unless 'insecure_demo: "
          "true': list who may call the gRPC API, e.g. 'auth: {principals: [{name: "
          "load-balancer, certificate: lb.depot-1, roles: [controller, viewer]}]}' "
          "(docs/security.md)",
          "gateway/sites/broken-example.yaml:73: services.session_database: '/tmp/sessions.db' is "
          "under "
          "/tmp, which is cleared on reboot: the charge records would be lost; use e.g. "
          "/var/lib/evgate/sessions.db"));
}

// ---------------------------------------------------------------------------
// The API around the rules.

TEST(Loader, ReportsAllErrorsOfAFileAtOnceSortedByLine) {
  const SiteConfigLoadResult result = Load(R"(circuits:
  - id: garage
    parent: nowhere
    limit_a: 0
controller:
  tick_ms: 5
  margin_a: fast
  speed: 3
)");
  EXPECT_THAT(
      result.errors,
      ElementsAre(ErrorAt(7, "circuits[0].parent", "unknown parent circuit 'nowhere'"),
                  ErrorAt(8, "circuits[0].limit_a", "must be > 0 A, got 0"),
                  ErrorAt(10, "controller.tick_ms", "5 is out of range; allowed 10–60000 ms"),
                  ErrorAt(11, "controller.margin_a", "expected a number, got 'fast'"),
                  ErrorAt(12, "controller.speed", "unknown field 'speed' in controller")));
}

TEST(Loader, StatusOrWrapperListsEveryErrorOnePerLine) {
  absl::StatusOr<SiteConfig> config = LoadSiteConfigString(
      "site: {id: x}\n"
      "grid: {fuse_limit_a: 0}\n"
      "services: {session_database: db.sqlite}\n",
      "depot.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(config.status().message()),
            "depot.yaml:2: grid.fuse_limit_a: the fuse limit must be > 0 A, got 0\n"
            "depot.yaml:3: services.session_database: 'db.sqlite' is a relative path; use an "
            "absolute path such as /var/lib/evgate/sessions.db, or the charge records would end "
            "up wherever evgate was started\n"
            "depot.yaml:3: services.tls: required unless 'insecure_demo: true': the gRPC APIs "
            "must use TLS; add 'tls: {cert_file: ..., key_file: ...}'\n"
            "depot.yaml:3: services.auth: required unless 'insecure_demo: true': list who may "
            "call the gRPC API, e.g. 'auth: {principals: [{name: load-balancer, certificate: "
            "lb.depot-1, roles: [controller, viewer]}]}' (docs/security.md)");
}

TEST(Loader, StatusOrWrapperReturnsTheConfigWhenValid) {
  absl::StatusOr<SiteConfig> config = LoadSiteConfigString(kHeader, "site.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->site.id, "test-site");
  EXPECT_EQ(config->source_path, "site.yaml");
}

TEST(Loader, MissingFileIsNotFound) {
  const std::string path = Runfile("site_controller/config/testdata/does-not-exist.yaml");
  absl::StatusOr<SiteConfig> config = LoadSiteConfigFile(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("does-not-exist.yaml: cannot open"));
  const SiteConfigLoadResult result = LoadSiteConfigFromFile(path);
  ASSERT_THAT(result.errors, SizeIs(1));
  EXPECT_EQ(result.errors[0].line, 0);
}

TEST(Loader, ResolvesRegisterMapsRelativeToTheFile) {
  const std::string path = Runfile("site_controller/config/testdata/generic-meter-site.yaml");
  const SiteConfigLoadResult result = LoadSiteConfigFromFile(path);
  ASSERT_TRUE(result.ok()) << result.ErrorText();
  EXPECT_EQ(result.config.source_path, path);
  EXPECT_EQ(result.config.devices[0].register_map,
            Runfile("site_controller/config/testdata/maps/main-meter.yaml"));
  std::ifstream map(*result.config.devices[0].register_map);
  EXPECT_TRUE(map.good());
}

TEST(Loader, FillsInEveryDefault) {
  const SiteConfigLoadResult result = Load(R"(buses:
  - {id: rtu, type: modbus_rtu, port: /dev/ttyUSB0, baud: 9600}
  - {id: tcp, type: modbus_tcp, host: 10.0.0.5}
  - {id: can, type: can, interface: can0}
devices:
  - {id: wb, profile: cabur_ev_plus_22kw, bus: can, address: 1}
  - {id: dc, profile: ds60, charge_point_id: DC-1}
stations:
  - {id: wb, device: wb, circuit: grid, evses: [{id: wb}]}
  - {id: dc, device: dc, circuit: grid, evses: [{id: dc1}, {id: dc2}]}
ocpp:
  local: {security_profile: 0}
)");
  ASSERT_TRUE(result.ok()) << result.ErrorText();
  const SiteConfig& c = result.config;
  EXPECT_EQ(c.grid.nominal_voltage_v, defaults::kNominalVoltageV);
  EXPECT_FALSE(c.grid.contract_power_w.has_value());
  EXPECT_EQ(c.buses[0].modbus_rtu->parity, Parity::kNone);
  EXPECT_EQ(c.buses[0].modbus_rtu->data_bits, 8);
  EXPECT_EQ(c.buses[0].modbus_rtu->stop_bits, 1);
  EXPECT_TRUE(c.buses[0].modbus_rtu->rs485);
  EXPECT_EQ(c.buses[1].modbus_tcp->port, 502);
  EXPECT_EQ(c.buses[2].can->bitrate, 250000);
  EXPECT_EQ(c.buses[2].can->transport, CanTransport::kSocketCan);
  EXPECT_EQ(c.devices[0].poll_period_ms, defaults::kPollPeriodMs);

  const EvseConfig& wb = c.stations[0].evses[0];
  EXPECT_EQ(wb.phases, (std::vector<Phase>{Phase::kL1, Phase::kL2, Phase::kL3}));
  ASSERT_TRUE(wb.ac.has_value());
  EXPECT_FALSE(wb.dc.has_value());
  EXPECT_EQ(wb.ac->min_current_a, 6);
  EXPECT_EQ(wb.ac->max_current_a, 32);  // the profile's maximum
  EXPECT_EQ(wb.ac->current_step_a, 0.1);
  EXPECT_EQ(wb.ac->failsafe_current_a, 6);  // controller.failsafe_current_a
  EXPECT_EQ(wb.priority, 0);

  const StationConfig& dc = c.stations[1];
  EXPECT_EQ(dc.max_power_w, 60000);  // the ds60 profile
  EXPECT_EQ(dc.evses[0].connector, 1);
  EXPECT_EQ(dc.evses[1].connector, 2);
  ASSERT_TRUE(dc.evses[0].dc.has_value());
  EXPECT_EQ(dc.evses[0].dc->max_power_w, 60000);
  EXPECT_EQ(dc.evses[0].dc->efficiency, 0.95);
  EXPECT_FALSE(dc.evses[0].dc->bidirectional);

  EXPECT_EQ(c.ocpp.local->listen, "0.0.0.0:9000");
  EXPECT_EQ(c.controller.tick_ms, 1000);
  EXPECT_EQ(c.controller.meter_timeout_ms, 3000);
  EXPECT_EQ(c.services.api_listen, "127.0.0.1:50051");
  EXPECT_EQ(c.services.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(c.authorization.offline_cache_ttl_s, 86400);
  EXPECT_EQ(c.authorization.connection_timeout_s, 120);
}

TEST(Loader, ConnectionTimeoutIsReadAndRangeChecked) {
  const SiteConfigLoadResult ok = Load("authorization: {connection_timeout_s: 300}\n");
  ASSERT_TRUE(ok.ok()) << ok.ErrorText();
  EXPECT_EQ(ok.config.authorization.connection_timeout_s, 300);
  EXPECT_THAT(Load("authorization: {connection_timeout_s: 5}\n").errors,
              ElementsAre(ErrorAt(5, "authorization.connection_timeout_s",
                                  "5 is out of range; allowed 10–3600 s")));
}

TEST(Loader, SiteFailsafeDefaultIsMovedIntoTheEvseRange) {
  const SiteConfigLoadResult result = Load(std::string(kDevices) + R"(controller:
  failsafe_current_a: 10
stations:
  - id: wb
    device: wallbox-1
    circuit: grid
    evses: [{id: wb, min_current_a: 12}]
)");
  ASSERT_TRUE(result.ok()) << result.ErrorText();
  EXPECT_EQ(result.config.stations[0].evses[0].ac->failsafe_current_a, 12);
}

TEST(Loader, RecordsSourceLinesOfFields) {
  const SiteConfigLoadResult result = Load(R"(circuits:
  - id: garage
    parent: grid
    limit_a: 32
)");
  ASSERT_TRUE(result.ok()) << result.ErrorText();
  const SourceLines& source = result.config.circuits[0].source;
  EXPECT_EQ(source.path(), "circuits[0]");
  EXPECT_EQ(source.line(), 6);
  EXPECT_EQ(source.LineOf("limit_a"), 8);
  EXPECT_FALSE(source.Has("phases"));
  EXPECT_EQ(source.LineOf("phases"), 6);
  EXPECT_EQ(source.PathOf("limit_a"), "circuits[0].limit_a");
}

TEST(Loader, ConfigErrorToStringLeavesOutEmptyParts) {
  EXPECT_EQ((ConfigError{"a.yaml", 3, "grid.x", "bad"}.ToString()), "a.yaml:3: grid.x: bad");
  EXPECT_EQ((ConfigError{"a.yaml", 0, "", "cannot open"}.ToString()), "a.yaml: cannot open");
}

// ---------------------------------------------------------------------------
// One test per validation rule (docs/site-yaml.md, "Rules").

TEST(Rule01, YamlSyntaxErrorIsReportedWithItsLine) {
  EXPECT_THAT(LoadRaw("site: {id: t}\nfoo: bar: baz\n").errors,
              ElementsAre(ErrorAt(2, "", "YAML syntax error: illegal map value")));
  EXPECT_THAT(LoadRaw("site: {id: t}\ncircuits:\n  - id: a\n\t  parent: grid\n").errors,
              ElementsAre(ErrorAt(4, "", "YAML syntax error: illegal tab")));
  EXPECT_THAT(Lines(LoadRaw("")), ElementsAre("site.yaml:1: the file is empty; a site needs at "
                                              "least the sections site, grid and services"));
  EXPECT_THAT(LoadRaw("- a\n- b\n").errors,
              ElementsAre(ErrorAt(1, "", "expected a mapping of sections")));
}

TEST(Rule02, UnknownFieldsAreErrorsAtEveryLevel) {
  const SiteConfigLoadResult result = Load(std::string(kDevices) + R"(stations:
  - id: wb
    device: wallbox-1
    circuit: grid
    evses:
      - id: wb
        max_curent_a: 16
circuit: []
)");
  EXPECT_THAT(
      Lines(result),
      ElementsAre(
          HasSubstr("site.yaml:29: stations[0].evses[0].max_curent_a: unknown field "
                    "'max_curent_a' in an EVSE (did you mean 'max_current_a'?); allowed: id, "),
          "site.yaml:30: circuit: unknown field 'circuit' at the top level (did you mean "
          "'circuits'?); allowed: site, grid, circuits, buses, devices, stations, authorization, "
          "ocpp, controller, grid_modes, services, simulation, insecure_demo"));
  // A field of another bus type is unknown for this one.
  EXPECT_THAT(Load("buses:\n  - {id: b, type: modbus_tcp, host: h, baud: 9600}\n").errors,
              ElementsAre(ErrorAt(6, "buses[0].baud",
                                  "unknown field 'baud' for a modbus_tcp bus; allowed: id, type, "
                                  "host, port, timeout_ms, retries")));
  // A field given twice is not silently merged.
  EXPECT_THAT(Load("controller:\n  tick_ms: 100\n  tick_ms: 200\n").errors,
              ElementsAre(ErrorAt(7, "controller.tick_ms",
                                  "field 'tick_ms' is given twice (first on line 6)")));
}

TEST(Rule03, WrongTypesAndBadEnumValuesNameWhatIsAllowed) {
  const SiteConfigLoadResult result = Load(R"(circuits:
  - id: garage
    parent: grid
    limit_a: abc
buses:
  - id: b1
    type: serial
  - id: b2
    type: modbus_rtu
    port: /dev/ttyUSB0
    baud: "9600"
    rs485: yes
    parity: mark
devices:
  - id: m
    profile: eastron_sdm63
    address: 1.5
controller: [1, 2]
)");
  EXPECT_THAT(
      result.errors,
      ElementsAre(
          ErrorAt(8, "circuits[0].limit_a", "expected a number, got 'abc'"),
          ErrorAt(11, "buses[0].type",
                  "'serial' is not a valid bus type; allowed: modbus_rtu, modbus_tcp, can"),
          ErrorAt(15, "buses[1].baud",
                  "expected a whole number, got the quoted text \"9600\"; write it without quotes"),
          ErrorAt(16, "buses[1].rs485", "expected true or false, got 'yes'"),
          ErrorAt(17, "buses[1].parity", "'mark' is not a valid parity; allowed: none, even, odd"),
          ErrorAt(20, "devices[0].profile",
                  "unknown device profile 'eastron_sdm63' (did you mean 'eastron_sdm630'?); "
                  "allowed: eastron_sdm630, generic_meter, heidelberg_energy_control, "
                  "cabur_ev_plus_22kw, cabur_ev_plus_7kw, ds60, ice22_v2x, v2x_offgrid_box"),
          ErrorAt(21, "devices[0].address", "expected a whole number, got '1.5'"),
          ErrorAt(22, "controller", "expected a mapping of 'field: value' lines, got a list")));
}

TEST(Rule04, MissingRequiredFieldsAreReported) {
  EXPECT_THAT(LoadRaw("site: {name: x}\n").errors,
              ElementsAre(ErrorAt(1, "site.id", "required field is missing"),
                          ErrorAt(1, "grid", "required field is missing"),
                          ErrorAt(1, "services", "required field is missing")));
  const SiteConfigLoadResult result = Load(R"(circuits:
  - id: garage
    parent: grid
devices:
  - id: m
    bus: rs485-1
stations:
  - id: s
    circuit: grid
)");
  EXPECT_THAT(result.errors,
              ElementsAre(ErrorAt(6, "circuits[0].limit_a",
                                  "required field is missing; the breaker rating in A"),
                          ErrorAt(9, "devices[0].profile", "required field is missing"),
                          ErrorAt(12, "stations[0].device", "required field is missing"),
                          ErrorAt(12, "stations[0].evses", "required field is missing")));
}

TEST(Rule05, DuplicateIdsOfEveryKindAreReported) {
  const SiteConfigLoadResult result = Load(R"(circuits:
  - {id: grid, parent: grid, limit_a: 20}
  - {id: a, parent: grid, limit_a: 20}
  - {id: a, parent: grid, limit_a: 20}
buses:
  - {id: can-1, type: can, interface: can0}
  - {id: can-1, type: can, interface: can1}
devices:
  - {id: w1, profile: cabur_ev_plus_22kw, bus: can-1, address: 1}
  - {id: w1, profile: cabur_ev_plus_22kw, bus: can-1, address: 2}
  - {id: w3, profile: cabur_ev_plus_22kw, bus: can-1, address: 3}
stations:
  - {id: s1, device: w1, circuit: a, evses: [{id: e1}]}
  - {id: s1, device: w3, circuit: a, evses: [{id: e1}]}
)");
  EXPECT_THAT(
      Lines(result),
      ElementsAre("site.yaml:6: circuits[0].id: 'grid' is reserved for the grid connection (the "
                  "root of the circuit tree); choose another id",
                  "site.yaml:8: circuits[2].id: duplicate circuit id 'a'; first defined at line 7 "
                  "(circuits[1])",
                  "site.yaml:11: buses[1].id: duplicate bus id 'can-1'; first defined at line 10 "
                  "(buses[0])",
                  "site.yaml:14: devices[1].id: duplicate device id 'w1'; first defined at line "
                  "13 (devices[0])",
                  "site.yaml:18: stations[1].id: duplicate station id 's1'; first defined at line "
                  "17 (stations[0])",
                  "site.yaml:18: stations[1].evses[0].id: duplicate EVSE id 'e1'; EVSE ids are "
                  "unique across the site; first defined at line 17 (stations[0].evses[0])"));
}

TEST(Rule05, DuplicateCardUidsConnectorsAndBusAddressesAreReported) {
  const SiteConfigLoadResult result = Load(std::string(kDevices) + R"(  - id: ds60-2
    profile: ds60
    charge_point_id: DS60-2
  - id: wallbox-2
    profile: cabur_ev_plus_22kw
    bus: can-1
    address: 1
stations:
  - id: dc
    device: ds60-1
    circuit: grid
    evses:
      - {id: dc1, connector: 2}
      - {id: dc2, connector: 2}
authorization:
  cards:
    - {uid: "04a1b2c3", name: Van 1}
    - {uid: "04A1B2C3", name: Van 2}
)");
  EXPECT_THAT(result.errors,
              ElementsAre(ErrorAt(29, "devices[3].address",
                                  "address 1 on bus 'can-1' is already used by device "
                                  "'wallbox-1' (devices[0])"),
                          ErrorAt(36, "stations[0].evses[1].connector",
                                  "connector 2 is already used by EVSE 'dc1' of this station"),
                          ErrorAt(40, "authorization.cards[1].uid",
                                  "card UID 04A1B2C3 is already used by authorization.cards[0] "
                                  "('Van 1'); each card is listed once")));
}

TEST(Rule06, UnknownReferencesAreReportedWithTheKnownIds) {
  const SiteConfigLoadResult result = Load(R"(circuits:
  - {id: garage, parent: garag, limit_a: 32, meter: m9}
devices:
  - {id: w1, profile: cabur_ev_plus_22kw, bus: can-9, address: 1}
stations:
  - {id: s1, device: w9, circuit: garage, evses: [{id: e1}]}
  - {id: s2, device: w1, circuit: shed, evses: [{id: e2, groups: [fleet]}]}
authorization:
  free_vend_evses: [e3]
  cards:
    - {uid: "04A1B2C3", evses: [e1, e4], groups: [fleets]}
simulation:
  devices: [w1, w2]
)");
  EXPECT_THAT(
      Lines(result),
      ElementsAre(
          "site.yaml:6: circuits[0].parent: unknown parent circuit 'garag' (did you mean "
          "'garage'?); known: grid, garage",
          "site.yaml:6: circuits[0].meter: unknown device 'm9'; known: w1",
          "site.yaml:8: devices[0].bus: unknown bus 'can-9'; none is defined",
          "site.yaml:10: stations[0].device: unknown device 'w9' (did you mean 'w1'?); known: w1",
          "site.yaml:11: stations[1].circuit: unknown circuit 'shed'; known: grid, garage",
          "site.yaml:13: authorization.free_vend_evses[0]: unknown EVSE 'e3' (did you mean "
          "'e1'?); known: e1, e2",
          "site.yaml:15: authorization.cards[0].evses[1]: unknown EVSE 'e4' (did you mean "
          "'e1'?); known: e1, e2",
          "site.yaml:15: authorization.cards[0].groups[0]: unknown group 'fleets' (did you mean "
          "'fleet'?); known: fleet (a group exists when an EVSE lists it in groups)",
          "site.yaml:17: simulation.devices[1]: unknown device 'w2' (did you mean 'w1'?); "
          "known: w1"));
  EXPECT_THAT(LoadRaw("insecure_demo: true\nsite: {id: s}\n"
                      "services: {session_database: /var/lib/evgate/s.db}\n"
                      "grid: {fuse_limit_a: 63, meter: gm}\n")
                  .errors,
              ElementsAre(ErrorAt(4, "grid.meter", "unknown device 'gm'; none is defined")));
}

TEST(Rule07, CircuitCyclesNameEveryCircuitOnceWithTheCycle) {
  const SiteConfigLoadResult result = Load(R"(circuits:
  - {id: a, parent: c, limit_a: 10}
  - {id: b, parent: a, limit_a: 10}
  - {id: c, parent: b, limit_a: 10}
  - {id: d, parent: c, limit_a: 10}
  - {id: self, parent: self, limit_a: 10}
)");
  EXPECT_THAT(Lines(result),
              ElementsAre("site.yaml:6: circuits[0].parent: circuit 'a' is in a cycle: a -> c -> "
                          "b -> a; every circuit must lead up to 'grid'",
                          "site.yaml:7: circuits[1].parent: circuit 'b' is in a cycle: b -> a -> "
                          "c -> b; every circuit must lead up to 'grid'",
                          "site.yaml:8: circuits[2].parent: circuit 'c' is in a cycle: c -> b -> "
                          "a -> c; every circuit must lead up to 'grid'",
                          "site.yaml:10: circuits[4].parent: circuit 'self' is in a cycle: self "
                          "-> self; every circuit must lead up to 'grid'"));
}

TEST(Rule08, CircuitPhasesMustBeASubsetOfTheParentsAndLimitsPositive) {
  const SiteConfigLoadResult result = Load(R"(circuits:
  - id: garage
    parent: grid
    phases: [L1, L2]
    limit_a: [80, 80]
  - id: shed
    parent: garage
    phases: [L2, L3]
    limit_a: [16, 16, 16]
  - id: attic
    parent: garage
    limit_a: [10, -1]
  - id: pump
    parent: attic
    phases: [L1, L1]
    limit_a: 10
)");
  // garage's 80 A above the grid's 63 A is fine: the grid fuse constrains.
  EXPECT_THAT(
      Lines(result),
      ElementsAre("site.yaml:12: circuits[1].phases: L3 is not a phase of circuit 'garage' (L1, "
                  "L2); a circuit can only use its parent's phases",
                  "site.yaml:13: circuits[1].limit_a: 3 values given for 2 phases (L2, L3); give "
                  "one per phase, in that order, or a single number for all",
                  "site.yaml:16: circuits[2].limit_a: the limit must be > 0 A, got -1",
                  "site.yaml:19: circuits[3].phases: L1 is listed twice; list each phase at most "
                  "once"));
  EXPECT_EQ(result.config.circuits[2].phases, (std::vector<Phase>{Phase::kL1, Phase::kL2}));
}

TEST(Rule09, EvsePhasesMatchTheProfileAndTheCircuit) {
  const SiteConfigLoadResult result = Load(R"(circuits:
  - {id: garage, parent: grid, phases: [L1, L2], limit_a: 32}
buses:
  - {id: can-1, type: can, interface: can0}
devices:
  - {id: w1, profile: cabur_ev_plus_22kw, bus: can-1, address: 1}
  - {id: w2, profile: cabur_ev_plus_22kw, bus: can-1, address: 2}
  - {id: w3, profile: cabur_ev_plus_7kw, bus: can-1, address: 3}
  - {id: w4, profile: cabur_ev_plus_7kw, bus: can-1, address: 4}
  - {id: w5, profile: cabur_ev_plus_7kw, bus: can-1, address: 5}
stations:
  - {id: s1, device: w1, circuit: grid, evses: [{id: e1, phases: [L1, L2]}]}
  - {id: s2, device: w2, circuit: grid, evses: [{id: e2, phases: [L1]}]}
  - {id: s3, device: w3, circuit: grid, evses: [{id: e3, phases: [L2, L3, L1]}]}
  - {id: s4, device: w4, circuit: garage, evses: [{id: e4, phases: [L3]}]}
  - {id: s5, device: w5, circuit: grid, evses: [{id: e5}]}
)");
  EXPECT_THAT(
      Lines(result),
      ElementsAre("site.yaml:16: stations[0].evses[0].phases: give 1 phase (single-phase) or 3 "
                  "distinct phases (three-phase), got [L1, L2]",
                  "site.yaml:17: stations[1].evses[0].phases: cabur_ev_plus_22kw is three-phase: "
                  "give 3 distinct phases, e.g. [L1, L2, L3] or a rotation such as [L2, L3, L1]",
                  "site.yaml:18: stations[2].evses[0].phases: cabur_ev_plus_7kw is single-phase: "
                  "give exactly one phase, e.g. [L1]",
                  "site.yaml:19: stations[3].evses[0].phases: wired to L3 but circuit 'garage' "
                  "has only L1, L2",
                  "site.yaml:20: stations[4].evses[0].phases: required field is missing; device "
                  "'w5' uses profile cabur_ev_plus_7kw (AC wallbox) and is single-phase: give the "
                  "site phase it is wired to, e.g. [L1]"));
}

TEST(Rule10, AcCurrentsStayWithinIecAndProfileLimits) {
  const SiteConfigLoadResult result =
      Load(std::string(kDevices) +
           R"(  - {id: wallbox-2, profile: cabur_ev_plus_22kw, bus: can-1, address: 2}
  - {id: wallbox-3, profile: cabur_ev_plus_22kw, bus: can-1, address: 3}
stations:
  - id: wb1
    device: wallbox-1
    circuit: grid
    evses:
      - id: wb1
        min_current_a: 5
        max_current_a: 40
        current_step_a: 0
  - id: wb2
    device: wallbox-2
    circuit: grid
    evses:
      - id: wb2
        min_current_a: 20
        max_current_a: 16
        failsafe_current_a: 3
  - id: wb3
    device: wallbox-3
    circuit: grid
    evses:
      - {id: wb3, failsafe_current_a: 0, min_power_w: 100}
)");
  EXPECT_THAT(
      Lines(result),
      ElementsAre("site.yaml:31: stations[0].evses[0].min_current_a: 5 is below 6 A, the lowest "
                  "current IEC 61851-1 allows; allowed 6–32",
                  "site.yaml:32: stations[0].evses[0].max_current_a: 40 exceeds the maximum of "
                  "profile cabur_ev_plus_22kw (32 A); allowed 6–32",
                  "site.yaml:33: stations[0].evses[0].current_step_a: must be > 0 A, got 0",
                  "site.yaml:40: stations[1].evses[0].max_current_a: 16 is below min_current_a "
                  "(20 A); allowed 6–32",
                  "site.yaml:41: stations[1].evses[0].failsafe_current_a: 3 must be 0 (pause) or "
                  "within [min_current_a, max_current_a] = [20, 16]",
                  "site.yaml:46: stations[2].evses[0].min_power_w: applies to DC chargers only; "
                  "device 'wallbox-3' uses profile cabur_ev_plus_22kw (AC wallbox)"));
}

TEST(Rule10, DcPowerStaysWithinTheStationAndProfile) {
  const SiteConfigLoadResult result = Load(std::string(kDevices) + R"(stations:
  - id: dc
    device: ds60-1
    circuit: grid
    max_power_w: 70000
    evses:
      - id: dc1
        min_power_w: 5000
        max_power_w: 4000
        efficiency: 1.2
        failsafe_power_w: 9000
        bidirectional: true
        max_current_a: 32
)");
  EXPECT_THAT(
      Lines(result),
      ElementsAre("site.yaml:27: stations[0].max_power_w: 70000 exceeds the maximum of profile "
                  "ds60 (60000 W); allowed up to 60000",
                  "site.yaml:30: stations[0].evses[0].min_power_w: 5000 is above max_power_w "
                  "(4000 W)",
                  "site.yaml:32: stations[0].evses[0].efficiency: 1.2 is out of range; allowed "
                  "0.5–1.0 (DC output / AC input, e.g. 0.95)",
                  "site.yaml:33: stations[0].evses[0].failsafe_power_w: 9000 is out of range; "
                  "allowed 0–4000 (0 = pause)",
                  "site.yaml:34: stations[0].evses[0].bidirectional: profile ds60 cannot "
                  "discharge; bidirectional: true needs a bidirectional (V2X) profile: ice22_v2x",
                  "site.yaml:35: stations[0].evses[0].max_current_a: applies to AC wallboxes "
                  "only; device 'ds60-1' uses profile ds60 (DC charger)"));
}

TEST(Rule10, BidirectionalLimitsStayWithinTheProfile) {
  const SiteConfigLoadResult result = Load(R"(devices:
  - {id: v2x, profile: ice22_v2x, charge_point_id: ICE-1}
  - {id: v2x-b, profile: ice22_v2x, charge_point_id: ICE-2}
ocpp:
  local: {security_profile: 0}
stations:
  - id: v2x
    device: v2x
    circuit: grid
    evses:
      - id: v2x
        bidirectional: true
        max_discharge_power_w: 25000
        max_discharge_power_offgrid_w: 22000
        soc_min_pct: 80
        soc_max_pct: 70
  - id: v2x-b
    device: v2x-b
    circuit: grid
    evses:
      - {id: v2x-b, soc_min_pct: 20}
)");
  EXPECT_THAT(
      Lines(result),
      ElementsAre("site.yaml:17: stations[0].evses[0].max_discharge_power_w: 25000 exceeds the "
                  "maximum of profile ice22_v2x (22000 W on grid); allowed up to 22000",
                  "site.yaml:18: stations[0].evses[0].max_discharge_power_offgrid_w: 22000 "
                  "exceeds the maximum of profile ice22_v2x (19800 W off grid); allowed up to "
                  "19800",
                  "site.yaml:19: stations[0].evses[0].soc_min_pct: soc_min_pct (80) must be below "
                  "soc_max_pct (70)",
                  "site.yaml:25: stations[1].evses[0].soc_min_pct: applies to bidirectional (V2X) "
                  "EVSEs only; set 'bidirectional: true' to use it"));
}

TEST(Rule11, DeviceProfileMustMatchItsBus) {
  const SiteConfigLoadResult result =
      Load(std::string(kDevices) + R"(  - {id: m1, profile: eastron_sdm630, bus: can-1, address: 1}
  - {id: w2, profile: cabur_ev_plus_7kw, bus: rs485-1, address: 2}
  - {id: dc2, profile: ds60, bus: rs485-1, address: 3}
  - {id: m2, profile: eastron_sdm630, bus: rs485-1, address: 248}
  - {id: w3, profile: cabur_ev_plus_7kw, bus: can-1, address: 64}
  - {id: w4, profile: cabur_ev_plus_7kw, bus: can-1}
  - {id: m3, profile: eastron_sdm630, charge_point_id: X, bus: rs485-1, address: 4}
  - {id: dc3, profile: ds60, charge_point_id: DS60-1}
  - {id: hb, profile: heidelberg_energy_control, bus: rs485-1, address: 5}
)");
  EXPECT_THAT(
      Lines(result),
      ElementsAre(
          "site.yaml:23: devices[2].bus: device 'm1' (eastron_sdm630) talks Modbus but bus "
          "'can-1' is a can bus; use a modbus_rtu or modbus_tcp bus",
          "site.yaml:24: devices[3].bus: device 'w2' (cabur_ev_plus_7kw) talks CAN but bus "
          "'rs485-1' is a modbus_rtu bus; use a can bus",
          "site.yaml:25: devices[4].bus: does not apply to ds60 (DC charger, OCPP): the charger "
          "connects to evgate's OCPP server (ocpp.local); remove this line",
          "site.yaml:25: devices[4].address: does not apply to ds60 (DC charger, OCPP): the "
          "charger connects to evgate's OCPP server (ocpp.local); remove this line",
          "site.yaml:25: devices[4].charge_point_id: required field is missing; ds60 is an OCPP "
          "charger: give the Charger ID set in the charger, e.g. DS60-DEPOT-01",
          "site.yaml:26: devices[5].address: 248 is out of range for eastron_sdm630; allowed "
          "1–247 (the Modbus unit id)",
          "site.yaml:27: devices[6].address: 64 is out of range for cabur_ev_plus_7kw; allowed "
          "1–63 (the CAN address, Cabur CANAddr)",
          "site.yaml:28: devices[7].address: required field is missing; give the device's CAN "
          "address, allowed 1–63",
          "site.yaml:29: devices[8].charge_point_id: applies to OCPP chargers only; this device "
          "uses profile eastron_sdm630 (meter, Modbus)",
          "site.yaml:30: devices[9].charge_point_id: charge_point_id 'DS60-1' is already used by "
          "device 'ds60-1' (devices[1]); each charger needs its own",
          "site.yaml:31: devices[10].bus: heidelberg_energy_control talks 19200 8E1 only, but "
          "bus 'rs485-1' is set to 9600 8N1; all devices on one RS-485 bus use the same "
          "settings"));
}

TEST(Rule12, APhysicalBusHasExactlyOneOwner) {
  const SiteConfigLoadResult result = Load(R"(buses:
  - {id: rs485-1, type: modbus_rtu, port: /dev/ttyUSB0, baud: 9600}
  - {id: rs485-2, type: modbus_rtu, port: /dev/ttyUSB0, baud: 9600}
  - {id: can-a, type: can, interface: can0}
  - {id: can-b, type: can, interface: can0}
  - {id: tcp-a, type: modbus_tcp, host: 10.0.0.9}
  - {id: tcp-b, type: modbus_tcp, host: 10.0.0.9, port: 502}
  - {id: tcp-c, type: modbus_tcp, host: 10.0.0.9, port: 503}
)");
  EXPECT_THAT(
      Lines(result),
      ElementsAre("site.yaml:7: buses[1].port: serial port /dev/ttyUSB0 is already owned by "
                  "buses[0] 'rs485-1'; one physical bus has exactly one owner: put all its "
                  "devices on 'rs485-1'",
                  "site.yaml:9: buses[3].interface: CAN interface can0 is already owned by "
                  "buses[2] 'can-a'; one physical bus has exactly one owner: put all its devices "
                  "on 'can-a'",
                  "site.yaml:11: buses[5].host: Modbus TCP server 10.0.0.9:502 is already owned "
                  "by buses[4] 'tcp-a'; one physical bus has exactly one owner: put all its "
                  "devices on 'tcp-a'"));
}

TEST(Rule13, StationsUseOneChargerEachWithinItsConnectorCount) {
  const SiteConfigLoadResult result = Load(
      std::string(kDevices) + R"(  - {id: m1, profile: eastron_sdm630, bus: rs485-1, address: 1}
circuits:
  - {id: garage, parent: grid, limit_a: 32, meter: wallbox-1}
stations:
  - {id: s1, device: m1, circuit: grid, evses: [{id: e1}]}
  - {id: s2, device: wallbox-1, circuit: grid, evses: [{id: e2}, {id: e3}]}
  - {id: s3, device: wallbox-1, circuit: grid, evses: [{id: e4}]}
  - {id: s4, device: ds60-1, circuit: grid, evses: [{id: e5}, {id: e6, connector: 3}]}
)");
  EXPECT_THAT(
      Lines(result),
      ElementsAre("site.yaml:25: circuits[0].meter: device 'wallbox-1' uses profile "
                  "cabur_ev_plus_22kw (AC wallbox); a meter must use a meter profile: "
                  "eastron_sdm630, generic_meter",
                  "site.yaml:27: stations[0].device: device 'm1' uses profile eastron_sdm630 "
                  "(meter); a station needs an AC wallbox or a DC charger",
                  "site.yaml:28: stations[1].evses: 2 EVSEs given, but cabur_ev_plus_22kw has 1 "
                  "connector; give one EVSE per connector",
                  "site.yaml:28: stations[1].evses[1].connector: 2 is out of range for "
                  "cabur_ev_plus_22kw; allowed 1–1",
                  "site.yaml:29: stations[2].device: device 'wallbox-1' is already used by "
                  "station 's2' (stations[1]); one charger is one station",
                  "site.yaml:30: stations[3].evses[1].connector: 3 is out of range for ds60; "
                  "allowed 1–2 (1 = left, 2 = right)"));
}

TEST(Rule14, GridLimitsAreInRange) {
  const SiteConfigLoadResult result = LoadRaw(R"(insecure_demo: true
site: {id: s}
services: {session_database: /var/lib/evgate/s.db}
grid:
  fuse_limit_a: [63, 0, 63]
  nominal_voltage_v: 50
  contract_power_w: 0
  export_limit_w: -5
  phases: [L1, L2, L3]
)");
  EXPECT_THAT(
      Lines(result),
      ElementsAre(
          "site.yaml:5: grid.fuse_limit_a: the fuse limit must be > 0 A, got 0",
          "site.yaml:6: grid.nominal_voltage_v: 50 V is out of range; give the phase-to-neutral "
          "voltage, allowed 100–280",
          "site.yaml:7: grid.contract_power_w: must be > 0 W, got 0; remove the line if there is "
          "no contract limit",
          "site.yaml:8: grid.export_limit_w: must be >= 0 W (0 = no export allowed), got -5"));
}

TEST(Rule15, ControllerSettingsAreInRange) {
  const SiteConfigLoadResult result = Load(R"(controller:
  margin_a: -1
  ramp_up_a_per_s: 0
  hysteresis_a: -0.5
  tick_ms: 70000
  min_pause_s: -1
  failsafe_current_a: 3
  meter_timeout_ms: 50
)");
  EXPECT_THAT(Lines(result),
              ElementsAre("site.yaml:6: controller.margin_a: must be >= 0 A, got -1",
                          "site.yaml:7: controller.ramp_up_a_per_s: must be > 0 A/s, got 0",
                          "site.yaml:8: controller.hysteresis_a: must be >= 0 A, got -0.5",
                          "site.yaml:9: controller.tick_ms: 70000 is out of range; allowed "
                          "10–60000 ms",
                          "site.yaml:10: controller.min_pause_s: -1 is out of range; allowed "
                          "0–86400 s",
                          "site.yaml:11: controller.failsafe_current_a: 3 must be 0 (pause) or "
                          "6–80 A (6 A is the IEC 61851-1 minimum)",
                          "site.yaml:12: controller.meter_timeout_ms: 50 is too short; allowed "
                          "100 ms or more"));
  const SiteConfigLoadResult slow_meter = LoadRaw(R"(insecure_demo: true
site: {id: s}
services: {session_database: /var/lib/evgate/s.db}
grid: {fuse_limit_a: 63, meter: gm}
buses: [{id: rs485, type: modbus_rtu, port: /dev/ttyUSB0, baud: 9600}]
devices: [{id: gm, profile: eastron_sdm630, bus: rs485, address: 1, poll_period_ms: 2000}]
controller: {meter_timeout_ms: 3000}
)");
  EXPECT_THAT(Lines(slow_meter),
              ElementsAre("site.yaml:7: controller.meter_timeout_ms: 3000 ms is shorter than two "
                          "polls of the grid meter 'gm' (2 × 2000 ms = 4000 ms); one late answer "
                          "would trip the failsafe"));
}

// Bad inputs tried: the file missing under profile 2, given under profile 3,
// empty under profile 1, and on a Modbus device.
TEST(Rule16, AChargersPasswordFileFollowsTheLocalSecurityProfile) {
  const std::string header =
      "site: {id: s}\n"
      "grid: {fuse_limit_a: 63}\n"
      "services: {session_database: /var/lib/evgate/s.db, tls: {cert_file: c, key_file: k}, "
      "auth: {principals: [{name: ops, token_file: /etc/evgate/ops.token, roles: [operator]}]}}\n";
  const std::string profile2 =
      "ocpp: {local: {security_profile: 2, tls_cert_file: c.pem, tls_key_file: k.pem}}\n";
  EXPECT_THAT(
      LoadRaw(header + profile2 + "devices: [{id: dc, profile: ds60, charge_point_id: DC-1}]\n")
          .errors,
      ElementsAre(ErrorAt(5, "devices[0].password_file",
                          "required field is missing; ocpp.local uses security profile 2 "
                          "(basic auth): give the file holding this charger's password")));

  const SiteConfigLoadResult ok = LoadRaw(header + profile2 +
                                          "devices: [{id: dc, profile: ds60, charge_point_id: "
                                          "DC-1, password_file: /run/secrets/dc}]\n");
  ASSERT_TRUE(ok.ok()) << ok.ErrorText();
  EXPECT_EQ(ok.config.devices[0].password_file, "/run/secrets/dc");

  EXPECT_THAT(
      LoadRaw(header + "ocpp: {local: {security_profile: 1}}\n" +
              "devices: [{id: dc, profile: ice22_v2x, charge_point_id: V-1, password_file: ''}]\n")
          .errors,
      ElementsAre(ErrorAt(5, "devices[0].password_file", "must not be empty")));

  EXPECT_THAT(
      LoadRaw(header +
              "ocpp: {local: {security_profile: 3, tls_cert_file: c.pem, tls_key_file: k.pem, "
              "ca_file: ca.pem}}\n" +
              "devices: [{id: dc, profile: ds60, charge_point_id: DC-1, password_file: /p}]\n")
          .errors,
      ElementsAre(ErrorAt(5, "devices[0].password_file",
                          "applies to security profiles 1 and 2 only; ocpp.local uses profile 3 "
                          "(client certificates, no password)")));

  EXPECT_THAT(
      LoadRaw(header + "buses: [{id: rs485, type: modbus_rtu, port: /dev/ttyUSB0, baud: 9600}]\n" +
              "devices: [{id: gm, profile: eastron_sdm630, bus: rs485, address: 1, "
              "password_file: /p}]\n")
          .errors,
      ElementsAre(ErrorAt(5, "devices[0].password_file",
                          "applies to OCPP chargers only; this device uses profile")));
}

TEST(Rule16, OcppSecuritySettingsAreConsistent) {
  const std::string secure_header =
      "site: {id: s}\n"
      "grid: {fuse_limit_a: 63}\n"
      "services: {session_database: /var/lib/evgate/s.db, tls: {cert_file: c, key_file: k}, "
      "auth: {principals: [{name: ops, token_file: /etc/evgate/ops.token, roles: [operator]}]}}\n"
      "devices: [{id: dc, profile: ds60, charge_point_id: DC-1}]\n";
  EXPECT_THAT(LoadRaw(secure_header).errors,
              ElementsAre(ErrorAt(4, "devices[0].profile",
                                  "device 'dc' (ds60) connects over OCPP, but ocpp.local is not "
                                  "configured")));
  EXPECT_THAT(LoadRaw(secure_header + R"(ocpp:
  local:
    security_profile: 0
  upstream:
    url: ws://csms.example.com/ocpp
    charge_point_id: evgate-1
    security_profile: 2
)")
                  .errors,
              ElementsAre(ErrorAt(7, "ocpp.local.security_profile",
                                  "0 (no authentication, no TLS) is allowed only with "
                                  "'insecure_demo: true'"),
                          ErrorAt(8, "ocpp.upstream.password_file",
                                  "required for security profile 2 (basic auth)"),
                          ErrorAt(9, "ocpp.upstream.url",
                                  "ws:// is unencrypted; security profile 2 needs a wss:// URL")));
  EXPECT_THAT(
      LoadRaw(secure_header + R"(ocpp:
  local:
    security_profile: 3
    tls_cert_file: /etc/evgate/ocpp.pem
  upstream:
    url: wss://csms.example.com/ocpp
    charge_point_id: evgate/1
    security_profile: 1
    password_file: /etc/evgate/csms-password
)")
          .errors,
      ElementsAre(
          ErrorAt(6, "ocpp.local.tls_key_file",
                  "required for security profile 3 (TLS); give the PEM private "
                  "key"),
          ErrorAt(6, "ocpp.local.ca_file", "required for security profile 3 (mutual TLS)"),
          ErrorAt(10, "ocpp.upstream.url", "wss:// uses TLS, but security profile 1 has none"),
          ErrorAt(11, "ocpp.upstream.charge_point_id",
                  "'evgate/1' is not a valid charge point id")));
  EXPECT_THAT(LoadRaw(secure_header + R"(ocpp:
  local: {security_profile: 4, tls_cert_file: a, tls_key_file: b}
  upstream: {url: https://csms, charge_point_id: e, security_profile: 3}
)")
                  .errors,
              ElementsAre(ErrorAt(6, "ocpp.local.security_profile",
                                  "4 is not an OCPP security profile; allowed 0 (demo only), 1 "
                                  "basic auth, 2 TLS + basic auth, 3 mutual TLS"),
                          ErrorAt(7, "ocpp.upstream.url",
                                  "'https://csms' is not a ws:// or "
                                  "wss:// URL"),
                          ErrorAt(7, "ocpp.upstream.client_cert_file",
                                  "required for security profile 3 (mutual TLS)"),
                          ErrorAt(7, "ocpp.upstream.client_key_file",
                                  "required for security profile 3 (mutual TLS)")));
}

TEST(Rule17, ServicesKeepRecordsAndUseTls) {
  EXPECT_THAT(LoadRaw(R"(site: {id: s}
grid: {fuse_limit_a: 63}
services:
  session_database: sessions.db
  api_listen: localhost
  metrics_listen: 127.0.0.1:0
  session: {listen: "[::1]:7001", endpoint: "127.0.0.1:0"}
)")
                  .errors,
              ElementsAre(ErrorAt(3, "services.tls", "required unless 'insecure_demo: true'"),
                          ErrorAt(3, "services.auth", "required unless 'insecure_demo: true'"),
                          ErrorAt(4, "services.session_database",
                                  "'sessions.db' is a relative path; use an absolute path"),
                          ErrorAt(5, "services.api_listen",
                                  "'localhost' is not a host:port address; write e.g. "
                                  "127.0.0.1:9000 or [::1]:9000, port 0–65535 (0 = pick a free "
                                  "port)"),
                          ErrorAt(7, "services.session.endpoint",
                                  "'127.0.0.1:0' is not a host:port address; write e.g. "
                                  "127.0.0.1:9000 or [::1]:9000, port 1–65535")));
  EXPECT_THAT(LoadRaw("insecure_demo: true\nsite: {id: s}\ngrid: {fuse_limit_a: 63}\n"
                      "ocpp: {local: {listen: '0.0.0.0:50051', security_profile: 0}}\n"
                      "services: {session_database: /var/lib/evgate/s.db}\n")
                  .errors,
              ElementsAre(ErrorAt(5, "services.api_listen",
                                  "port 50051 is already used by ocpp.local.listen "
                                  "(0.0.0.0:50051)")));
  EXPECT_THAT(LoadRaw("insecure_demo: true\nsite: {id: s}\ngrid: {fuse_limit_a: 63}\n"
                      "services: {session_database: /tmp/s.db}\n")
                  .errors,
              ElementsAre(ErrorAt(4, "services.session_database",
                                  "is under /tmp, which is cleared on reboot: the charge records "
                                  "would be lost")));
}

TEST(Rule17, TheApiIsAuthorizedOutsideTheDemo) {
  const std::string head =
      "site: {id: s}\n"
      "grid: {fuse_limit_a: 63}\n"
      "services:\n"
      "  session_database: /var/lib/evgate/s.db\n";
  // A well-formed principal list is accepted and read.
  const SiteConfigLoadResult good = LoadRaw(head + R"(  tls:
    cert_file: /etc/evgate/server.pem
    key_file: /etc/evgate/server.key
    client_ca_file: /etc/evgate/ca.pem
    client_cert_file: /etc/evgate/services.pem
    client_key_file: /etc/evgate/services.key
  auth:
    principals:
      - {name: load-balancer, certificate: lb.depot-1, roles: [controller, viewer]}
      - {name: bms, token_file: /etc/evgate/tokens/bms, roles: [integrator]}
)");
  ASSERT_THAT(good.errors, ::testing::IsEmpty());
  ASSERT_EQ(good.config.services.auth.principals.size(), 2u);
  EXPECT_EQ(good.config.services.auth.principals[0].certificate, "lb.depot-1");
  EXPECT_THAT(good.config.services.auth.principals[0].roles, ElementsAre("controller", "viewer"));
  EXPECT_EQ(good.config.services.auth.principals[1].token_file, "/etc/evgate/tokens/bms");
  EXPECT_EQ(good.config.services.tls->client_cert_file, "/etc/evgate/services.pem");

  EXPECT_THAT(
      LoadRaw(head + R"(  tls: {cert_file: c, key_file: k, client_cert_file: x}
  auth:
    principals:
      - {name: a, certificate: lb, roles: [root]}
      - {name: a, token_file: tokens/a, roles: []}
      - {name: b, roles: [viewer]}
      - {name: c, certificate: lb, token_file: /t, roles: [viewer]}
)")
          .errors,
      ElementsAre(
          ErrorAt(5, "services.tls.client_cert_file",
                  "client_cert_file and client_key_file go together"),
          ErrorAt(5, "services.tls.client_ca_file",
                  "required when a principal is identified by its certificate"),
          ErrorAt(8, "services.auth.principals[0].roles[0]",
                  "'root' is not a role; allowed: viewer, integrator, operator, "
                  "controller"),
          ErrorAt(9, "services.auth.principals[1].name", "listed twice"),
          ErrorAt(9, "services.auth.principals[1].token_file",
                  "'tokens/a' is not an absolute path"),
          ErrorAt(9, "services.auth.principals[1].roles", "at least one role"),
          ErrorAt(10, "services.auth.principals[2].name", "exactly one of 'certificate'"),
          ErrorAt(11, "services.auth.principals[3].token_file", "exactly one of 'certificate'"),
          ErrorAt(11, "services.auth.principals[3].certificate",
                  "already belongs to another principal")));
  // The demo needs none of it.
  EXPECT_THAT(LoadRaw("insecure_demo: true\n" + head).errors, ::testing::IsEmpty());
}

TEST(Rule18, CardUidsAndValidityWindowsAreChecked) {
  const SiteConfigLoadResult result = Load(R"(authorization:
  cards:
    - {uid: "04a1b2c3d4", name: ok, blocked: true, master: true}
    - {uid: "04A1B2C"}
    - {uid: "04A1B2"}
    - {uid: "04A1B2C3D4E5F6A7B8C9D0"}
    - {uid: "04A1B2ZZ"}
    - uid: "04A1B2C3"
      valid_from: 2027-01-01T00:00:00Z
      valid_until: 2026-01-01T00:00:00Z
    - {uid: "05A1B2C3", valid_until: 2026-01-01}
)");
  EXPECT_THAT(
      result.errors,
      ElementsAre(ErrorAt(8, "authorization.cards[1].uid", "'04A1B2C' is not a valid card UID"),
                  ErrorAt(9, "authorization.cards[2].uid", "'04A1B2' is not a valid card UID"),
                  ErrorAt(10, "authorization.cards[3].uid",
                          "'04A1B2C3D4E5F6A7B8C9D0' is not a valid card UID"),
                  ErrorAt(11, "authorization.cards[4].uid", "'04A1B2ZZ' is not a valid card UID"),
                  ErrorAt(14, "authorization.cards[5].valid_until",
                          "2026-01-01T00:00:00+00:00 is not after valid_from "
                          "2027-01-01T00:00:00+00:00"),
                  ErrorAt(15, "authorization.cards[6].valid_until",
                          "'2026-01-01' is not an RFC 3339 date-time; write e.g. "
                          "2026-01-01T00:00:00Z")));
  // UIDs are normalised to upper case; blocked + master together is allowed.
  EXPECT_EQ(result.config.authorization.cards[0].uid, "04A1B2C3D4");
  EXPECT_TRUE(result.config.authorization.cards[0].blocked);
  EXPECT_TRUE(result.config.authorization.cards[0].master);
}

TEST(Rule19, GridMeterMustBeAMeterProfile) {
  const SiteConfigLoadResult result = LoadRaw(R"(insecure_demo: true
site: {id: s}
services: {session_database: /var/lib/evgate/s.db}
grid: {fuse_limit_a: 63, meter: box}
buses: [{id: rs485, type: modbus_rtu, port: /dev/ttyUSB0, baud: 9600}]
devices: [{id: box, profile: v2x_offgrid_box, bus: rs485, address: 2}]
)");
  EXPECT_THAT(Lines(result),
              ElementsAre("site.yaml:4: grid.meter: device 'box' uses profile v2x_offgrid_box "
                          "(off-grid box); a meter must use a meter profile: eastron_sdm630, "
                          "generic_meter"));
}

TEST(Rule20, SimulatedVehiclesPlugIntoSimulatedEvses) {
  // Lines 5-23: kDevices; the stations and the simulation follow.
  const SiteConfigLoadResult result = Load(absl::StrCat(kDevices, R"(stations:
  - {id: s1, device: wallbox-1, circuit: grid, evses: [{id: wb1, phases: [L2, L3, L1], max_current_a: 20}]}
  - {id: dc, device: ds60-1, circuit: grid, evses: [{id: dc1}]}
simulation:
  devices: [wallbox-1, ds60-1]
  vehicles:
    - {evse: wb1}
    - {evse: wb1}
    - {evse: dc1, max_current_a: 16}
    - {evse: wb9}
    - {evse: wb1, max_current_a: 0, phases: 2, energy_to_full_wh: -1}
)"));
  EXPECT_THAT(
      Lines(result),
      ElementsAre(
          "site.yaml:30: simulation.vehicles[1].evse: EVSE 'wb1' has a vehicle already; one per "
          "EVSE",
          "site.yaml:31: simulation.vehicles[2].max_current_a: 'dc1' is a DC EVSE: its vehicle "
          "takes max_power_w, not a current or phases",
          "site.yaml:32: simulation.vehicles[3].evse: unknown EVSE 'wb9' (did you mean 'wb1'?); "
          "known: wb1, dc1",
          "site.yaml:33: simulation.vehicles[4].evse: EVSE 'wb1' has a vehicle already; one per "
          "EVSE"));

  const SiteConfigLoadResult values = Load(absl::StrCat(kDevices, R"(stations:
  - {id: s1, device: wallbox-1, circuit: grid, evses: [{id: wb1, phases: [L2, L3, L1], max_current_a: 20}]}
simulation:
  devices: [wallbox-1]
  vehicles:
    - {evse: wb1, max_current_a: 0, phases: 2, energy_to_full_wh: -1, id_tag: "04:A1"}
)"));
  EXPECT_THAT(
      Lines(values),
      ElementsAre(
          "site.yaml:28: simulation.vehicles[0].max_current_a: must be above 0 and at most 80 A, "
          "got 0",
          "site.yaml:28: simulation.vehicles[0].phases: must be 1 or 3, got 2",
          "site.yaml:28: simulation.vehicles[0].energy_to_full_wh: must be above 0 Wh, got -1",
          "site.yaml:28: simulation.vehicles[0].id_tag: '04:A1' is not a valid card UID; use "
          "8–20 hex digits (an even number, no separators), e.g. \"04A1B2C3D4E5F6\""));

  // A DC vehicle takes a power (default: the EVSE's), an AC one does not.
  const SiteConfigLoadResult power = Load(absl::StrCat(kDevices, R"(stations:
  - {id: s1, device: wallbox-1, circuit: grid, evses: [{id: wb1}]}
  - {id: dc, device: ds60-1, circuit: grid, evses: [{id: dc1, max_power_w: 50000}, {id: dc2, connector: 2}]}
simulation:
  devices: [wallbox-1, ds60-1]
  vehicles:
    - {evse: wb1, max_power_w: 11000}
    - {evse: dc1, max_power_w: 0}
    - {evse: dc2, id_tag: 04A1B2C3}
)"));
  EXPECT_THAT(Lines(power),
              ElementsAre("site.yaml:29: simulation.vehicles[0].max_power_w: 'wb1' is an AC EVSE: "
                          "its vehicle takes max_current_a and phases",
                          "site.yaml:30: simulation.vehicles[1].max_power_w: must be above 0 and "
                          "at most 1000000 W, got 0"));

  const SiteConfigLoadResult not_simulated = Load(absl::StrCat(kDevices, R"(stations:
  - {id: s1, device: wallbox-1, circuit: grid, evses: [{id: wb1}]}
simulation:
  vehicles: [{evse: wb1}]
)"));
  EXPECT_THAT(Lines(not_simulated),
              ElementsAre("site.yaml:26: simulation.vehicles[0].evse: EVSE 'wb1' is on device "
                          "'wallbox-1', which is not in simulation.devices; only a simulated "
                          "device can have a simulated vehicle"));
}

TEST(Rule20, SimulatedVehicleDefaultsComeFromTheEvse) {
  const SiteConfigLoadResult result = Load(absl::StrCat(kDevices, R"(stations:
  - {id: s1, device: wallbox-1, circuit: grid, evses: [{id: wb1, phases: [L2, L3, L1], max_current_a: 20}]}
simulation:
  devices: [wallbox-1]
  vehicles: [{evse: wb1, id_tag: 04b2c3d4}]
)"));
  ASSERT_TRUE(result.ok()) << result.ErrorText();
  ASSERT_THAT(result.config.simulation.vehicles, SizeIs(1));
  const SimulatedVehicleConfig& v = result.config.simulation.vehicles[0];
  EXPECT_EQ(v.evse, "wb1");
  EXPECT_EQ(v.max_current_a, 20);
  EXPECT_EQ(v.phases, 3);
  EXPECT_EQ(v.energy_to_full_wh, defaults::kSimVehicleEnergyToFullWh);
  EXPECT_EQ(v.id_tag, "04B2C3D4");
}

TEST(Rule21, FailsafeCurrentsFitEveryCircuitAndTheGridWithTheMargin) {
  // Lines 5-22: kDevices; then four more wallboxes and the circuits.
  const SiteConfigLoadResult result = Load(absl::StrCat(
      kDevices, R"(  - {id: wallbox-2, profile: cabur_ev_plus_22kw, bus: can-1, address: 2}
  - {id: wallbox-3, profile: cabur_ev_plus_7kw, bus: can-1, address: 3}
  - {id: wallbox-4, profile: cabur_ev_plus_7kw, bus: can-1, address: 4}
circuits:
  - {id: garage, parent: grid, limit_a: 20}
  - {id: single, parent: garage, phases: [L1, L2], limit_a: [16, 7]}
  - {id: dc-feeder, parent: grid, limit_a: 40}
controller: {margin_a: 1}
stations:
  - {id: s1, device: wallbox-1, circuit: garage, evses: [{id: wb1, failsafe_current_a: 8}]}
  - {id: s2, device: wallbox-2, circuit: garage, evses: [{id: wb2, phases: [L2, L3, L1], failsafe_current_a: 8}]}
  - {id: s3, device: wallbox-3, circuit: single, evses: [{id: wb3, phases: [L2], failsafe_current_a: 6}]}
  - {id: s4, device: wallbox-4, circuit: single, evses: [{id: wb4, phases: [L1], failsafe_current_a: 0}]}
  - id: dc
    device: ds60-1
    circuit: dc-feeder
    max_power_w: 60000
    evses:
      - {id: dc1, connector: 1, failsafe_power_w: 30000, efficiency: 0.95}
      - {id: dc2, connector: 2, failsafe_power_w: 30000, efficiency: 0.95}
)"));
  // garage L2: wb1 8 + wb2 8 + wb3 6 = 22 A > 20 - 1; L1 and L3: 16 A fit.
  // single L2: wb3 6 A = 7 - 1 fits; wb4 pauses on failsafe (0).
  // dc-feeder: 60 kW / 0.95 / (3 × 230 V) = 91.53 A > 39 A on every phase;
  // the grid sees the garage and the DC feeder together.
  EXPECT_THAT(
      result.errors,
      ElementsAre(
          ErrorAt(3, "grid.fuse_limit_a", "add up to 107.53 A on L1"),
          ErrorAt(3, "grid.fuse_limit_a", "add up to 113.53 A on L2"),
          ErrorAt(3, "grid.fuse_limit_a", "add up to 107.53 A on L3"),
          ErrorAt(27, "circuits[0].limit_a",
                  "the failsafe currents of the EVSEs under circuit 'garage' add up to 22 A on L2 "
                  "(wb1 8 A, wb2 8 A, wb3 6 A), above its limit 20 A less the margin 1 A = 19 A"),
          ErrorAt(29, "circuits[2].limit_a", "add up to 91.53 A on L1 (dc1 45.77 A, dc2 45.77 A)"),
          ErrorAt(29, "circuits[2].limit_a", "on L2"),
          ErrorAt(29, "circuits[2].limit_a", "on L3")));
}

TEST(Rule21, PausingOnFailsafeAlwaysFits) {
  std::string stations = "stations:\n";
  for (int i = 1; i <= 40; ++i) {
    absl::StrAppend(&stations, "  - {id: s", i, ", device: w", i, ", circuit: grid, evses: [{id: e",
                    i, ", failsafe_current_a: 0}]}\n");
  }
  std::string devices;
  for (int i = 1; i <= 40; ++i) {
    absl::StrAppend(&devices, "  - {id: w", i,
                    ", profile: cabur_ev_plus_22kw, bus: can-1, address: ", i + 1, "}\n");
  }
  const SiteConfigLoadResult result = Load(absl::StrCat(kDevices, devices, stations));
  EXPECT_THAT(Lines(result), ElementsAre());
}

// Bad inputs tried: an unknown box, a meter as the box, countdown 0 and 901 s, resync 0 s, no
// EVSE that can form the island, an unknown field, a missing box.
TEST(Rule22, GridModesNeedAnOffGridBoxAnIslandFormerAndRangesOfTheManual) {
  const SiteConfigLoadResult result =
      Load(R"(buses: [{id: rs485, type: modbus_rtu, port: /dev/ttyUSB0, baud: 9600}]
devices:
  - {id: m1, profile: eastron_sdm630, bus: rs485, address: 3}
grid_modes:
  off_grid_box: m1
  standby_countdown_s: 901
  resync_stable_s: 0
)");
  EXPECT_THAT(
      Lines(result),
      ElementsAre(
          "site.yaml:9: grid_modes.off_grid_box: device 'm1' is a meter, not an off-grid box",
          "site.yaml:9: grid_modes.off_grid_box: no bidirectional EVSE with "
          "max_discharge_power_offgrid_w > 0 can form the island",
          "site.yaml:10: grid_modes.standby_countdown_s: 901 is out of range; allowed 1–900 s "
          "(the ICE-22 allows at most 15 min)",
          "site.yaml:11: grid_modes.resync_stable_s: 0 is out of range; allowed 1–3600 s"));
  EXPECT_THAT(Lines(Load("grid_modes: {off_grid_box: nobox, standby_countdown_s: 0}\n")),
              ::testing::Contains(HasSubstr("grid_modes.off_grid_box: no device 'nobox'")));
  EXPECT_THAT(Lines(Load("grid_modes: {standby_countdown_s: 0}\n")),
              ::testing::Contains(HasSubstr("grid_modes.off_grid_box")));
  EXPECT_THAT(Lines(Load("grid_modes: {off_grid_box: x, countdown: 5}\n")),
              ::testing::Contains(HasSubstr("countdown")));
}

TEST(Rule22, TheDemoHasGridModesWithTheManualsDefaults) {
  const SiteConfigLoadResult result = LoadSiteConfigFromFile(Runfile("gateway/sites/demo.yaml"));
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(Lines(result));
  ASSERT_TRUE(result.config.grid_modes.has_value());
  EXPECT_EQ(result.config.grid_modes->off_grid_box, "offgrid-box");
  EXPECT_EQ(result.config.grid_modes->standby_countdown_s, 180);
  EXPECT_TRUE(result.config.grid_modes->auto_off_grid);
  EXPECT_FALSE(result.config.grid_modes->pn_pull_in);
}

TEST(DeviceProfiles, TableHasTheManualsLimits) {
  const DeviceProfile* cabur = FindDeviceProfile("cabur_ev_plus_22kw");
  ASSERT_NE(cabur, nullptr);
  EXPECT_EQ(cabur->min_current_a, 6);
  EXPECT_EQ(cabur->max_current_a, 32);
  EXPECT_EQ(cabur->max_address, 63);
  EXPECT_EQ(FindDeviceProfile("heidelberg_energy_control")->max_current_a, 16);
  EXPECT_EQ(FindDeviceProfile("ds60")->station_max_power_w, 60000);
  EXPECT_EQ(FindDeviceProfile("ds60")->max_connectors, 2);
  EXPECT_EQ(FindDeviceProfile("ice22_v2x")->max_discharge_power_offgrid_w, 19800);
  EXPECT_FALSE(FindDeviceProfile("cabur_ev_plus_7kw")->three_phase);
  EXPECT_EQ(FindDeviceProfile("nope"), nullptr);
  EXPECT_THAT(AllDeviceProfiles(), SizeIs(8));
}

}  // namespace
}  // namespace evgate::site
