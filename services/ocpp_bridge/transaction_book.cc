#include "services/ocpp_bridge/transaction_book.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/sqlite.h"

namespace evgate::ocpp {
namespace {

using sqlite::Database;
using sqlite::Statement;
using sqlite::Transaction;

constexpr char kWhat[] = "OCPP transaction database";

// Version 1. Times are microseconds since the Unix epoch (UTC), *_us;
// energies Wh as the charger's integer register; NULL = absent.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE schema_migrations (
  version INTEGER PRIMARY KEY NOT NULL,
  description TEXT NOT NULL,
  applied_at_us INTEGER NOT NULL
);

CREATE TABLE transactions (
  transaction_id INTEGER PRIMARY KEY AUTOINCREMENT,
  charge_point_id TEXT NOT NULL,
  connector_id INTEGER NOT NULL,
  id_tag TEXT NOT NULL,
  meter_start_wh INTEGER NOT NULL,
  start_time_us INTEGER NOT NULL,
  reservation_id INTEGER,
  recorded_at_us INTEGER NOT NULL,
  stopped INTEGER NOT NULL DEFAULT 0,
  meter_stop_wh INTEGER,
  stop_time_us INTEGER,
  stop_reason TEXT,
  stop_id_tag TEXT,
  transaction_data TEXT,
  stop_recorded_at_us INTEGER
);

-- A repeated StartTransaction is the same row.
CREATE UNIQUE INDEX transactions_by_start
  ON transactions (charge_point_id, connector_id, id_tag, start_time_us, meter_start_wh);
CREATE INDEX transactions_open ON transactions (charge_point_id, transaction_id) WHERE stopped = 0;

CREATE TABLE orphan_stops (
  charge_point_id TEXT NOT NULL,
  transaction_id INTEGER NOT NULL,
  meter_stop_wh INTEGER NOT NULL,
  stop_time_us INTEGER NOT NULL,
  stop_reason TEXT,
  stop_id_tag TEXT,
  transaction_data TEXT,
  recorded_at_us INTEGER NOT NULL,
  PRIMARY KEY (charge_point_id, transaction_id)
);
)sql";

const std::vector<sqlite::Migration>& Migrations() {
  static const auto* migrations = new std::vector<sqlite::Migration>{
      {1, "OCPP transactions and orphan stops", kSchemaV1},
  };
  return *migrations;
}

constexpr char kSelectColumns[] =
    "SELECT transaction_id, charge_point_id, connector_id, id_tag, meter_start_wh, "
    "start_time_us, reservation_id, recorded_at_us, stopped, meter_stop_wh, stop_time_us, "
    "stop_reason, stop_id_tag, transaction_data FROM transactions ";

TransactionRecord ReadRow(const Statement& row) {
  TransactionRecord record;
  record.transaction_id = row.Int(0);
  record.start.charge_point_id = row.Text(1);
  record.start.connector_id = static_cast<int>(row.Int(2));
  record.start.id_tag = row.Text(3);
  record.start.meter_start_wh = row.Int(4);
  record.start.timestamp = absl::FromUnixMicros(row.Int(5));
  record.start.reservation_id = row.OptionalInt(6);
  record.recorded_at = absl::FromUnixMicros(row.Int(7));
  if (row.Int(8) != 0) {
    StopTransactionRecord stop;
    stop.charge_point_id = record.start.charge_point_id;
    stop.transaction_id = record.transaction_id;
    stop.meter_stop_wh = row.Int(9);
    stop.timestamp = absl::FromUnixMicros(row.Int(10));
    stop.reason = row.Text(11);
    stop.id_tag = row.Text(12);
    stop.transaction_data_json = row.Text(13);
    record.stop = std::move(stop);
  }
  return record;
}

// Binds "" as NULL.
Statement& BindText(Statement& st, int index, const std::string& text) {
  return text.empty() ? st.BindNull(index) : st.Bind(index, text);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TransactionBook>> TransactionBook::Open(const std::string& path,
                                                                       const Clock& clock) {
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path, {});
  if (!db.ok()) return db.status();
  if (absl::Status s = sqlite::UseDurableWal(db->get(), kWhat); !s.ok()) return s;
  if (absl::Status s = sqlite::Migrate(db->get(), Migrations(), clock.Now(), kWhat); !s.ok()) {
    return s;
  }
  return std::unique_ptr<TransactionBook>(new TransactionBook(*std::move(db), clock));
}

TransactionBook::TransactionBook(std::unique_ptr<Database> db, const Clock& clock)
    : db_(std::move(db)), clock_(clock) {}

TransactionBook::~TransactionBook() = default;

