// The session service as its own process (one container in a split
// deployment): `session --site FILE [--listen HOST:PORT]`.
#include <string>
#include <vector>

#include "runtime/launcher.h"
#include "services/session/session_entry.h"

int main(int argc, char** argv) {
  return evgate::RunFromArgs(std::vector<std::string>(argv + 1, argv + argc),
                             {evgate::session::SessionEntry()}, "session");
}
