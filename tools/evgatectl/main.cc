// evgatectl: see tools/evgatectl/cli.h and `evgatectl --help`.
#include <iostream>
#include <string>
#include <vector>

#include "tools/evgatectl/cli.h"

int main(int argc, char** argv) {
  return evgate::ctl::RunCli(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
}
