// The OCPP bridge as its own process (one container in a split deployment):
// `ocpp_bridge --site FILE [--listen HOST:PORT]`.
#include <string>
#include <vector>

#include "runtime/launcher.h"
#include "services/ocpp_bridge/ocpp_bridge_entry.h"

int main(int argc, char** argv) {
  return evgate::RunFromArgs(std::vector<std::string>(argv + 1, argv + argc),
                             {evgate::ocpp::OcppBridgeEntry()}, "ocpp_bridge");
}
