#include "runtime/secret_file.h"

#include <openssl/crypto.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace evgate {

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string content = buffer.str();
  std::string secret(absl::StripAsciiWhitespace(content));
  OPENSSL_cleanse(content.data(), content.size());
  if (secret.empty()) return absl::FailedPreconditionError(absl::StrCat(path, " is empty"));
  return secret;
}

}  // namespace evgate
