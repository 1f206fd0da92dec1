#include "services/session/session_store.h"

#include <cstdlib>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "runtime/sqlite.h"
#include "services/session/internal/schema.h"

namespace evgate::session {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  std::remove(path.c_str());
  std::remove((path + "-wal").c_str());
  std::remove((path + "-shm").c_str());
  return path;
}

SessionRecord Record(const std::string& id, const std::string& evse, int64_t start_s,
                     bool open = false, const std::string& id_tag = "04A1B2C3") {
  SessionRecord r;
  v1::Session& s = r.session;
  s.set_session_id(id);
  s.set_evse_id(evse);
  s.set_station_id(evse);
  s.set_connector_id(1);
  s.set_id_tag(id_tag);
  s.set_state(open ? v1::SESSION_STATE_ACTIVE : v1::SESSION_STATE_COMPLETED);
  s.set_mode(v1::CHARGE_MODE_CHARGE);
  s.set_start_mode(v1::START_MODE_RFID);
  *s.mutable_start_time() = TimeUtil::SecondsToTimestamp(start_s);
  s.set_meter_start_wh(1000);
  s.set_energy_charged_wh(500);
  if (!open) {
    *s.mutable_end_time() = TimeUtil::SecondsToTimestamp(start_s + 3600);
    s.set_meter_stop_wh(1500);
    s.set_stop_reason(v1::STOP_REASON_EV_DISCONNECTED);
  }
  r.authorized_at = absl::FromUnixSeconds(start_s);
  return r;
}

std::vector<std::string> Ids(const v1::ListSessionsResponse& response) {
  std::vector<std::string> ids;
  for (const v1::Session& s : response.sessions()) ids.push_back(s.session_id());
  return ids;
}

class SessionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = TempPath("sessions.db");
    auto store = SessionStore::Open(path_, clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  FakeClock clock_;
  std::string path_;
  std::unique_ptr<SessionStore> store_;
};

TEST_F(SessionStoreTest, ARecordRoundTripsEveryField) {
  SessionRecord r = Record("01A", "wb1", 1800000000, /*open=*/false);
  v1::Session& s = r.session;
  s.set_card_name("Van 12");
  s.set_connector_status(v1::CONNECTOR_STATUS_FINISHING);
  s.set_mode(v1::CHARGE_MODE_DISCHARGE);
  s.set_vendor_stop_code("207");
  s.set_vendor_stop_description("EV Relay Pull-In timeout");
  s.set_meter_export_start_wh(20);
  s.set_meter_export_stop_wh(320);
  s.set_energy_discharged_wh(300);
  s.set_peak_power_w(21850);
  s.set_power_w(0);
  *s.mutable_last_meter_at() = TimeUtil::SecondsToTimestamp(1800003599);
  s.set_soc_start_pct(80);
  s.set_soc_end_pct(31.5);
  s.set_energy_limit_wh(5000);
  *s.mutable_time_limit() = TimeUtil::SecondsToDuration(5400);
  s.set_ocpp_transaction_id("tx-77");
  r.meter_last_wh = 1500;
  r.meter_export_last_wh = 320;
  r.device_energy_start_wh = 42;
  ASSERT_TRUE(store_->SaveSessions({r}).ok());

  auto back = store_->GetSession("01A");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->session.DebugString(), s.DebugString());
  EXPECT_EQ(back->authorized_at, absl::FromUnixSeconds(1800000000));
  EXPECT_EQ(back->meter_last_wh, 1500);
  EXPECT_EQ(back->meter_export_last_wh, 320);
  EXPECT_EQ(back->device_energy_start_wh, 42);
}

