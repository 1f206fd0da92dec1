#include "services/session/internal/schema.h"

namespace evgate::session::internal {
namespace {

// Version 1: charge records, the API-managed card list and the
// authorization cache.
//
// Conventions: times are microseconds since the Unix epoch (UTC) in
// INTEGER columns named *_us; energies Wh and powers W as REAL; enums are
// the evgate.v1 value names without their prefix ('ACTIVE', 'RFID'), so the
// file reads well in the sqlite3 shell; NULL means "absent".
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE schema_migrations (
  version INTEGER PRIMARY KEY NOT NULL,
  description TEXT NOT NULL,
  applied_at_us INTEGER NOT NULL
);

CREATE TABLE sessions (
  session_id TEXT PRIMARY KEY NOT NULL,
  evse_id TEXT NOT NULL,
  station_id TEXT NOT NULL,
  connector_id INTEGER NOT NULL,
  id_tag TEXT NOT NULL,
  card_name TEXT NOT NULL,
  state TEXT NOT NULL,
  connector_status TEXT NOT NULL,
  mode TEXT NOT NULL,
  start_time_us INTEGER NOT NULL,
  end_time_us INTEGER,
  start_mode TEXT NOT NULL,
  stop_reason TEXT NOT NULL,
  vendor_stop_code TEXT NOT NULL,
  vendor_stop_description TEXT NOT NULL,
  meter_start_wh REAL NOT NULL,
  meter_stop_wh REAL,
  meter_export_start_wh REAL NOT NULL,
  meter_export_stop_wh REAL,
  energy_charged_wh REAL NOT NULL,
  energy_discharged_wh REAL NOT NULL,
  peak_power_w REAL NOT NULL,
  power_w REAL NOT NULL,
  last_meter_at_us INTEGER,
  soc_start_pct REAL,
  soc_end_pct REAL,
  energy_limit_wh REAL,
  time_limit_ms INTEGER,
  ocpp_transaction_id TEXT NOT NULL,
  energy_authorized INTEGER NOT NULL,
  -- When the session was opened (start_time_us moves to the plug-in time).
  authorized_at_us INTEGER NOT NULL,
  -- Last register values read during the session: the stop meter if evgate
  -- has to close it without a final reading.
  meter_last_wh REAL,
  meter_export_last_wh REAL,
  updated_at_us INTEGER NOT NULL
);

-- ListSessions: newest first, optionally by EVSE or id tag, keyset paging.
CREATE INDEX sessions_by_start ON sessions (start_time_us, session_id);
CREATE INDEX sessions_by_evse ON sessions (evse_id, start_time_us, session_id);
CREATE INDEX sessions_by_id_tag ON sessions (id_tag, start_time_us, session_id);
CREATE INDEX sessions_open_by_start ON sessions (start_time_us, session_id)
  WHERE end_time_us IS NULL;
-- The database itself refuses a second open session on one EVSE.
CREATE UNIQUE INDEX sessions_one_open_per_evse ON sessions (evse_id)
  WHERE end_time_us IS NULL;

CREATE TABLE cards (
  uid TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  valid_from_us INTEGER,
  valid_until_us INTEGER,
  allowed_evse_ids TEXT NOT NULL,  -- comma-separated EVSE ids
  allowed_groups TEXT NOT NULL,    -- comma-separated group ids
  blocked INTEGER NOT NULL,
  master INTEGER NOT NULL,
  parent_id_tag TEXT NOT NULL,
  create_time_us INTEGER NOT NULL,
  update_time_us INTEGER NOT NULL
);

-- Answers of the upstream CSMS, reused offline until they expire.
CREATE TABLE authorization_cache (
  id_tag TEXT PRIMARY KEY NOT NULL,
  status TEXT NOT NULL,
  parent_id_tag TEXT NOT NULL,
  expires_at_us INTEGER NOT NULL,
  stored_at_us INTEGER NOT NULL
);
)sql";

// Version 2: the device's own session energy counter at the start of the
// session. Wallboxes such as the Cabur EV PLUS count their session in Wh
// but give their MID register only in 0.1 kWh steps; energy is measured on
// the counter when there is one, and the start value must survive a restart.
constexpr char kSchemaV2[] = R"sql(
ALTER TABLE sessions ADD COLUMN device_session_energy_start_wh REAL;
)sql";

}  // namespace

const std::vector<sqlite::Migration>& SchemaMigrations() {
  static const auto* migrations = new std::vector<sqlite::Migration>{
      {1, "charge records, card list, authorization cache", kSchemaV1},
      {2, "device session energy counter at session start", kSchemaV2},
  };
  return *migrations;
}

int LatestSchemaVersion() { return SchemaMigrations().back().version; }

}  // namespace evgate::session::internal
