// The versioned schema of the charge-record database and the code that
// brings any older database up to date.
//
// The schema version is SQLite's `PRAGMA user_version`; each applied
// migration is also logged in the table `schema_migrations` (version,
// description, when). Migrations run at start, each in its own transaction:
// a failure leaves the database at the last complete version. A database
// written by a newer evgate (higher version than this build knows) is
// refused rather than guessed at.
//
// Thread-compatible (operates on a Database the caller owns).
#ifndef EVGATE_SERVICES_SESSION_INTERNAL_SCHEMA_H_
#define EVGATE_SERVICES_SESSION_INTERNAL_SCHEMA_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/session/internal/sqlite.h"

namespace evgate::session::internal {

struct Migration {
  int version;              // 1, 2, ... without gaps
  const char* description;  // one line, for schema_migrations and logs
  const char* sql;          // ;-separated statements
};

// Every migration of this build, in order. Append only: a released
// migration is never edited.
const std::vector<Migration>& SchemaMigrations();

// The version SchemaMigrations() ends at.
int LatestSchemaVersion();

// Applies the migrations of `migrations` newer than the database's version.
// Fails with FAILED_PRECONDITION when the database is newer than the last
// migration given.
absl::Status Migrate(Database* db, const std::vector<Migration>& migrations, absl::Time now);

}  // namespace evgate::session::internal

#endif  // EVGATE_SERVICES_SESSION_INTERNAL_SCHEMA_H_
