// Modbus TCP poll round trip on loopback: LibmodbusTransport reading the
// SDM630's fast block (72 input registers, one request) from the simulator.
// Prints p50 / p99 / max over N requests after a warm-up.
//
//   bazel run -c opt //device_drivers/sim:modbus_tcp_round_trip_benchmark -- [N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "device_drivers/modbus/libmodbus_transport.h"
#include "device_drivers/sim/sdm630_simulator.h"

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  evgate::sim::Sdm630Simulator sim(evgate::SystemClock::Get());
  if (!sim.Listen("127.0.0.1", 0).ok()) return 1;
  auto transport =
      evgate::modbus::LibmodbusTransport::Tcp({"127.0.0.1", sim.port(), absl::Seconds(1)});
  if (!transport.ok() || !(*transport)->SetSlave(1).ok()) return 1;
  std::vector<double> us;
  us.reserve(n);
  for (int i = 0; i < n + 1000; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto regs = (*transport)->ReadRegisters(evgate::modbus::RegisterTable::kInput, 0, 72);
    const auto end = std::chrono::steady_clock::now();
    if (!regs.ok()) {
      std::fprintf(stderr, "%s\n", std::string(regs.status().message()).c_str());
      return 1;
    }
    if (i >= 1000) us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  std::sort(us.begin(), us.end());
  std::printf(
      "modbus tcp loopback, 72 input registers per request, %d requests: "
      "p50 %.1f us, p99 %.1f us, max %.1f us\n",
      n, us[us.size() / 2], us[us.size() * 99 / 100], us.back());
  sim.Stop();
  return 0;
}
