// A fuzz entry for corpus_driver_test: aborts on inputs starting with
// "BOOM" (a stand-in for a parser bug), accepts everything else.
#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 4 && std::memcmp(data, "BOOM", 4) == 0) std::abort();
  return 0;
}
