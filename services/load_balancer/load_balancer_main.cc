// The load balancer as its own process (one container in a split
// deployment): `load_balancer --site FILE [--listen HOST:PORT]`.
#include <string>
#include <vector>

#include "runtime/launcher.h"
#include "services/load_balancer/load_balancer_entry.h"

int main(int argc, char** argv) {
  return evgate::RunFromArgs(std::vector<std::string>(argv + 1, argv + argc),
                             {evgate::load_balancer::LoadBalancerEntry()}, "load_balancer");
}