TEST_F(SessionStoreTest, EnumsAreStoredAsReadableNames) {
  ASSERT_TRUE(store_->SaveSessions({Record("01A", "wb1", 1800000000)}).ok());
  auto db = sqlite::Database::Open(path_, {});
  ASSERT_TRUE(db.ok());
  auto st = (*db)->Prepare("SELECT state, start_mode, stop_reason, mode FROM sessions");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(*st->Step());
  EXPECT_EQ(st->Text(0), "COMPLETED");
  EXPECT_EQ(st->Text(1), "RFID");
  EXPECT_EQ(st->Text(2), "EV_DISCONNECTED");
  EXPECT_EQ(st->Text(3), "CHARGE");
}

TEST_F(SessionStoreTest, SavingAgainUpdatesInsteadOfDuplicating) {
  SessionRecord r = Record("01A", "wb1", 1800000000, /*open=*/true);
  ASSERT_TRUE(store_->SaveSessions({r}).ok());
  r.session.set_energy_charged_wh(2500);
  ASSERT_TRUE(store_->SaveSessions({r}).ok());
  EXPECT_EQ(*store_->CountSessions(), 1);
  EXPECT_EQ(store_->GetSession("01A")->session.energy_charged_wh(), 2500);
}

TEST_F(SessionStoreTest, AClosedRecordIsFinalAndAWriteThatWouldChangeItSavesNothing) {
  // The write a late copy would make: the session's last ACTIVE state after
  // it was closed (found by session_crash_test: a batch of device events
  // recorded before a StopSession was written after it).
  SessionRecord open = Record("01A", "wb1", 1800000000, /*open=*/true);
  ASSERT_TRUE(store_->SaveSessions({open}).ok());
  const SessionRecord closed = Record("01A", "wb1", 1800000000, /*open=*/false);
  ASSERT_TRUE(store_->SaveSessions({closed}).ok());

  SessionRecord other = Record("01B", "wb2", 1800000100, /*open=*/true);
  open.session.set_energy_charged_wh(900);
  absl::Status late = store_->SaveSessions({other, open});
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(late.message(), HasSubstr("session 01A on EVSE wb1 is already closed"));
  EXPECT_EQ(store_->GetSession("01A")->session.DebugString(), closed.session.DebugString());
  EXPECT_EQ(store_->GetSession("01B").status().code(), absl::StatusCode::kNotFound)
      << "all or nothing";
  // Saving the same closed record again is a change too (updated_at).
  EXPECT_EQ(store_->SaveSessions({closed}).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SessionStoreTest, TheDatabaseRefusesTwoOpenSessionsOnOneEvseAndKeepsTheFirst) {
  ASSERT_TRUE(store_->SaveSessions({Record("01A", "wb1", 1800000000, /*open=*/true)}).ok());
  absl::Status second = store_->SaveSessions(
      {Record("01C", "wb2", 1800000100, true), Record("01B", "wb1", 1800000100, true)});
  EXPECT_EQ(second.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(second.message(), HasSubstr("EVSE wb1 already has an open session"));
  // All or nothing: wb2's session of the same call is not there either.
  auto open = store_->LoadOpenSessions();
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].session.session_id(), "01A");
  // A closed session on the same EVSE is fine.
  EXPECT_TRUE(store_->SaveSessions({Record("00Z", "wb1", 1700000000)}).ok());
}

TEST_F(SessionStoreTest, EverythingSurvivesReopening) {
  ASSERT_TRUE(store_->SaveSessions({Record("01A", "wb1", 1800000000, true)}).ok());
  v1::Card card;
  card.set_uid("04AABBCC");
  ASSERT_TRUE(store_->UpsertCards({card}).ok());
  store_.reset();
  auto reopened = SessionStore::Open(path_, clock_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->LoadOpenSessions()->size(), 1u);
  EXPECT_TRUE((*reopened)->GetCard("04AABBCC")->has_value());
}

