// How many polls per second the bus owner gets through one Modbus RTU line at
// 19200 baud 8E1: the owner + libmodbus (RtuInterFrameGap between frames)
// against simulated devices behind a ModbusServer on a pty. With line timing
// emulated, the server answers only after the request and answer would have
// taken on a real line plus a 2 ms device turnaround, so the figure is
// comparable with the frame arithmetic in docs/performance.md; without it,
// it shows the software's own cost per transaction.
//
//   bazel run -c opt //device_drivers/sim:modbus_rtu_bus_benchmark -- [SECONDS] [DEVICES]
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "device_drivers/modbus/builtin_profiles.h"
#include "device_drivers/modbus/bus_owner.h"
#include "device_drivers/modbus/libmodbus_transport.h"
#include "device_drivers/sim/heidelberg_simulator.h"
#include "device_drivers/sim/modbus_server.h"
#include "device_drivers/sim/sdm630_simulator.h"

namespace {

using evgate::modbus::BusOptions;
using evgate::modbus::ModbusBusOwner;
using evgate::modbus::PolledDevice;

struct Result {
  double polls_per_s = 0;
  double errors = 0;
};

Result Run(const std::string& profile, int devices, bool emulate, absl::Duration duration) {
  const evgate::Clock& clock = evgate::SystemClock::Get();
  evgate::sim::ModbusServer server;
  std::vector<std::unique_ptr<evgate::sim::ModbusUnit>> units;
  for (int i = 0; i < devices; ++i) {
    if (profile == "eastron_sdm630") {
      units.push_back(std::make_unique<evgate::sim::Sdm630Simulator>(clock, i + 1));
    } else {
      units.push_back(std::make_unique<evgate::sim::HeidelbergSimulator>(clock));
    }
    server.AddUnit(i + 1, units.back().get());
  }
  evgate::sim::RtuLineOptions line;  // 19200 8E1
  line.emulate_line_timing = emulate;
  line.turnaround = absl::Milliseconds(2);
  absl::StatusOr<std::string> pty = server.ServeRtuPty(line);
  if (!pty.ok()) {
    std::fprintf(stderr, "%s\n", std::string(pty.status().message()).c_str());
    std::exit(1);
  }
  evgate::modbus::RtuOptions rtu;
  rtu.port = *pty;
  rtu.baud = 19200;
  rtu.parity = 'E';
  rtu.rs485 = false;
  auto transport = evgate::modbus::LibmodbusTransport::Rtu(rtu);
  if (!transport.ok()) std::exit(1);
  std::vector<PolledDevice> polled;
  for (int i = 0; i < devices; ++i) {
    PolledDevice d;
    d.id = "dev" + std::to_string(i + 1);
    d.unit_id = i + 1;
    d.map = *evgate::modbus::BuiltinRegisterMap(profile);
    d.poll_period = absl::Milliseconds(1);  // always due: the bus is the limit
    d.slow_poll_period = absl::Hours(1);
    d.stale_after_missed_polls = 1000;
    polled.push_back(d);
  }
  BusOptions options;
  options.bus_id = "bench";
  options.inter_frame_gap = evgate::modbus::RtuInterFrameGap(19200);
  ModbusBusOwner owner(options, polled, *std::move(transport), clock);
  owner.Start();
  absl::SleepFor(absl::Milliseconds(500));  // warm-up: first polls, slow blocks
  uint64_t start_requests = 0, start_errors = 0;
  for (const auto& s : owner.Devices()) {
    start_requests += s.counters.requests_total;
    start_errors += s.counters.errors_total + s.counters.timeouts_total;
  }
  absl::SleepFor(duration);
  uint64_t requests = 0, errors = 0;
  for (const auto& s : owner.Devices()) {
    requests += s.counters.requests_total;
    errors += s.counters.errors_total + s.counters.timeouts_total;
  }
  owner.Stop();
  server.Stop();
  return {(requests - start_requests) / absl::ToDoubleSeconds(duration),
          static_cast<double>(errors - start_errors)};
}

}  // namespace

int main(int argc, char** argv) {
  const absl::Duration duration = absl::Seconds(argc > 1 ? std::atoi(argv[1]) : 10);
  const int devices = argc > 2 ? std::atoi(argv[2]) : 8;
  std::printf("modbus RTU 19200 8E1 on a pty, %d devices, %s per case\n", devices,
              absl::FormatDuration(duration).c_str());
  for (const char* profile : {"heidelberg_energy_control", "eastron_sdm630"}) {
    const int registers = (*evgate::modbus::BuiltinRegisterMap(profile))->blocks[0].count;
    for (bool emulate : {true, false}) {
      const Result r = Run(profile, devices, emulate, duration);
      std::printf("%-26s %3d registers/poll, line timing %-8s %8.1f polls/s, %.0f errors\n",
                  profile, registers, emulate ? "emulated" : "none", r.polls_per_s, r.errors);
    }
  }
  return 0;
}