absl::StatusOr<int64_t> TransactionBook::Start(const StartTransactionRecord& start) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Transaction> tx = Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  absl::StatusOr<Statement> find = db_->Prepare(
      "SELECT transaction_id FROM transactions WHERE charge_point_id = ? AND connector_id = ? "
      "AND id_tag = ? AND start_time_us = ? AND meter_start_wh = ?");
  if (!find.ok()) return find.status();
  find->Bind(1, start.charge_point_id)
      .Bind(2, int64_t{start.connector_id})
      .Bind(3, start.id_tag)
      .Bind(4, absl::ToUnixMicros(start.timestamp))
      .Bind(5, start.meter_start_wh);
  absl::StatusOr<bool> found = find->Step();
  if (!found.ok()) return found.status();
  if (*found) return find->Int(0);

  absl::StatusOr<Statement> insert = db_->Prepare(
      "INSERT INTO transactions (charge_point_id, connector_id, id_tag, meter_start_wh, "
      "start_time_us, reservation_id, recorded_at_us) VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!insert.ok()) return insert.status();
  insert->Bind(1, start.charge_point_id)
      .Bind(2, int64_t{start.connector_id})
      .Bind(3, start.id_tag)
      .Bind(4, start.meter_start_wh)
      .Bind(5, absl::ToUnixMicros(start.timestamp))
      .Bind(6, start.reservation_id)
      .Bind(7, absl::ToUnixMicros(clock_.Now()));
  if (absl::Status s = insert->Run(); !s.ok()) return s;
  absl::StatusOr<int64_t> id = db_->QueryInt("SELECT last_insert_rowid()");
  if (!id.ok()) return id.status();
  if (absl::Status s = tx->Commit(); !s.ok()) return s;
  return *id;
}

absl::StatusOr<TransactionBook::StopResult> TransactionBook::Stop(
    const StopTransactionRecord& stop) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Transaction> tx = Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  absl::StatusOr<Statement> find = db_->Prepare(
      "SELECT stopped FROM transactions WHERE transaction_id = ? AND charge_point_id = ?");
  if (!find.ok()) return find.status();
  find->Bind(1, stop.transaction_id).Bind(2, stop.charge_point_id);
  absl::StatusOr<bool> found = find->Step();
  if (!found.ok()) return found.status();
  const int64_t now_us = absl::ToUnixMicros(clock_.Now());
  StopResult result;
  if (*found) {
    if (find->Int(0) != 0) return StopResult::kRepeated;
    absl::StatusOr<Statement> update = db_->Prepare(
        "UPDATE transactions SET stopped = 1, meter_stop_wh = ?, stop_time_us = ?, "
        "stop_reason = ?, stop_id_tag = ?, transaction_data = ?, stop_recorded_at_us = ? "
        "WHERE transaction_id = ?");
    if (!update.ok()) return update.status();
    update->Bind(1, stop.meter_stop_wh).Bind(2, absl::ToUnixMicros(stop.timestamp));
    BindText(*update, 3, stop.reason);
    BindText(*update, 4, stop.id_tag);
    BindText(*update, 5, stop.transaction_data_json);
    update->Bind(6, now_us).Bind(7, stop.transaction_id);
    if (absl::Status s = update->Run(); !s.ok()) return s;
    result = StopResult::kRecorded;
  } else {
    absl::StatusOr<Statement> insert = db_->Prepare(
        "INSERT OR IGNORE INTO orphan_stops (charge_point_id, transaction_id, meter_stop_wh, "
        "stop_time_us, stop_reason, stop_id_tag, transaction_data, recorded_at_us) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (!insert.ok()) return insert.status();
    insert->Bind(1, stop.charge_point_id)
        .Bind(2, stop.transaction_id)
        .Bind(3, stop.meter_stop_wh)
        .Bind(4, absl::ToUnixMicros(stop.timestamp));
    BindText(*insert, 5, stop.reason);
    BindText(*insert, 6, stop.id_tag);
    BindText(*insert, 7, stop.transaction_data_json);
    insert->Bind(8, now_us);
    if (absl::Status s = insert->Run(); !s.ok()) return s;
    result = db_->Changes() == 0 ? StopResult::kRepeated : StopResult::kOrphan;
  }
  if (absl::Status s = tx->Commit(); !s.ok()) return s;
  return result;
}

absl::StatusOr<std::optional<TransactionRecord>> TransactionBook::Get(
    int64_t transaction_id) const {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> st =
      db_->Prepare(absl::StrCat(kSelectColumns, "WHERE transaction_id = ?"));
  if (!st.ok()) return st.status();
  st->Bind(1, transaction_id);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<TransactionRecord>();
  return std::optional<TransactionRecord>(ReadRow(*st));
}

absl::StatusOr<std::vector<TransactionRecord>> TransactionBook::OpenTransactions(
    const std::string& charge_point_id) const {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> st = db_->Prepare(absl::StrCat(
      kSelectColumns, "WHERE charge_point_id = ? AND stopped = 0 ORDER BY transaction_id"));
  if (!st.ok()) return st.status();
  st->Bind(1, charge_point_id);
  std::vector<TransactionRecord> records;
  while (true) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    records.push_back(ReadRow(*st));
  }
  return records;
}

absl::StatusOr<int64_t> TransactionBook::OrphanStopCount() const {
  absl::MutexLock lock(&mu_);
  return db_->QueryInt("SELECT COUNT(*) FROM orphan_stops");
}

}  // namespace evgate::ocpp