TEST_F(SessionStoreTest, ListSessionsPagesNewestFirstWithoutGapsOrRepeats) {
  std::vector<SessionRecord> records;
  for (int i = 0; i < 25; ++i) {
    // Two sessions per start second, to exercise the tie-break on the id.
    records.push_back(
        Record(absl::StrCat("S", 100 + i), i % 2 ? "wb1" : "wb2", 1800000000 + i / 2));
  }
  ASSERT_TRUE(store_->SaveSessions(records).ok());
  v1::ListSessionsRequest request;
  request.set_page_size(7);
  std::vector<std::string> seen;
  int pages = 0;
  do {
    auto page = store_->ListSessions(request);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const v1::Session& s : page->sessions()) seen.push_back(s.session_id());
    request.set_page_token(page->next_page_token());
    ++pages;
  } while (!request.page_token().empty());
  EXPECT_EQ(pages, 4);
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_EQ(seen.front(), "S124");
  EXPECT_EQ(seen.back(), "S100");
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 25u);
}

TEST_F(SessionStoreTest, ListSessionsFiltersCombine) {
  ASSERT_TRUE(store_
                  ->SaveSessions({Record("A", "wb1", 1000, false, "CARD1"),
                                  Record("B", "wb1", 2000, false, "CARD2"),
                                  Record("C", "wb2", 3000, false, "CARD1"),
                                  Record("D", "wb1", 4000, true, "CARD1"),
                                  Record("E", "wb2", 5000, true, "CARD2")})
                  .ok());
  v1::ListSessionsRequest r;
  *r.mutable_start_time_from() = TimeUtil::SecondsToTimestamp(2000);
  *r.mutable_start_time_to() = TimeUtil::SecondsToTimestamp(5000);
  EXPECT_THAT(Ids(*store_->ListSessions(r)), ElementsAre("D", "C", "B"));  // [from, to)
  r.set_evse_id("wb1");
  EXPECT_THAT(Ids(*store_->ListSessions(r)), ElementsAre("D", "B"));
  r.set_id_tag("CARD1");
  EXPECT_THAT(Ids(*store_->ListSessions(r)), ElementsAre("D"));
  r.set_state(v1::SESSION_STATE_FILTER_CLOSED);
  EXPECT_THAT(Ids(*store_->ListSessions(r)), ElementsAre());
  v1::ListSessionsRequest open;
  open.set_state(v1::SESSION_STATE_FILTER_OPEN);
  EXPECT_THAT(Ids(*store_->ListSessions(open)), ElementsAre("E", "D"));
}

TEST_F(SessionStoreTest, ListSessionsRefusesBadRequestsWithActionableMessages) {
  v1::ListSessionsRequest r;
  r.set_page_size(-1);
  EXPECT_EQ(store_->ListSessions(r).status().code(), absl::StatusCode::kInvalidArgument);
  r.set_page_size(0);
  *r.mutable_start_time_from() = TimeUtil::SecondsToTimestamp(2000);
  *r.mutable_start_time_to() = TimeUtil::SecondsToTimestamp(1000);
  EXPECT_THAT(store_->ListSessions(r).status().message(), HasSubstr("must be before"));
  r.clear_start_time_to();
  r.set_page_token("not-a-token");
  EXPECT_THAT(store_->ListSessions(r).status().message(),
              HasSubstr("not a token from ListSessions"));

  // A token is bound to its filters.
  std::vector<SessionRecord> records;
  for (int i = 0; i < 3; ++i) records.push_back(Record(absl::StrCat("S", i), "wb1", 3000 + i));
  ASSERT_TRUE(store_->SaveSessions(records).ok());
  v1::ListSessionsRequest first;
  first.set_page_size(1);
  auto page = store_->ListSessions(first);
  ASSERT_TRUE(page.ok());
  ASSERT_FALSE(page->next_page_token().empty());
  v1::ListSessionsRequest other = first;
  other.set_evse_id("wb2");
  other.set_page_token(page->next_page_token());
  auto refused = store_->ListSessions(other);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("issued for different filters"));
}

