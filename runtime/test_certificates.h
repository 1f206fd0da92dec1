// Test-only: a throw-away PKI made with the openssl command line at test time
// (no private key is ever committed). Thread-compatible.
#ifndef EVGATE_RUNTIME_TEST_CERTIFICATES_H_
#define EVGATE_RUNTIME_TEST_CERTIFICATES_H_

#include <string>

#include "absl/status/statusor.h"

namespace evgate::testing {

struct CertificatePair {
  std::string cert_file;  // PEM
  std::string key_file;   // PEM
};

class TestPki {
 public:
  // A site CA, a server certificate for localhost / 127.0.0.1 signed by it,
  // and an unrelated second CA, all under `dir` (e.g. TEST_TMPDIR).
  static absl::StatusOr<TestPki> Create(const std::string& dir);

  // A client certificate with subject CN `common_name` (and no SAN), signed by
  // the site CA or, with `by_other_ca`, by the unrelated one.
  absl::StatusOr<CertificatePair> IssueClient(const std::string& common_name,
                                              bool by_other_ca = false) const;

  const std::string& ca_file() const { return ca_file_; }
  const CertificatePair& server() const { return server_; }

 private:
  std::string dir_;
  std::string ca_file_, ca_key_, other_ca_file_, other_ca_key_;
  CertificatePair server_;
};

// The content of `path`, or "" when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace evgate::testing

#endif  // EVGATE_RUNTIME_TEST_CERTIFICATES_H_
