// allocate: runs the allocation engine on one scenario file and prints the allocation as JSON.
//
//   bazel run //services/load_balancer:allocate -- FILE.json     ("-" reads standard input)
//
// Exit codes: 0 allocation printed; 2 usage error, unreadable file or malformed scenario (the
// error names the field path, e.g. "evses[2].phases[1]: ...").

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include "site_controller/allocation/allocation.h"
#include "site_controller/allocation/scenario.h"

namespace {

constexpr int kExitInvalid = 2;

// `bazel run` starts the binary in its runfiles tree; resolve relative paths against the
// directory the user ran bazel from.
std::string ResolvePath(const std::string& path) {
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (path.empty() || path[0] == '/' || cwd == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

bool ReadAll(const std::string& path, std::string* text) {
  if (path == "-") {
    text->assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return !std::cin.bad();
  }
  std::ifstream file(ResolvePath(path), std::ios::binary);
  if (!file) return false;
  std::ostringstream buffer;
  buffer << file.rdbuf();
  *text = buffer.str();
  return !file.bad();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cerr << "usage: allocate FILE.json   (\"-\" reads standard input)\n"
                 "Prints the allocation of the scenario (docs/scenario-format.md) as JSON.\n";
    return kExitInvalid;
  }
  const std::string path = argv[1];
  std::string text;
  if (!ReadAll(path, &text)) {
    std::cerr << path << ": cannot read file\n";
    return kExitInvalid;
  }
  auto input = evgate::allocation::ParseScenario(text);
  if (!input.ok()) {
    std::cerr << path << ": invalid scenario:\n" << input.status().message() << "\n";
    return kExitInvalid;
  }
  auto allocation = evgate::allocation::Allocate(*input);
  if (!allocation.ok()) {
    std::cerr << path << ": " << allocation.status().message() << "\n";
    return kExitInvalid;
  }
  std::cout << evgate::allocation::AllocationToJson(*allocation, 2) << "\n";
  return 0;
}
