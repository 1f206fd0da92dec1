#include "runtime/test_certificates.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace evgate::testing {
namespace {

constexpr char kNewKey[] = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

absl::Status Run(const std::string& command) {
  const std::string full = absl::StrCat(command, " >/dev/null 2>&1");
  if (std::system(full.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("failed: ", command));
  }
  return absl::OkStatus();
}

absl::Status MakeCa(const std::string& base, const std::string& name) {
  return Run(absl::StrCat("openssl req -x509 ", kNewKey, " -keyout ", base, ".key -out ", base,
                          ".pem -days 2 -subj /CN=", name));
}

absl::Status Sign(const std::string& dir, const std::string& base, const std::string& subject,
                  const std::string& ca, const std::string& ca_key, const std::string& san) {
  if (auto s = Run(absl::StrCat("openssl req ", kNewKey, " -keyout ", base, ".key -out ", base,
                                ".csr -subj /CN=", subject));
      !s.ok()) {
    return s;
  }
  std::string ext;
  if (!san.empty()) {
    const std::string ext_file = absl::StrCat(base, ".ext");
    std::ofstream(ext_file) << "subjectAltName=" << san << "\n";
    ext = absl::StrCat(" -extfile ", ext_file);
  }
  return Run(absl::StrCat("openssl x509 -req -in ", base, ".csr -CA ", ca, " -CAkey ", ca_key,
                          " -CAcreateserial -CAserial ", dir, "/serial -out ", base, ".pem -days 2",
                          ext));
}

}  // namespace

absl::StatusOr<TestPki> TestPki::Create(const std::string& dir) {
  TestPki pki;
  pki.dir_ = dir;
  pki.ca_file_ = dir + "/site-ca.pem";
  pki.ca_key_ = dir + "/site-ca.key";
  pki.other_ca_file_ = dir + "/other-ca.pem";
  pki.other_ca_key_ = dir + "/other-ca.key";
  if (auto s = MakeCa(dir + "/site-ca", "evgate-test-site-ca"); !s.ok()) return s;
  if (auto s = MakeCa(dir + "/other-ca", "somebody-else-ca"); !s.ok()) return s;
  if (auto s = Sign(dir, dir + "/server", "localhost", pki.ca_file_, pki.ca_key_,
                    "DNS:localhost,IP:127.0.0.1");
      !s.ok()) {
    return s;
  }
  pki.server_ = {dir + "/server.pem", dir + "/server.key"};
  return pki;
}

absl::StatusOr<CertificatePair> TestPki::IssueClient(const std::string& common_name,
                                                     bool by_other_ca) const {
  const std::string base = absl::StrCat(dir_, "/client-", common_name, by_other_ca ? "-other" : "");
  if (auto s = Sign(dir_, base, common_name, by_other_ca ? other_ca_file_ : ca_file_,
                    by_other_ca ? other_ca_key_ : ca_key_, "");
      !s.ok()) {
    return s;
  }
  return CertificatePair{base + ".pem", base + ".key"};
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace evgate::testing
