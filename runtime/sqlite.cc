#include "runtime/sqlite.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/log.h"

namespace evgate::sqlite {
namespace {

constexpr log::Logger kLog("sqlite");

absl::StatusCode CodeOf(int code) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return absl::StatusCode::kAlreadyExists;
    case SQLITE_FULL:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status Database::Error(int code, absl::string_view what) const {
  const char* message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(code);
  return absl::Status(CodeOf(code), absl::StrCat("database ", path_, ": ", what, ": ", message));
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                         const OpenOptions& options) {
  int flags = SQLITE_OPEN_NOMUTEX;
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (options.create) flags |= SQLITE_OPEN_CREATE;
  }
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<Database> db(new Database(raw, path));
  if (rc != SQLITE_OK) return db->Error(rc, "cannot open");
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  return db;
}

Database::~Database() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

absl::Status Database::Exec(absl::string_view sql) {
  const std::string text(sql);
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string detail = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    return absl::Status(CodeOf(rc), absl::StrCat("database ", path_, ": ", detail,
                                                 " (in: ", text.substr(0, 120), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return Error(rc, absl::StrCat("cannot prepare '", sql.substr(0, 120), "'"));
  }
  return Statement(this, stmt, std::string(sql));
}

absl::StatusOr<int64_t> Database::QueryInt(absl::string_view sql) {
  absl::StatusOr<Statement> stmt = Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError(absl::StrCat("no row from '", sql, "'"));
  return stmt->Int(0);
}

int64_t Database::Changes() const { return sqlite3_changes(db_); }

Statement::Statement(Database* db, sqlite3_stmt* stmt, std::string sql)
    : db_(db), stmt_(stmt), sql_(std::move(sql)) {}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      sql_(std::move(other.sql_)),
      bind_error_(std::move(other.bind_error_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
    sql_ = std::move(other.sql_);
    bind_error_ = std::move(other.bind_error_);
  }
  return *this;
}

Statement::~Statement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

namespace {
// Keeps the first bind error; Step() reports it.
void Check(int rc, absl::Status* error, Database* db, int index) {
  if (rc != SQLITE_OK && error->ok()) {
    *error = db->Error(rc, absl::StrCat("cannot bind parameter ", index));
  }
}
}  // namespace

Statement& Statement::Bind(int index, int64_t value) {
  Check(sqlite3_bind_int64(stmt_, index, value), &bind_error_, db_, index);
  return *this;
}

Statement& Statement::Bind(int index, double value) {
  Check(sqlite3_bind_double(stmt_, index, value), &bind_error_, db_, index);
  return *this;
}

Statement& Statement::Bind(int index, absl::string_view value) {
  Check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                          SQLITE_TRANSIENT),
        &bind_error_, db_, index);
  return *this;
}

Statement& Statement::Bind(int index, std::optional<double> value) {
  return value ? Bind(index, *value) : BindNull(index);
}

Statement& Statement::Bind(int index, std::optional<int64_t> value) {
  return value ? Bind(index, *value) : BindNull(index);
}

Statement& Statement::BindNull(int index) {
  Check(sqlite3_bind_null(stmt_, index), &bind_error_, db_, index);
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_error_.ok()) return bind_error_;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error(rc, absl::StrCat("'", sql_.substr(0, 120), "' failed"));
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = absl::OkStatus();
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}
int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::Double(int column) const { return sqlite3_column_double(stmt_, column); }
std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt_, column));
}
std::optional<double> Statement::OptionalDouble(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Double(column);
}
std::optional<int64_t> Statement::OptionalInt(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Int(column);
}

absl::StatusOr<Transaction> Transaction::Begin(Database* db) {
  if (absl::Status s = db->Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  return Transaction(db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->Exec("ROLLBACK");
}

absl::Status Transaction::Commit() {
  absl::Status s = db_->Exec("COMMIT");
  if (s.ok()) db_ = nullptr;
  return s;
}

absl::Status UseDurableWal(Database* db, absl::string_view what) {
  std::string journal_mode;
  {
    absl::StatusOr<Statement> wal = db->Prepare("PRAGMA journal_mode = WAL");
    if (!wal.ok()) return wal.status();
    absl::StatusOr<bool> row = wal->Step();
    if (!row.ok()) return row.status();
    if (*row) journal_mode = wal->Text(0);
  }
  if (journal_mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", db->path(),
                     ": cannot switch to WAL journal mode (is it on a network file system?)"));
  }
  return db->Exec("PRAGMA synchronous = FULL");
}

absl::Status Migrate(Database* db, const std::vector<Migration>& migrations, absl::Time now,
                     absl::string_view what) {
  absl::StatusOr<int64_t> version = db->QueryInt("PRAGMA user_version");
  if (!version.ok()) return version.status();
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  if (*version > latest) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " ", db->path(), " has schema version ", *version, ", newer than this evgate knows (",
        latest, "); run the evgate release that wrote it, or restore a backup"));
  }
  for (const Migration& migration : migrations) {
    if (migration.version <= *version) continue;
    absl::StatusOr<Transaction> tx = Transaction::Begin(db);
    if (!tx.ok()) return tx.status();
    absl::Status s = db->Exec(migration.sql);
    if (s.ok()) {
      absl::StatusOr<Statement> log = db->Prepare(
          "INSERT INTO schema_migrations (version, description, applied_at_us) VALUES (?, ?, ?)");
      s = log.ok() ? log->Bind(1, int64_t{migration.version})
                         .Bind(2, migration.description)
                         .Bind(3, absl::ToUnixMicros(now))
                         .Run()
                   : log.status();
    }
    if (s.ok()) s = db->Exec(absl::StrCat("PRAGMA user_version = ", migration.version));
    if (s.ok()) s = tx->Commit();
    if (!s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat("schema migration to version ", migration.version, " (",
                                       migration.description, ") failed: ", s.message()));
    }
    kLog.Info("%s %s: schema version %d (%s)", what, db->path(), migration.version,
              migration.description);
  }
  return absl::OkStatus();
}

}  // namespace evgate::sqlite
