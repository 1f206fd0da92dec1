// cabur_wallbox_sim: simulated Cabur EV PLUS wallboxes on a CAN bus, speaking
// the evgate wallbox CAN protocol (docs/protocols/can-wallbox.md).
//
//   cabur_wallbox_sim --bus udp:239.255.0.1:15030 | --bus socketcan:can0
//                     --wallboxes 1:22kw,2:7kw [--max-current-a 32] [--ev-lag-s 2]
//                     [--plug 1:32:3,2:16:1] [--energy-to-full-kwh 40]
//
// --wallboxes lists ADDRESS:MODEL (22kw = 22 kW three-phase, 7kw = 7.4 kW
// single-phase); --plug plugs a vehicle in at start as ADDRESS:MAX_A:PHASES.
// Prints "cabur_wallbox_sim on BUS: N wallboxes" once running, then runs
// until SIGTERM or SIGINT.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "device_drivers/can/socketcan_bus.h"
#include "device_drivers/can/udp_can_bus.h"
#include "device_drivers/sim/cabur_wallbox_simulator.h"
#include "runtime/args.h"
#include "runtime/clock.h"
#include "runtime/signals.h"

namespace {

using evgate::sim::CaburWallboxConfig;
using evgate::sim::EvParams;
namespace wb = evgate::can::wallbox;

int Usage(const std::string& error) {
  std::cerr << "cabur_wallbox_sim: " << error
            << "\nusage: cabur_wallbox_sim --bus udp:GROUP:PORT|socketcan:IFACE "
               "--wallboxes ADDR:22kw|7kw[,...] [--max-current-a A] [--ev-lag-s S] "
               "[--plug ADDR:MAX_A:PHASES[,...]] [--energy-to-full-kwh KWH]\n";
  return 2;
}

std::unique_ptr<evgate::can::CanBus> MakeBus(const std::string& spec, std::string* error) {
  std::vector<std::string> parts = absl::StrSplit(spec, ':');
  if (parts.size() == 3 && parts[0] == "udp") {
    evgate::can::UdpCanBusOptions options;
    options.name = "sim";
    options.group = parts[1];
    if (!absl::SimpleAtoi(parts[2], &options.port) || options.port <= 0 || options.port > 65535) {
      *error = "--bus udp:GROUP:PORT needs a port 1-65535";
      return nullptr;
    }
    return std::make_unique<evgate::can::UdpCanBus>(options, evgate::SystemClock::Get());
  }
  if (parts.size() == 2 && parts[0] == "socketcan" && !parts[1].empty()) {
    evgate::can::SocketCanOptions options;
    options.interface = parts[1];
    return std::make_unique<evgate::can::SocketCanBus>(options, evgate::SystemClock::Get());
  }
  *error = "--bus must be udp:GROUP:PORT or socketcan:IFACE";
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  evgate::BlockShutdownSignals();
  absl::StatusOr<evgate::Args> args =
      evgate::ParseArgs(std::vector<std::string>(argv + 1, argv + argc), {});
  if (!args.ok()) return Usage(std::string(args.status().message()));
  if (absl::Status s = evgate::CheckFlags(
          *args, {"bus", "wallboxes", "max-current-a", "ev-lag-s", "plug", "energy-to-full-kwh"},
          "cabur_wallbox_sim");
      !s.ok()) {
    return Usage(std::string(s.message()));
  }
  std::string error;
  std::unique_ptr<evgate::can::CanBus> bus = MakeBus(args->Get("bus"), &error);
  if (bus == nullptr) return Usage(error);
  int max_current = 32;
  double lag_s = 2, full_kwh = 40;
  if (!absl::SimpleAtoi(args->Get("max-current-a", "32"), &max_current) ||
      !absl::SimpleAtod(args->Get("ev-lag-s", "2"), &lag_s) || lag_s < 0 || lag_s > 5 ||
      !absl::SimpleAtod(args->Get("energy-to-full-kwh", "40"), &full_kwh) || full_kwh <= 0) {
    return Usage("--max-current-a takes 6-32, --ev-lag-s 0-5, --energy-to-full-kwh > 0");
  }
  evgate::sim::CanWallboxSimHost host(*bus, evgate::SystemClock::Get());
  if (!args->Has("wallboxes")) return Usage("--wallboxes is required");
  const std::vector<std::string> wallboxes = absl::StrSplit(args->Get("wallboxes"), ',');
  for (const std::string& item : wallboxes) {
    std::vector<std::string> parts = absl::StrSplit(item, ':');
    CaburWallboxConfig config;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &config.address) ||
        (parts[1] != "22kw" && parts[1] != "7kw")) {
      return Usage("--wallboxes takes ADDRESS:22kw or ADDRESS:7kw, comma-separated: " + item);
    }
    config.model = parts[1] == "22kw" ? wb::Model::kEvPlus22kW3Phase : wb::Model::kEvPlus7kW1Phase;
    config.max_current_a = max_current;
    config.ev_lag = absl::Seconds(lag_s);
    config.serial = "SIMEVPLUS" + parts[1] + "-" + parts[0];
    if (absl::Status s = host.AddWallbox(config); !s.ok()) return Usage(std::string(s.message()));
  }
  if (absl::Status s = host.Start(); !s.ok()) {
    std::cerr << "cabur_wallbox_sim: " << bus->Describe() << ": " << s.message() << "\n";
    return 1;
  }
  if (args->Has("plug")) {
    const std::vector<std::string> plugs = absl::StrSplit(args->Get("plug"), ',');
    for (const std::string& item : plugs) {
      std::vector<std::string> parts = absl::StrSplit(item, ':');
      int address = 0;
      EvParams ev;
      ev.energy_to_full_wh = full_kwh * 1000;
      if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &address) ||
          !absl::SimpleAtod(parts[1], &ev.max_current_a) ||
          !absl::SimpleAtoi(parts[2], &ev.phases) || (ev.phases != 1 && ev.phases != 3)) {
        host.Stop();
        return Usage("--plug takes ADDRESS:MAX_A:PHASES (phases 1 or 3): " + item);
      }
      if (absl::Status s = host.PlugIn(address, ev); !s.ok()) {
        host.Stop();
        return Usage(std::string(s.message()));
      }
    }
  }
  std::cout << "cabur_wallbox_sim on " << bus->Describe() << ": " << host.addresses().size()
            << " wallboxes" << std::endl;
  evgate::WaitForShutdownSignal();
  host.Stop();
  return 0;
}
