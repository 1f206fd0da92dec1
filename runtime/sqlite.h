// A thin RAII layer over the SQLite C API, shared by the services that keep
// records (the session store, the OCPP bridge's transaction book): one
// connection (Database) and its prepared statements (Statement), with every
// error turned into an absl::Status that names the database file and the SQL;
// and versioned schema migrations (Migrate).
//
// Thread-compatible: a Database and its Statements must be used by one thread
// at a time (the owner serialises access); separate connections to the same
// file may be used concurrently (SQLite's WAL mode lets readers run while a
// writer commits).
#ifndef EVGATE_RUNTIME_SQLITE_H_
#define EVGATE_RUNTIME_SQLITE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct sqlite3;
struct sqlite3_stmt;

namespace evgate::sqlite {

class Database;

// A prepared statement. Bind parameters are 1-based as in SQLite.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, absl::string_view value);
  Statement& Bind(int index, const std::string& value) {
    return Bind(index, absl::string_view(value));
  }
  Statement& Bind(int index, const char* value) { return Bind(index, absl::string_view(value)); }
  Statement& Bind(int index, std::optional<double> value);
  Statement& Bind(int index, std::optional<int64_t> value);
  Statement& BindNull(int index);

  // Runs one step: true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Runs to completion, ignoring rows (INSERT, UPDATE, DELETE).
  absl::Status Run();
  // Clears bindings and rewinds, so the statement can run again.
  void Reset();

  bool IsNull(int column) const;
  int64_t Int(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;
  std::optional<double> OptionalDouble(int column) const;
  std::optional<int64_t> OptionalInt(int column) const;

 private:
  friend class Database;
  Statement(Database* db, sqlite3_stmt* stmt, std::string sql);

  Database* db_;
  sqlite3_stmt* stmt_;
  std::string sql_;
  absl::Status bind_error_;
};

struct OpenOptions {
  bool read_only = false;
  // Create the file if missing (ignored for read_only).
  bool create = true;
  // How long a statement waits for a lock held by another connection.
  int busy_timeout_ms = 5000;
};

// One connection to a database file.
class Database {
 public:
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path,
                                                        const OpenOptions& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more ;-separated statements without parameters.
  absl::Status Exec(absl::string_view sql);
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  // The first column of the first row of `sql` as an integer.
  absl::StatusOr<int64_t> QueryInt(absl::string_view sql);

  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;

  const std::string& path() const { return path_; }

  // Status for the last error of this connection, with context.
  absl::Status Error(int code, absl::string_view what) const;

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
};

// A transaction that rolls back unless committed. BEGIN IMMEDIATE takes the
// write lock at once, so a commit never fails for a lock taken by another
// writer in between.
class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(Database* db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  absl::Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

// Puts `db` in WAL mode with synchronous=FULL: readers never block the
// writer, and a commit returns only once its log is fsync'ed (survives a
// process kill and a power cut). FAILED_PRECONDITION when the file system
// refuses WAL (e.g. a network file system). `what` as for Migrate.
absl::Status UseDurableWal(Database* db, absl::string_view what);

// One step of a database's schema.
struct Migration {
  int version;              // 1, 2, ... without gaps
  const char* description;  // one line, for schema_migrations and logs
  const char* sql;          // ;-separated statements
};

// Brings `db` to the last version of `migrations`. The schema version is
// SQLite's `PRAGMA user_version`; each applied migration is also logged in
// the table `schema_migrations` (version, description, applied_at_us), which
// migration 1 must create. Each migration runs in its own transaction: a
// failure leaves the database at the last complete version. A database of a
// newer version than the last migration (written by a newer evgate) is
// refused with FAILED_PRECONDITION rather than guessed at. `what` names the
// database in messages and logs, e.g. "session database".
absl::Status Migrate(Database* db, const std::vector<Migration>& migrations, absl::Time now,
                     absl::string_view what);

}  // namespace evgate::sqlite

#endif  // EVGATE_RUNTIME_SQLITE_H_