TEST_F(SessionStoreTest, PageSizeDefaultsTo100AndIsClampedTo1000) {
  std::vector<SessionRecord> records;
  for (int i = 0; i < 1100; ++i) records.push_back(Record(absl::StrCat("S", 10000 + i), "wb1", i));
  ASSERT_TRUE(store_->SaveSessions(records).ok());
  v1::ListSessionsRequest r;
  EXPECT_EQ(store_->ListSessions(r)->sessions_size(), 100);
  r.set_page_size(5000);
  auto page = store_->ListSessions(r);
  EXPECT_EQ(page->sessions_size(), 1000);
  EXPECT_FALSE(page->next_page_token().empty());
}

TEST_F(SessionStoreTest, CardsKeepTheirCreationTimeWhenReplaced) {
  v1::Card card;
  card.set_uid("04AABBCC");
  card.set_name("Van 1");
  card.add_allowed_evse_ids("wb1");
  card.add_allowed_evse_ids("wb2");
  auto stored = store_->UpsertCards({card});
  ASSERT_TRUE(stored.ok());
  const absl::Time created = clock_.Now();
  clock_.Advance(absl::Hours(1));
  card.set_name("Van 1 (new driver)");
  ASSERT_TRUE(store_->UpsertCards({card}).ok());
  auto back = store_->GetCard("04AABBCC");
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->name(), "Van 1 (new driver)");
  EXPECT_THAT((*back)->allowed_evse_ids(), ElementsAre("wb1", "wb2"));
  EXPECT_EQ(TimeUtil::TimestampToSeconds((*back)->create_time()), absl::ToUnixSeconds(created));
  EXPECT_EQ(TimeUtil::TimestampToSeconds((*back)->update_time()),
            absl::ToUnixSeconds(clock_.Now()));
  EXPECT_TRUE(*store_->DeleteCard("04AABBCC"));
  EXPECT_FALSE(*store_->DeleteCard("04AABBCC"));
}

TEST_F(SessionStoreTest, AuthorizationCacheRoundTrips) {
  CachedAuthorization entry{"04AABBCC", v1::AUTHORIZATION_STATUS_BLOCKED, "FLEET",
                            absl::FromUnixSeconds(1800086400)};
  ASSERT_TRUE(store_->PutCachedAuthorization(entry).ok());
  auto back = store_->GetCachedAuthorization("04AABBCC");
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->status, v1::AUTHORIZATION_STATUS_BLOCKED);
  EXPECT_EQ((*back)->parent_id_tag, "FLEET");
  EXPECT_EQ((*back)->expires_at, absl::FromUnixSeconds(1800086400));
  EXPECT_FALSE(store_->GetCachedAuthorization("00000000")->has_value());
}

// --- schema migrations ------------------------------------------------------

TEST(SchemaTest, ANewDatabaseIsAtTheLatestVersionInWalModeWithFullSync) {
  FakeClock clock;
  const std::string path = TempPath("fresh.db");
  auto store = SessionStore::Open(path, clock);
  ASSERT_TRUE(store.ok()) << store.status();
  auto db = sqlite::Database::Open(path, {});
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*(*db)->QueryInt("PRAGMA user_version"), internal::LatestSchemaVersion());
  EXPECT_EQ(*(*db)->QueryInt("SELECT count(*) FROM schema_migrations"),
            internal::LatestSchemaVersion());
  auto mode = (*db)->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(*mode->Step());
  EXPECT_EQ(mode->Text(0), "wal");
}

TEST(SchemaTest, MigrationsApplyInOrderOnceAndKeepData) {
  const std::string path = TempPath("migrate.db");
  auto db = sqlite::Database::Open(path, {});
  ASSERT_TRUE(db.ok());
  const std::vector<sqlite::Migration> v1_only = {
      {1, "first",
       "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT, "
       "applied_at_us INTEGER); CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (7);"}};
  ASSERT_TRUE(internal::Migrate(db->get(), v1_only, absl::FromUnixSeconds(1)).ok());
  std::vector<sqlite::Migration> both = v1_only;
  both.push_back({2, "second", "ALTER TABLE t ADD COLUMN b INTEGER NOT NULL DEFAULT 5;"});
  ASSERT_TRUE(internal::Migrate(db->get(), both, absl::FromUnixSeconds(2)).ok());
  ASSERT_TRUE(internal::Migrate(db->get(), both, absl::FromUnixSeconds(3)).ok());  // no-op
  EXPECT_EQ(*(*db)->QueryInt("PRAGMA user_version"), 2);
  EXPECT_EQ(*(*db)->QueryInt("SELECT a + b FROM t"), 12);
  EXPECT_EQ(*(*db)->QueryInt("SELECT count(*) FROM schema_migrations"), 2);
}

