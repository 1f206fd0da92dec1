// evgate: the site controller in one binary. Hosts any subset of the services
// in one process (`evgate run`), and validates site files (`evgate validate`).
#include <iostream>
#include <string>
#include <vector>

#include "gateway/all_services.h"
#include "runtime/launcher.h"

namespace {

constexpr char kUsage[] = R"(evgate — EV charging site controller

Usage:
  evgate run --site FILE [--services a,b,...] [--listen HOST:PORT] [--log-level LEVEL]
  evgate validate FILE
  evgate services

Exit codes: 0 ok, 1 invalid site file, 2 usage / unknown service,
            3 cannot listen (address taken), 4 a service failed to start.
)";

int ListServices() {
  for (const auto& entry : evgate::gateway::AllServices()) {
    std::cout << entry.name << "\t" << (entry.create ? "available" : "not in this build") << "\t"
              << entry.description << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const std::string command = args.empty() ? "" : args[0];
  if (command == "run") {
    return evgate::RunFromArgs({args.begin() + 1, args.end()}, evgate::gateway::AllServices(), "");
  }
  if (command == "validate" && args.size() == 2) {
    return evgate::Validate(args[1], std::cout);
  }
  if (command == "services" && args.size() == 1) return ListServices();
  if (command == "help" || command == "--help" || command == "-h") {
    std::cout << kUsage;
    return 0;
  }
  std::cerr << kUsage;
  return evgate::kExitUsage;
}
