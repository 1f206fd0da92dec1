// evgate-probe: see probe.h.
#include <iostream>
#include <string>
#include <vector>

#include "tools/probe/probe.h"

int main(int argc, char** argv) {
  return evgate::probe::RunProbe(std::vector<std::string>(argv + 1, argv + argc), std::cerr);
}
