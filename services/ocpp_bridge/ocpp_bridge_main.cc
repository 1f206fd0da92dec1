// The OCPP bridge as its own process (one container in a split deployment):
// `ocpp_bridge --site FILE [--listen HOST:PORT]`.
#include <string>
#include <vector>

#include "gateway/launcher.h"

int main(int argc, char** argv) {
  return evgate::gateway::RunFromArgs(std::vector<std::string>(argv + 1, argv + argc),
                                      "ocpp_bridge");
}
