// modbus_sim: simulated Modbus devices behind one server, as behind an
// RS-485/TCP gateway: any mix of SDM630 meters, Heidelberg wallboxes and
// V2X off-grid boxes, dispatched by unit id, over Modbus TCP and/or RTU.
//
//   modbus_sim [--listen HOST:PORT] [--rtu-pty | --rtu PATH] [--baud 19200]
//              [--parity E] [--stop-bits 1] [--emulate-line-timing]
//              UNIT=sdm630[:A1,A2,A3] UNIT=heidelberg[:EV_MAX_A] UNIT=offgrid_box ...
//
//   sdm630:A1,A2,A3      phase currents (230 V, PF 1)
//   heidelberg:EV_MAX_A  an EV plugged in and charging, taking at most EV_MAX_A
//
// Prints "modbus_sim listening on HOST:PORT" and/or "modbus_sim rtu on PATH"
// once it serves, one line per unit ("unit 3 heidelberg"), then runs until
// SIGTERM or SIGINT. The demo site: modbus_sim --listen 127.0.0.1:15020
// 1=sdm630:12,8,10 2=offgrid_box.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "device_drivers/sim/heidelberg_simulator.h"
#include "device_drivers/sim/modbus_server.h"
#include "device_drivers/sim/offgrid_box_simulator.h"
#include "device_drivers/sim/sdm630_simulator.h"
#include "runtime/args.h"
#include "runtime/clock.h"
#include "runtime/signals.h"

namespace {

using evgate::sim::HeidelbergSimulator;
using evgate::sim::ModbusUnit;
using evgate::sim::OffGridBoxSimulator;
using evgate::sim::Sdm630Simulator;

int Usage(const std::string& error) {
  std::cerr << "modbus_sim: " << error
            << "\nusage: modbus_sim [--listen HOST:PORT] [--rtu-pty | --rtu PATH] [--baud N] "
               "[--parity N|E|O] [--stop-bits 1|2] [--emulate-line-timing] "
               "UNIT=sdm630[:A1,A2,A3] | UNIT=heidelberg[:EV_MAX_A] | UNIT=offgrid_box ...\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  evgate::BlockShutdownSignals();
  absl::StatusOr<evgate::Args> args = evgate::ParseArgs(
      std::vector<std::string>(argv + 1, argv + argc), {"rtu-pty", "emulate-line-timing"});
  if (!args.ok()) return Usage(std::string(args.status().message()));
  if (absl::Status s = evgate::CheckFlags(
          *args, {"listen", "rtu-pty", "rtu", "baud", "parity", "stop-bits", "emulate-line-timing"},
          "modbus_sim");
      !s.ok()) {
    return Usage(std::string(s.message()));
  }
  if (args->words.empty()) return Usage("no units given");
  if (!args->Has("listen") && !args->Has("rtu-pty") && !args->Has("rtu")) {
    return Usage("give --listen, --rtu-pty or --rtu");
  }
  const evgate::Clock& clock = evgate::SystemClock::Get();
  std::vector<std::unique_ptr<ModbusUnit>> units;
  evgate::sim::ModbusServer server;
  for (const std::string& word : args->words) {
    const std::vector<std::string> unit_kind = absl::StrSplit(word, absl::MaxSplits('=', 1));
    int unit = 0;
    if (unit_kind.size() != 2 || !absl::SimpleAtoi(unit_kind[0], &unit) || unit < 1 || unit > 247) {
      return Usage("'" + word + "': expected UNIT=KIND with UNIT 1-247");
    }
    const std::vector<std::string> kind_args =
        absl::StrSplit(unit_kind[1], absl::MaxSplits(':', 1));
    const std::string& kind = kind_args[0];
    const std::string param = kind_args.size() > 1 ? kind_args[1] : "";
    if (kind == "sdm630") {
      auto meter = std::make_unique<Sdm630Simulator>(clock, unit);
      if (!param.empty()) {
        std::vector<std::string> parts = absl::StrSplit(param, ',');
        if (parts.size() == 1) parts = {parts[0], parts[0], parts[0]};
        for (int p = 0; p < 3 && p < static_cast<int>(parts.size()); ++p) {
          double a = 0;
          if (parts.size() != 3 || !absl::SimpleAtod(parts[p], &a)) {
            return Usage("'" + word + "': sdm630 takes 1 or 3 currents");
          }
          meter->SetPhase(p, {230, a, 1});
        }
      }
      units.push_back(std::move(meter));
    } else if (kind == "heidelberg") {
      auto wallbox = std::make_unique<HeidelbergSimulator>(clock);
      if (!param.empty()) {
        double a = 0;
        if (!absl::SimpleAtod(param, &a) || a <= 0) {
          return Usage("'" + word + "': heidelberg takes the EV's maximum current, A");
        }
        wallbox->PlugIn(a);
      }
      units.push_back(std::move(wallbox));
    } else if (kind == "offgrid_box") {
      if (!param.empty()) return Usage("'" + word + "': offgrid_box takes no parameter");
      units.push_back(std::make_unique<OffGridBoxSimulator>(clock));
    } else {
      return Usage("'" + word + "': kind must be sdm630, heidelberg or offgrid_box");
    }
    server.AddUnit(unit, units.back().get());
  }
  if (args->Has("listen")) {
    const std::string listen = args->Get("listen");
    const size_t colon = listen.rfind(':');
    int port = 0;
    if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
        port < 0 || port > 65535) {
      return Usage("--listen HOST:PORT");
    }
    if (absl::Status s = server.ListenTcp(listen.substr(0, colon), port); !s.ok()) {
      std::cerr << "modbus_sim: " << s.message() << "\n";
      return 1;
    }
    std::cout << "modbus_sim listening on " << listen.substr(0, colon) << ":" << server.tcp_port()
              << std::endl;
  }
  if (args->Has("rtu-pty") || args->Has("rtu")) {
    evgate::sim::RtuLineOptions line;
    const std::string parity = args->Get("parity", "E");
    if (!absl::SimpleAtoi(args->Get("baud", "19200"), &line.baud) ||
        !absl::SimpleAtoi(args->Get("stop-bits", "1"), &line.stop_bits) || parity.size() != 1 ||
        std::string("NEO").find(parity[0]) == std::string::npos) {
      return Usage("--baud N, --parity N|E|O, --stop-bits 1|2");
    }
    line.parity = parity[0];
    line.emulate_line_timing = args->Has("emulate-line-timing");
    std::string path = args->Get("rtu");
    if (args->Has("rtu-pty")) {
      absl::StatusOr<std::string> pty = server.ServeRtuPty(line);
      if (!pty.ok()) {
        std::cerr << "modbus_sim: " << pty.status().message() << "\n";
        return 1;
      }
      path = *pty;
    } else if (absl::Status s = server.ServeRtu(path, line); !s.ok()) {
      std::cerr << "modbus_sim: " << s.message() << "\n";
      return 1;
    }
    std::cout << "modbus_sim rtu on " << path << std::endl;
  }
  for (const std::string& word : args->words) {
    std::cout << "unit " << absl::StrReplaceAll(word, {{"=", " "}}) << std::endl;
  }
  evgate::WaitForShutdownSignal();
  server.Stop();
  return 0;
}
