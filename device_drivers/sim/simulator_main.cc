// The site simulator as its own process (the demo's simulated meters,
// wallboxes and boxes in their own container): `simulator --site FILE
// [--listen HOST:PORT]`.
#include <string>
#include <vector>

#include "device_drivers/sim/simulator_entry.h"
#include "runtime/launcher.h"

int main(int argc, char** argv) {
  return evgate::RunFromArgs(std::vector<std::string>(argv + 1, argv + argc),
                             {evgate::sim::SimulatorEntry()}, "simulator");
}
