#include "tools/probe/probe.h"

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/auth.h"
#include "runtime/server_host.h"
#include "runtime/test_certificates.h"

namespace evgate::probe {
namespace {

using ::testing::HasSubstr;

class NamedService : public Service {
 public:
  std::string_view name() const override { return "session"; }
  std::vector<grpc::Service*> grpc_services() override { return {}; }
  std::vector<std::string> health_names() const override { return {"evgate.v1.SessionService"}; }
};

struct Outcome {
  int code;
  std::string err;
};

Outcome Probe(std::vector<std::string> argv) {
  std::ostringstream err;
  const int code = RunProbe(argv, err);
  return {code, err.str()};
}

TEST(ProbeTest, ServingServerAndHostedServiceAreZeroAnUnhostedServiceIsOne) {
  NamedService service;
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.insecure = true;
  auto host = ServerHost::Start(options, {&service});
  ASSERT_TRUE(host.ok()) << host.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*host)->port());

  EXPECT_EQ(Probe({"--address", address}).code, kServing);
  EXPECT_EQ(Probe({"--address", address, "--service", "evgate.v1.SessionService"}).code, kServing);
  Outcome other = Probe({"--address", address, "--service", "evgate.v1.LoadBalancer"});
  EXPECT_EQ(other.code, kNotServing);
  EXPECT_THAT(other.err, HasSubstr("evgate.v1.LoadBalancer at " + address + ": not hosted there"));

  // Shut down: nobody answers.
  (*host)->Shutdown(absl::ZeroDuration());
  host->reset();
  Outcome gone = Probe({"--address", address, "--timeout-ms", "300"});
  EXPECT_EQ(gone.code, kUnreachable) << gone.err;
  EXPECT_THAT(gone.err, HasSubstr(address));
}

TEST(ProbeTest, TlsServerNeedsTheSiteCaAndAPlaintextProbeIsRefused) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/probe_pki");
  std::filesystem::create_directories(dir);
  auto pki = testing::TestPki::Create(dir);
  ASSERT_TRUE(pki.ok()) << pki.status();
  auto authorizer = Authorizer::Create({});
  ASSERT_TRUE(authorizer.ok()) << authorizer.status();
  NamedService service;
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.tls = {pki->server().cert_file, pki->server().key_file, pki->ca_file()};
  options.authorizer = authorizer->get();
  auto host = ServerHost::Start(options, {&service});
  ASSERT_TRUE(host.ok()) << host.status();
  // The server certificate is for localhost / 127.0.0.1.
  const std::string address = absl::StrCat("localhost:", (*host)->port());

  // Health needs no role: the probe has no client certificate.
  EXPECT_EQ(Probe({"--address", address, "--ca", pki->ca_file()}).code, kServing);
  EXPECT_EQ(Probe({"--address", address, "--timeout-ms", "500"}).code, kUnreachable);
  // The CA from the environment, as the k3s-gateway overlay sets it.
  setenv("EVGATE_PROBE_CA", pki->ca_file().c_str(), 1);
  EXPECT_EQ(Probe({"--address", address}).code, kServing);
  unsetenv("EVGATE_PROBE_CA");
  auto client = pki->IssueClient("probe.depot-1");
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(Probe({"--address", address, "--ca", pki->ca_file(), "--cert", client->cert_file,
                   "--key", client->key_file})
                .code,
            kServing);
}

TEST(ProbeTest, BadCommandLinesAreUsageErrors) {
  // Tried: an unknown flag, a stray word, a timeout that is not a positive
  // number, a certificate without its key, a CA file that does not exist.
  EXPECT_EQ(Probe({"--adress", "x"}).code, kUsage);
  EXPECT_EQ(Probe({"check"}).code, kUsage);
  Outcome timeout = Probe({"--timeout-ms", "soon"});
  EXPECT_EQ(timeout.code, kUsage);
  EXPECT_THAT(timeout.err, HasSubstr("--timeout-ms must be a positive number"));
  EXPECT_EQ(Probe({"--timeout-ms", "0"}).code, kUsage);
  EXPECT_EQ(Probe({"--ca", "ca.pem", "--cert", "c.pem"}).code, kUsage);
  Outcome missing = Probe({"--ca", "/nonexistent/ca.pem"});
  EXPECT_EQ(missing.code, kUsage);
  EXPECT_THAT(missing.err, HasSubstr("/nonexistent/ca.pem"));
}

}  // namespace
}  // namespace evgate::probe
