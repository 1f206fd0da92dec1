// The local Central System's record of OCPP transactions: the transactionId
// it gave each StartTransaction and what StopTransaction reported, in one
// SQLite file (`ocpp_transactions.db` next to site.yaml's
// `services.session_database`), so that the answers survive a bridge crash.
//
// Rules (each a failure of other Central Systems that users reported):
//   - Start is idempotent: a StartTransaction repeated after a reconnect
//     (same charge point, connector, idTag, timestamp and meterStart) gets the
//     transactionId it got the first time; nothing new is recorded.
//   - Stop is recorded exactly once: a repeated StopTransaction changes
//     nothing (kRepeated). A StopTransaction for a transactionId this book did
//     not give to that charge point (e.g. one started while the charger was
//     offline and the id was its own) is kept as an orphan stop, once per
//     (charge point, transactionId), and still answered Accepted by the
//     caller: the charger must not retry it for ever.
//   - transactionData (the meter values of the transaction) is kept as the
//     JSON the charger sent.
//
// Durability as the session store: WAL with synchronous=FULL, every call one
// transaction, on disk before it returns.
//
// Thread-safe (one connection behind a mutex: the rate is a few calls per
// charge point per hour).
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_TRANSACTION_BOOK_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_TRANSACTION_BOOK_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/clock.h"

namespace evgate::sqlite {
class Database;
}  // namespace evgate::sqlite

namespace evgate::ocpp {

struct StartTransactionRecord {
  std::string charge_point_id;
  int connector_id = 0;
  std::string id_tag;
  int64_t meter_start_wh = 0;
  absl::Time timestamp;  // the charger's
  std::optional<int64_t> reservation_id;
};

struct StopTransactionRecord {
  std::string charge_point_id;
  int64_t transaction_id = 0;
  int64_t meter_stop_wh = 0;
  absl::Time timestamp;               // the charger's
  std::string reason;                 // OCPP Reason; "" = absent (Local by the spec)
  std::string id_tag;                 // "" = absent
  std::string transaction_data_json;  // "" = absent
};

struct TransactionRecord {
  int64_t transaction_id = 0;
  StartTransactionRecord start;
  absl::Time recorded_at;
  std::optional<StopTransactionRecord> stop;
};

class TransactionBook {
 public:
  static absl::StatusOr<std::unique_ptr<TransactionBook>> Open(const std::string& path,
                                                               const Clock& clock);
  ~TransactionBook();

  // The transactionId for this start (the earlier one for a repeat).
  absl::StatusOr<int64_t> Start(const StartTransactionRecord& start);

  enum class StopResult {
    kRecorded,  // the transaction is now stopped
    kRepeated,  // it was stopped already; nothing changed
    kOrphan,    // not a transaction of this charge point; kept as an orphan stop
  };
  absl::StatusOr<StopResult> Stop(const StopTransactionRecord& stop);

  // nullopt when `transaction_id` is unknown.
  absl::StatusOr<std::optional<TransactionRecord>> Get(int64_t transaction_id) const;
  // The charge point's transactions not stopped yet, oldest first.
  absl::StatusOr<std::vector<TransactionRecord>> OpenTransactions(
      const std::string& charge_point_id) const;
  // Orphan stops recorded (all charge points).
  absl::StatusOr<int64_t> OrphanStopCount() const;

 private:
  TransactionBook(std::unique_ptr<sqlite::Database> db, const Clock& clock);

  mutable absl::Mutex mu_;
  std::unique_ptr<sqlite::Database> db_ ABSL_GUARDED_BY(mu_);
  const Clock& clock_;
};

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_TRANSACTION_BOOK_H_
