// sdm630_sim: a simulated Eastron SDM630 meter on Modbus TCP.
//
//   sdm630_sim --listen 127.0.0.1:1502 [--unit 1] [--current-a 10,8,6]
//              [--voltage-v 230,231,229] [--power-factor 1] [--frequency-hz 50]
//
// Prints "sdm630_sim listening on HOST:PORT unit N" once it serves (with port
// 0, the port picked), then runs until SIGTERM or SIGINT.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "device_drivers/sim/sdm630_simulator.h"
#include "runtime/args.h"
#include "runtime/signals.h"

namespace {

bool ParseTriple(const std::string& text, double out[3]) {
  std::vector<std::string> parts = absl::StrSplit(text, ',');
  if (parts.size() == 1) parts = {parts[0], parts[0], parts[0]};
  if (parts.size() != 3) return false;
  for (int i = 0; i < 3; ++i) {
    if (!absl::SimpleAtod(parts[i], &out[i])) return false;
  }
  return true;
}

int Usage(const std::string& error) {
  std::cerr << "sdm630_sim: " << error
            << "\nusage: sdm630_sim --listen HOST:PORT [--unit N] [--current-a A[,A,A]] "
               "[--voltage-v V[,V,V]] [--power-factor PF] [--frequency-hz HZ]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  evgate::BlockShutdownSignals();
  absl::StatusOr<evgate::Args> args =
      evgate::ParseArgs(std::vector<std::string>(argv + 1, argv + argc), {});
  if (!args.ok()) return Usage(std::string(args.status().message()));
  if (absl::Status s = evgate::CheckFlags(
          *args, {"listen", "unit", "current-a", "voltage-v", "power-factor", "frequency-hz"},
          "sdm630_sim");
      !s.ok()) {
    return Usage(std::string(s.message()));
  }
  const std::string listen = args->Get("listen");
  const size_t colon = listen.rfind(':');
  int port = 0, unit = 1;
  double current[3] = {0, 0, 0}, voltage[3] = {230, 230, 230}, pf = 1, hz = 50;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return Usage("--listen HOST:PORT is required");
  }
  if (!absl::SimpleAtoi(args->Get("unit", "1"), &unit) || unit < 1 || unit > 247) {
    return Usage("--unit must be 1-247");
  }
  if (!ParseTriple(args->Get("current-a", "0"), current) ||
      !ParseTriple(args->Get("voltage-v", "230"), voltage) ||
      !absl::SimpleAtod(args->Get("power-factor", "1"), &pf) ||
      !absl::SimpleAtod(args->Get("frequency-hz", "50"), &hz)) {
    return Usage(
        "--current-a / --voltage-v take 1 or 3 numbers; --power-factor and "
        "--frequency-hz a number");
  }
  evgate::sim::Sdm630Simulator sim(evgate::SystemClock::Get(), unit);
  for (int i = 0; i < 3; ++i) sim.SetPhase(i, {voltage[i], current[i], pf});
  sim.SetFrequency(hz);
  if (absl::Status s = sim.Listen(listen.substr(0, colon), port); !s.ok()) {
    std::cerr << "sdm630_sim: " << s.message() << "\n";
    return 1;
  }
  std::cout << "sdm630_sim listening on " << listen.substr(0, colon) << ":" << sim.port()
            << " unit " << unit << std::endl;
  evgate::WaitForShutdownSignal();
  sim.Stop();
  return 0;
}
