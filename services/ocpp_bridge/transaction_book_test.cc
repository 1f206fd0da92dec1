// The transaction book: idempotent starts, stops recorded once, orphan stops,
// and everything still there after the file is reopened (as after kill -9:
// every call commits before it returns, so reopening is the same as a crash
// between calls).
#include "services/ocpp_bridge/transaction_book.h"

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace evgate::ocpp {
namespace {

class TransactionBookTest : public ::testing::Test {
 protected:
  std::string Path() const {
    return std::string(std::getenv("TEST_TMPDIR")) + "/" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db";
  }
  std::unique_ptr<TransactionBook> OpenBook() {
    absl::StatusOr<std::unique_ptr<TransactionBook>> book = TransactionBook::Open(Path(), clock_);
    EXPECT_TRUE(book.ok()) << book.status();
    return book.ok() ? *std::move(book) : nullptr;
  }
  static StartTransactionRecord Start(std::string cp, int connector, int64_t meter) {
    StartTransactionRecord start;
    start.charge_point_id = std::move(cp);
    start.connector_id = connector;
    start.id_tag = "04A1B2C3";
    start.meter_start_wh = meter;
    start.timestamp = absl::FromUnixSeconds(1'800'000'000);
    return start;
  }
  static StopTransactionRecord Stop(std::string cp, int64_t id, int64_t meter) {
    StopTransactionRecord stop;
    stop.charge_point_id = std::move(cp);
    stop.transaction_id = id;
    stop.meter_stop_wh = meter;
    stop.timestamp = absl::FromUnixSeconds(1'800'003'600);
    stop.reason = "EVDisconnected";
    stop.transaction_data_json = R"([{"timestamp":"2027-01-15T08:00:00Z","sampledValue":[]}])";
    return stop;
  }
  FakeClock clock_;
};

TEST_F(TransactionBookTest, RepeatedStartGetsTheSameIdAndANewStartANewOne) {
  auto book = OpenBook();
  absl::StatusOr<int64_t> first = book->Start(Start("DS60-1", 1, 1000));
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<int64_t> again = book->Start(Start("DS60-1", 1, 1000));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  absl::StatusOr<int64_t> other_connector = book->Start(Start("DS60-1", 2, 1000));
  absl::StatusOr<int64_t> other_meter = book->Start(Start("DS60-1", 1, 1001));
  ASSERT_TRUE(other_connector.ok() && other_meter.ok());
  EXPECT_NE(*other_connector, *first);
  EXPECT_NE(*other_meter, *first);
  EXPECT_NE(*other_meter, *other_connector);
  absl::StatusOr<std::vector<TransactionRecord>> open = book->OpenTransactions("DS60-1");
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->size(), 3u);
}

TEST_F(TransactionBookTest, StopIsRecordedOnceWithItsData) {
  auto book = OpenBook();
  const int64_t id = *book->Start(Start("DS60-1", 1, 1000));
  absl::StatusOr<TransactionBook::StopResult> stop = book->Stop(Stop("DS60-1", id, 5000));
  ASSERT_TRUE(stop.ok()) << stop.status();
  EXPECT_EQ(*stop, TransactionBook::StopResult::kRecorded);
  // The charger retries after losing our answer, with another meter value.
  EXPECT_EQ(*book->Stop(Stop("DS60-1", id, 5999)), TransactionBook::StopResult::kRepeated);
  std::optional<TransactionRecord> record = *book->Get(id);
  ASSERT_TRUE(record.has_value());
  ASSERT_TRUE(record->stop.has_value());
  EXPECT_EQ(record->stop->meter_stop_wh, 5000);
  EXPECT_EQ(record->stop->reason, "EVDisconnected");
  EXPECT_EQ(record->stop->transaction_data_json,
            R"([{"timestamp":"2027-01-15T08:00:00Z","sampledValue":[]}])");
  EXPECT_TRUE(book->OpenTransactions("DS60-1")->empty());
}

TEST_F(TransactionBookTest, StopOfAnUnknownOrForeignTransactionIsKeptOnceAsOrphan) {
  auto book = OpenBook();
  const int64_t id = *book->Start(Start("DS60-1", 1, 1000));
  // Another charger naming DS60-1's transaction, and an id never given.
  EXPECT_EQ(*book->Stop(Stop("ICE22-1", id, 10)), TransactionBook::StopResult::kOrphan);
  EXPECT_EQ(*book->Stop(Stop("ICE22-1", 987654, 10)), TransactionBook::StopResult::kOrphan);
  EXPECT_EQ(*book->Stop(Stop("ICE22-1", 987654, 10)), TransactionBook::StopResult::kRepeated);
  EXPECT_EQ(*book->OrphanStopCount(), 2);
  // DS60-1's own transaction is untouched.
  EXPECT_FALSE((*book->Get(id))->stop.has_value());
  EXPECT_FALSE(book->Get(987654)->has_value());
}

TEST_F(TransactionBookTest, EverythingSurvivesAReopen) {
  int64_t stopped = 0;
  int64_t open = 0;
  {
    auto book = OpenBook();
    stopped = *book->Start(Start("DS60-1", 1, 1000));
    open = *book->Start(Start("DS60-1", 2, 2000));
    ASSERT_EQ(*book->Stop(Stop("DS60-1", stopped, 3000)), TransactionBook::StopResult::kRecorded);
  }
  auto book = OpenBook();
  EXPECT_EQ(*book->Start(Start("DS60-1", 2, 2000)), open);
  EXPECT_EQ(*book->Stop(Stop("DS60-1", stopped, 3000)), TransactionBook::StopResult::kRepeated);
  std::vector<TransactionRecord> still_open = *book->OpenTransactions("DS60-1");
  ASSERT_EQ(still_open.size(), 1u);
  EXPECT_EQ(still_open[0].transaction_id, open);
  EXPECT_EQ(still_open[0].start.meter_start_wh, 2000);
  // Ids are never reused, even after the last one is stopped and reopened.
  ASSERT_EQ(*book->Stop(Stop("DS60-1", open, 2500)), TransactionBook::StopResult::kRecorded);
  EXPECT_GT(*book->Start(Start("DS60-1", 1, 9000)), open);
}

TEST_F(TransactionBookTest, AnUnwritableFileIsAClearError) {
  absl::StatusOr<std::unique_ptr<TransactionBook>> book =
      TransactionBook::Open("/proc/evgate/no-such-dir/ocpp.db", clock_);
  ASSERT_FALSE(book.ok());
  EXPECT_NE(std::string(book.status().message()).find("/proc/evgate/no-such-dir/ocpp.db"),
            std::string::npos)
      << book.status();
}

}  // namespace
}  // namespace evgate::ocpp
