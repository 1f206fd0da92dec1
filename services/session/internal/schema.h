// The versioned schema of the charge-record database (sqlite::Migrate brings
// any older database up to date at start).
//
// Thread-compatible (operates on a Database the caller owns).
#ifndef EVGATE_SERVICES_SESSION_INTERNAL_SCHEMA_H_
#define EVGATE_SERVICES_SESSION_INTERNAL_SCHEMA_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/sqlite.h"

namespace evgate::session::internal {

// Every migration of this build, in order. Append only: a released
// migration is never edited.
const std::vector<sqlite::Migration>& SchemaMigrations();

// The version SchemaMigrations() ends at.
int LatestSchemaVersion();

// sqlite::Migrate for the session database.
inline absl::Status Migrate(sqlite::Database* db, const std::vector<sqlite::Migration>& migrations,
                            absl::Time now) {
  return sqlite::Migrate(db, migrations, now, "session database");
}

}  // namespace evgate::session::internal

#endif  // EVGATE_SERVICES_SESSION_INTERNAL_SCHEMA_H_
