// ListSessions over a database of 1,000,000 charge records, through the
// gRPC API as a client sees it (SessionService hosted on a loopback server).
//
//   bazel run -c opt //services/session:list_sessions_benchmark -- [DB_PATH] [QUERIES]
//
// DB_PATH (default /var/tmp/evgate-list-sessions-benchmark.db) is filled once
// with 1,000,000 closed sessions of a 60-EVSE depot over three years (≈15
// sessions per EVSE and day, 200 cards) and reused by later runs. Each query
// mix runs QUERIES (default 2000) calls after 100 warm-up calls and reports
// p50, p99 and max latency per call; page size 100 (the API default) unless
// said otherwise.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "evgate/v1/session.grpc.pb.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "runtime/clock.h"
#include "runtime/server_host.h"
#include "services/session/session_service.h"
#include "services/session/testing/device_events.h"
#include "services/session/testing/fake_device_events.h"
#include "services/session/testing/test_site.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::session {
namespace {

using ::google::protobuf::util::TimeUtil;

constexpr int64_t kRecords = 1'000'000;
constexpr int kEvses = 60;
constexpr int kCards = 200;
constexpr absl::Time kFirstStart = absl::FromUnixSeconds(1'700'000'000);  // 2023-11-14
constexpr absl::Duration kSpan = absl::Hours(24 * 365 * 3);

std::string EvseId(int i) { return absl::StrCat("bench-evse-", i); }
std::string CardId(int i) { return absl::StrCat("0B", absl::Hex(0x100000 + i, absl::kZeroPad6)); }

absl::Status Fill(SessionStore& store) {
  absl::StatusOr<int64_t> have = store.CountSessions();
  if (!have.ok()) return have.status();
  if (*have >= kRecords) return absl::OkStatus();
  std::printf("filling %s with %lld sessions (once)...\n", store.path().c_str(),
              static_cast<long long>(kRecords - *have));
  std::mt19937_64 rng(7);
  const int64_t step_us = absl::ToInt64Microseconds(kSpan) / kRecords;
  std::vector<SessionRecord> batch;
  for (int64_t i = *have; i < kRecords; ++i) {
    SessionRecord r;
    v1::Session& s = r.session;
    const absl::Time start = kFirstStart + absl::Microseconds(step_us * i + rng() % step_us);
    const int evse = static_cast<int>(rng() % kEvses);
    s.set_session_id(absl::StrCat("B", absl::Hex(i, absl::kZeroPad8)));
    s.set_evse_id(EvseId(evse));
    s.set_station_id(EvseId(evse));
    s.set_connector_id(1);
    s.set_id_tag(CardId(static_cast<int>(rng() % kCards)));
    s.set_card_name("bench card");
    s.set_state(v1::SESSION_STATE_COMPLETED);
    s.set_connector_status(v1::CONNECTOR_STATUS_FINISHING);
    s.set_mode(v1::CHARGE_MODE_CHARGE);
    *s.mutable_start_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(start));
    const absl::Duration length = absl::Minutes(20 + rng() % 600);
    *s.mutable_end_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(start + length));
    s.set_start_mode(v1::START_MODE_RFID);
    s.set_stop_reason(v1::STOP_REASON_EV_DISCONNECTED);
    const double energy = static_cast<double>(rng() % 60000);
    s.set_meter_start_wh(static_cast<double>(i) * 10);
    s.set_meter_stop_wh(s.meter_start_wh() + energy);
    s.set_energy_charged_wh(energy);
    s.set_peak_power_w(11000);
    r.authorized_at = start;
    r.meter_last_wh = s.meter_stop_wh();
    batch.push_back(std::move(r));
    if (batch.size() == 20000 || i + 1 == kRecords) {
      if (absl::Status st = store.SaveSessions(batch); !st.ok()) return st;
      batch.clear();
    }
  }
  return absl::OkStatus();
}

struct Result {
  double p50_ms, p99_ms, max_ms;
  double rows_per_call;
};

Result Measure(int queries, const std::function<int()>& call) {
  for (int i = 0; i < 100; ++i) call();
  std::vector<double> ms;
  int64_t rows = 0;
  for (int i = 0; i < queries; ++i) {
    const auto start = std::chrono::steady_clock::now();
    rows += call();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[ms.size() * 99 / 100], ms.back(),
          static_cast<double>(rows) / queries};
}