TEST(SchemaTest, AFailingMigrationLeavesTheLastGoodVersion) {
  const std::string path = TempPath("failing.db");
  auto db = sqlite::Database::Open(path, {});
  ASSERT_TRUE(db.ok());
  const std::vector<sqlite::Migration> migrations = {
      {1, "first",
       "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT, "
       "applied_at_us INTEGER); CREATE TABLE t (a INTEGER);"},
      {2, "broken", "CREATE TABLE u (a INTEGER); INSERT INTO nowhere VALUES (1);"}};
  absl::Status s = internal::Migrate(db->get(), migrations, absl::FromUnixSeconds(1));
  EXPECT_THAT(s.message(), HasSubstr("schema migration to version 2 (broken) failed"));
  EXPECT_EQ(*(*db)->QueryInt("PRAGMA user_version"), 1);
  // Table u of the failed migration was rolled back with it.
  EXPECT_EQ(*(*db)->QueryInt("SELECT count(*) FROM sqlite_master WHERE name = 'u'"), 0);
}

TEST(SchemaTest, AVersion1DatabaseIsUpgradedWithItsRecords) {
  FakeClock clock;
  const std::string path = TempPath("v1.db");
  {
    auto db = sqlite::Database::Open(path, {});
    ASSERT_TRUE(db.ok());
    const std::vector<sqlite::Migration> v1 = {internal::SchemaMigrations()[0]};
    ASSERT_TRUE(internal::Migrate(db->get(), v1, clock.Now()).ok());
    ASSERT_TRUE((*db)
                    ->Exec(R"sql(
      INSERT INTO sessions VALUES ('01OLD', 'wb1', 'wb1', 1, '04A1B2C3', 'Van 12', 'COMPLETED',
        'AVAILABLE', 'CHARGE', 1700000000000000, 1700003600000000, 'RFID', 'EV_DISCONNECTED', '',
        '', 1000, 1500, 0, NULL, 500, 0, 7400, 0, NULL, NULL, NULL, NULL, NULL, '', 0,
        1700000000000000, 1500, NULL, 1700003600000000))sql")
                    .ok());
  }
  auto store = SessionStore::Open(path, clock);
  ASSERT_TRUE(store.ok()) << store.status();
  auto old = (*store)->GetSession("01OLD");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->session.energy_charged_wh(), 500);
  EXPECT_EQ(old->session.card_name(), "Van 12");
  EXPECT_FALSE(old->device_energy_start_wh.has_value());
  auto db = sqlite::Database::Open(path, {});
  EXPECT_EQ(*(*db)->QueryInt("PRAGMA user_version"), internal::LatestSchemaVersion());
  EXPECT_GE(internal::LatestSchemaVersion(), 2);
}

TEST(SchemaTest, ADatabaseFromANewerEvgateIsRefused) {
  FakeClock clock;
  const std::string path = TempPath("newer.db");
  {
    auto db = sqlite::Database::Open(path, {});
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version = 99").ok());
  }
  auto store = SessionStore::Open(path, clock);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 99, newer than this evgate"));
}

TEST(SchemaTest, AnUnwritableLocationIsReportedWithThePath) {
  FakeClock clock;
  auto store = SessionStore::Open("/nonexistent-dir/sessions.db", clock);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("/nonexistent-dir/sessions.db"));
}

}  // namespace
}  // namespace evgate::session
