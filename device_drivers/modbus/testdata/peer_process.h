// Starts a peer process (a third-party Modbus server, our simulator binary)
// for a test and kills it (by its pid) when destroyed. Test-only.
#ifndef EVGATE_DEVICE_DRIVERS_MODBUS_TESTDATA_PEER_PROCESS_H_
#define EVGATE_DEVICE_DRIVERS_MODBUS_TESTDATA_PEER_PROCESS_H_

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <string>
#include <vector>

extern char** environ;

namespace evgate::modbus::testing {

class PeerProcess {
 public:
  explicit PeerProcess(std::vector<std::string> argv) {
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) != 0) pid_ = -1;
  }
  ~PeerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;
  bool started() const { return pid_ > 0; }
  // True while the process runs.
  bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
};

}  // namespace evgate::modbus::testing

#endif  // EVGATE_DEVICE_DRIVERS_MODBUS_TESTDATA_PEER_PROCESS_H_