int Run(const std::string& path, int queries) {
  // The site: the test site plus the benchmark's EVSEs are not needed by
  // ListSessions (it filters on stored ids), so the test site will do.
  absl::StatusOr<site::SiteConfig> config =
      site::LoadSiteConfigString(testing::TestSiteYaml(path), "benchmark.yaml");
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  {
    absl::StatusOr<std::unique_ptr<SessionStore>> store =
        SessionStore::Open(path, SystemClock::Get());
    if (!store.ok() || !Fill(**store).ok()) {
      std::fprintf(stderr, "cannot prepare %s\n", path.c_str());
      return 1;
    }
  }
  auto service = SessionService::Create(*config, SystemClock::Get(),
                                        std::make_unique<testing::FakeDeviceEvents>());
  if (!service.ok()) {
    std::fprintf(stderr, "%s\n", std::string(service.status().message()).c_str());
    return 1;
  }
  ServerOptions server;
  server.listen = "127.0.0.1:0";
  server.insecure = true;
  auto host = ServerHost::Start(server, {service->get()});
  if (!host.ok()) return 1;
  auto stub = v1::SessionService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*host)->port()), grpc::InsecureChannelCredentials()));
  std::printf("%lld sessions in %s (%.0f MB)\n",
              static_cast<long long>(*(*service)->store().CountSessions()), path.c_str(),
              static_cast<double>(std::filesystem::file_size(path)) / 1e6);

  std::mt19937_64 rng(11);
  auto random_start = [&](absl::Duration range) {
    return kFirstStart + absl::Seconds(static_cast<int64_t>(
                             rng() % static_cast<uint64_t>(absl::ToInt64Seconds(kSpan - range))));
  };
  auto list = [&](const v1::ListSessionsRequest& request, v1::ListSessionsResponse* response) {
    grpc::ClientContext context;
    grpc::Status status = stub->ListSessions(&context, request, response);
    if (!status.ok()) {
      std::fprintf(stderr, "ListSessions: %s\n", status.error_message().c_str());
      return -1;
    }
    return response->sessions_size();
  };
  auto ranged = [&](absl::Duration range) {
    v1::ListSessionsRequest request;
    const absl::Time from = random_start(range);
    *request.mutable_start_time_from() =
        TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(from));
    *request.mutable_start_time_to() =
        TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(from + range));
    return request;
  };

  struct Mix {
    const char* name;
    std::function<int()> call;
  };
  // Paging: each call fetches the next page of a one-month range, starting
  // a new range when one is exhausted or after 20 pages.
  v1::ListSessionsRequest paging;
  int pages = 0;
  const std::vector<Mix> mixes = {
      {"1 day range, first page",
       [&] {
         v1::ListSessionsResponse r;
         return list(ranged(absl::Hours(24)), &r);
       }},
      {"1 month range, pages 1-20 via next_page_token",
       [&] {
         if (pages == 0 || paging.page_token().empty() || pages == 20) {
           paging = ranged(absl::Hours(24 * 30));
           pages = 0;
         }
         v1::ListSessionsResponse r;
         const int n = list(paging, &r);
         paging.set_page_token(r.next_page_token());
         ++pages;
         return n;
       }},
      {"1 month range + EVSE",
       [&] {
         v1::ListSessionsRequest request = ranged(absl::Hours(24 * 30));
         request.set_evse_id(EvseId(static_cast<int>(rng() % kEvses)));
         v1::ListSessionsResponse r;
         return list(request, &r);
       }},
      {"1 month range + id tag",
       [&] {
         v1::ListSessionsRequest request = ranged(absl::Hours(24 * 30));
         request.set_id_tag(CardId(static_cast<int>(rng() % kCards)));
         v1::ListSessionsResponse r;
         return list(request, &r);
       }},
      {"1 year range + closed, first page",
       [&] {
         v1::ListSessionsRequest request = ranged(absl::Hours(24 * 365));
         request.set_state(v1::SESSION_STATE_FILTER_CLOSED);
         v1::ListSessionsResponse r;
         return list(request, &r);
       }},
      {"open sessions (no range)",
       [&] {
         v1::ListSessionsRequest request;
         request.set_state(v1::SESSION_STATE_FILTER_OPEN);
         v1::ListSessionsResponse r;
         return list(request, &r);
       }},
      {"1 week range, page size 1000 (export)",
       [&] {
         v1::ListSessionsRequest request = ranged(absl::Hours(24 * 7));
         request.set_page_size(1000);
         v1::ListSessionsResponse r;
         return list(request, &r);
       }},
  };
  std::printf("%-48s %9s %9s %9s %9s\n", "query", "p50 ms", "p99 ms", "max ms", "rows");
  for (const Mix& mix : mixes) {
    const Result r = Measure(queries, mix.call);
    std::printf("%-48s %9.2f %9.2f %9.2f %9.0f\n", mix.name, r.p50_ms, r.p99_ms, r.max_ms,
                r.rows_per_call);
  }
  (*host)->Shutdown(absl::Seconds(1));
  return 0;
}

}  // namespace
}  // namespace evgate::session

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "/var/tmp/evgate-list-sessions-benchmark.db";
  const int queries = argc > 2 ? std::atoi(argv[2]) : 2000;
  return evgate::session::Run(path, queries);
}
