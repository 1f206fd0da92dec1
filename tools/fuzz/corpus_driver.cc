// A main() for fuzz targets built with gcc: runs LLVMFuzzerTestOneInput over a
// checked-in seed corpus and over deterministic pseudo-random inputs, so CI
// exercises every fuzz target (under the normal build) without libFuzzer.
//
//   <x>_fuzzer_corpus_test [--random_inputs=N] [--seed=S] [--max_len=L] PATH...
//
// Each PATH is a file or a directory (every regular file in it, sorted, not
// recursive). For each seed file the driver also runs a fixed set of
// mutations of it (truncations, bit flips, byte insertions and deletions), so
// a seed corpus of a few valid inputs reaches the error paths near them.
// Then it runs N inputs of random bytes (length 0..L). The seed is printed,
// and every input is derived from it, so a failure reproduces exactly.
//
// A crash or sanitizer report fails the test; the driver itself checks only
// that the entry returns 0 (libFuzzer's contract) and that the corpus is not
// empty (a corpus directory that moved would otherwise pass vacuously).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

struct Options {
  uint64_t random_inputs = 10000;
  uint64_t seed = 20261121;
  size_t max_len = 512;
  std::vector<std::string> paths;
};

bool ParseUint(const char* text, uint64_t* out) {
  char* end = nullptr;
  const uint64_t value = std::strtoull(text, &end, 10);
  if (*text == '\0' || *end != '\0') return false;
  *out = value;
  return true;
}

bool ParseOptions(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value_of = [&](const char* flag) -> const char* {
      const size_t n = std::strlen(flag);
      return arg.compare(0, n, flag) == 0 ? argv[i] + n : nullptr;
    };
    uint64_t number = 0;
    if (const char* v = value_of("--random_inputs=")) {
      if (!ParseUint(v, &options->random_inputs)) return false;
    } else if (const char* v = value_of("--seed=")) {
      if (!ParseUint(v, &options->seed)) return false;
    } else if (const char* v = value_of("--max_len=")) {
      if (!ParseUint(v, &number) || number == 0) return false;
      options->max_len = number;
    } else if (arg.compare(0, 2, "--") == 0) {
      return false;
    } else {
      options->paths.push_back(arg);
    }
  }
  return true;
}

bool ReadFile(const std::string& path, std::vector<uint8_t>* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

// Regular files of `path` (itself if a file), sorted.
std::vector<std::string> FilesOf(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return {};
  if (S_ISREG(st.st_mode)) return {path};
  std::vector<std::string> files;
  if (DIR* dir = opendir(path.c_str())) {
    // Single-threaded: readdir's static buffer is fine here.
    while (const dirent* entry = readdir(dir)) {  // NOLINT(concurrency-mt-unsafe)
      const std::string file = path + "/" + entry->d_name;
      struct stat fst {};
      if (entry->d_name[0] != '.' && stat(file.c_str(), &fst) == 0 && S_ISREG(fst.st_mode)) {
        files.push_back(file);
      }
    }
    closedir(dir);
  }
  std::sort(files.begin(), files.end());
  return files;
}

void Run(const std::vector<uint8_t>& input, const std::string& what) {
  // A copy of exactly `size` bytes, so reads past the end hit the sanitizer
  // (or at least are not hidden by a larger buffer).
  std::vector<uint8_t> copy(input);
  const int result = LLVMFuzzerTestOneInput(copy.empty() ? nullptr : copy.data(), copy.size());
  if (result != 0) {
    std::fprintf(stderr, "corpus_driver: %s: LLVMFuzzerTestOneInput returned %d (must be 0)\n",
                 what.c_str(), result);
    std::exit(1);  // NOLINT(concurrency-mt-unsafe): single-threaded driver
  }
}

// Deterministic mutations of one seed: the driver's substitute for
// libFuzzer's search, aimed at the boundaries parsers get wrong.
uint64_t RunMutations(const std::vector<uint8_t>& seed, const std::string& name,
                      std::mt19937_64& rng) {
  uint64_t runs = 0;
  auto run = [&](const std::vector<uint8_t>& input, const char* kind) {
    Run(input, name + " (" + kind + ")");
    ++runs;
  };
  // Every truncation of short seeds, a sample of long ones.
  const size_t step = std::max<size_t>(1, seed.size() / 64);
  for (size_t n = 0; n < seed.size(); n += step) {
    run(std::vector<uint8_t>(seed.begin(), seed.begin() + static_cast<std::ptrdiff_t>(n)),
        "truncated");
  }
  for (int i = 0; i < 32 && !seed.empty(); ++i) {
    std::vector<uint8_t> m = seed;
    const size_t at = rng() % m.size();
    const auto where = m.begin() + static_cast<std::ptrdiff_t>(at);
    switch (rng() % 5) {
      case 0:
        m[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1:
        m[at] = static_cast<uint8_t>(rng());
        break;
      case 2:
        m[at] = (rng() % 2) ? 0x00 : 0xFF;
        break;
      case 3:
        m.insert(where, static_cast<uint8_t>(rng()));
        break;
      default:
        m.erase(where);
        break;
    }
    run(m, "mutated");
  }
  return runs;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!ParseOptions(argc, argv, &options)) {
    std::fprintf(stderr,
                 "usage: %s [--random_inputs=N] [--seed=S] [--max_len=L] CORPUS_DIR_OR_FILE...\n",
                 argv[0]);
    return 2;
  }
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  std::printf("corpus_driver: seed %" PRIu64 "\n", options.seed);
  std::mt19937_64 rng(options.seed);
  uint64_t files = 0, runs = 0;
  for (const std::string& path : options.paths) {
    const std::vector<std::string> found = FilesOf(path);
    if (found.empty()) {
      std::fprintf(stderr, "corpus_driver: %s: no corpus files (missing or empty)\n", path.c_str());
      return 1;
    }
    for (const std::string& file : found) {
      std::vector<uint8_t> data;
      if (!ReadFile(file, &data)) {
        std::fprintf(stderr, "corpus_driver: cannot read %s\n", file.c_str());
        return 1;
      }
      Run(data, file);
      ++files;
      ++runs;
      runs += RunMutations(data, file, rng);
    }
  }
  for (uint64_t i = 0; i < options.random_inputs; ++i) {
    std::vector<uint8_t> data(rng() % (options.max_len + 1));
    for (uint8_t& b : data) b = static_cast<uint8_t>(rng());
    Run(data, "random input " + std::to_string(i));
    ++runs;
  }
  std::printf("corpus_driver: %" PRIu64 " corpus files, %" PRIu64 " inputs, all returned 0\n",
              files, runs);
  return 0;
}
