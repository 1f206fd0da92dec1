// evgatectl: see tools/evgatectl/cli.h and `evgatectl --help`.
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "tools/evgatectl/cli.h"

int main(int argc, char** argv) {
  std::map<std::string, std::string> env;
  for (const auto& [flag, variable] : evgate::ctl::EnvironmentFlags()) {
    if (const char* value = std::getenv(variable.c_str())) env[variable] = value;
  }
  return evgate::ctl::RunCli(std::vector<std::string>(argv + 1, argv + argc), env, std::cout,
                             std::cerr);
}
