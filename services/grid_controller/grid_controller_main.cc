// The grid controller as its own process (one container in a split deployment):
// `grid_controller --site FILE [--listen HOST:PORT]`.
#include <string>
#include <vector>

#include "runtime/launcher.h"
#include "services/grid_controller/grid_controller_entry.h"

int main(int argc, char** argv) {
  return evgate::RunFromArgs(std::vector<std::string>(argv + 1, argv + argc),
                             {evgate::grid_controller::GridControllerEntry()}, "grid_controller");
}
