#include "services/session/session_store.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/sqlite.h"
#include "services/session/internal/schema.h"

namespace evgate::session {

using sqlite::Database;
using sqlite::Statement;
using sqlite::Transaction;

std::string EnumShortName(const google::protobuf::EnumDescriptor* type, int number) {
  if (number == 0) return "";
  const google::protobuf::EnumValueDescriptor* value = type->FindValueByNumber(number);
  if (value == nullptr) return absl::StrCat(number);
  const std::string& unspecified = type->value(0)->name();  // FOO_UNSPECIFIED
  const std::string prefix = unspecified.substr(0, unspecified.size() - strlen("UNSPECIFIED"));
  const std::string& name = value->name();
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

int ParseEnumShortName(const google::protobuf::EnumDescriptor* type, const std::string& name) {
  if (name.empty()) return 0;
  const std::string& unspecified = type->value(0)->name();
  const std::string prefix = unspecified.substr(0, unspecified.size() - strlen("UNSPECIFIED"));
  const google::protobuf::EnumValueDescriptor* value = type->FindValueByName(prefix + name);
  if (value != nullptr) return value->number();
  int number = 0;
  if (absl::SimpleAtoi(name, &number) && type->FindValueByNumber(number) != nullptr) return number;
  return 0;
}

namespace {

int64_t Micros(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000000 + ts.nanos() / 1000;
}

google::protobuf::Timestamp FromMicros(int64_t us) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(us);
}

// The columns of `sessions`, in the order ReadSession() reads them.
constexpr char kSessionColumns[] =
    "session_id, evse_id, station_id, connector_id, id_tag, card_name, state, connector_status, "
    "mode, start_time_us, end_time_us, start_mode, stop_reason, vendor_stop_code, "
    "vendor_stop_description, meter_start_wh, meter_stop_wh, meter_export_start_wh, "
    "meter_export_stop_wh, energy_charged_wh, energy_discharged_wh, peak_power_w, power_w, "
    "last_meter_at_us, soc_start_pct, soc_end_pct, energy_limit_wh, time_limit_ms, "
    "ocpp_transaction_id, energy_authorized, authorized_at_us, meter_last_wh, "
    "meter_export_last_wh, updated_at_us, device_session_energy_start_wh";

// Insert, or update by session id. Not INSERT OR REPLACE: that would resolve
// a conflict on sessions_one_open_per_evse by deleting the other open
// session, where an error is wanted.
std::string UpsertSessionSql() {
  std::vector<std::string> columns = absl::StrSplit(kSessionColumns, ", ");
  std::vector<std::string> placeholders(columns.size(), "?");
  std::vector<std::string> updates;
  for (size_t i = 1; i < columns.size(); ++i) {
    updates.push_back(absl::StrCat(columns[i], " = excluded.", columns[i]));
  }
  return absl::StrCat("INSERT INTO sessions (", kSessionColumns, ") VALUES (",
                      absl::StrJoin(placeholders, ", "),
                      ") ON CONFLICT (session_id) DO UPDATE SET ", absl::StrJoin(updates, ", "),
                      " WHERE sessions.end_time_us IS NULL");
}

SessionRecord ReadSession(const Statement& row) {
  SessionRecord record;
  v1::Session& s = record.session;
  s.set_session_id(row.Text(0));
  s.set_evse_id(row.Text(1));
  s.set_station_id(row.Text(2));
  s.set_connector_id(static_cast<uint32_t>(row.Int(3)));
  s.set_id_tag(row.Text(4));
  s.set_card_name(row.Text(5));
  s.set_state(static_cast<v1::SessionState>(
      ParseEnumShortName(v1::SessionState_descriptor(), row.Text(6))));
  s.set_connector_status(static_cast<v1::ConnectorStatus>(
      ParseEnumShortName(v1::ConnectorStatus_descriptor(), row.Text(7))));
  s.set_mode(
      static_cast<v1::ChargeMode>(ParseEnumShortName(v1::ChargeMode_descriptor(), row.Text(8))));
  *s.mutable_start_time() = FromMicros(row.Int(9));
  if (!row.IsNull(10)) *s.mutable_end_time() = FromMicros(row.Int(10));
  s.set_start_mode(
      static_cast<v1::StartMode>(ParseEnumShortName(v1::StartMode_descriptor(), row.Text(11))));
  s.set_stop_reason(
      static_cast<v1::StopReason>(ParseEnumShortName(v1::StopReason_descriptor(), row.Text(12))));
  s.set_vendor_stop_code(row.Text(13));
  s.set_vendor_stop_description(row.Text(14));
  s.set_meter_start_wh(row.Double(15));
  if (!row.IsNull(16)) s.set_meter_stop_wh(row.Double(16));
  s.set_meter_export_start_wh(row.Double(17));
  if (!row.IsNull(18)) s.set_meter_export_stop_wh(row.Double(18));
  s.set_energy_charged_wh(row.Double(19));
  s.set_energy_discharged_wh(row.Double(20));
  s.set_peak_power_w(row.Double(21));
  s.set_power_w(row.Double(22));
  if (!row.IsNull(23)) *s.mutable_last_meter_at() = FromMicros(row.Int(23));
  if (!row.IsNull(24)) s.set_soc_start_pct(row.Double(24));
  if (!row.IsNull(25)) s.set_soc_end_pct(row.Double(25));
  if (!row.IsNull(26)) s.set_energy_limit_wh(row.Double(26));
  if (!row.IsNull(27)) {
    *s.mutable_time_limit() = google::protobuf::util::TimeUtil::MillisecondsToDuration(row.Int(27));
  }
  s.set_ocpp_transaction_id(row.Text(28));
  s.set_energy_authorized(row.Int(29) != 0);
  record.authorized_at = absl::FromUnixMicros(row.Int(30));
  record.meter_last_wh = row.OptionalDouble(31);
  record.meter_export_last_wh = row.OptionalDouble(32);
  record.device_energy_start_wh = row.OptionalDouble(34);
  return record;
}

void BindSession(const SessionRecord& record, int64_t now_us, Statement& st) {
  const v1::Session& s = record.session;
  auto opt_double = [](bool has, double v) {
    return has ? std::optional<double>(v) : std::nullopt;
  };
  st.Bind(1, s.session_id())
      .Bind(2, s.evse_id())
      .Bind(3, s.station_id())
      .Bind(4, int64_t{s.connector_id()})
      .Bind(5, s.id_tag())
      .Bind(6, s.card_name())
      .Bind(7, EnumShortName(v1::SessionState_descriptor(), s.state()))
      .Bind(8, EnumShortName(v1::ConnectorStatus_descriptor(), s.connector_status()))
      .Bind(9, EnumShortName(v1::ChargeMode_descriptor(), s.mode()))
      .Bind(10, Micros(s.start_time()))
      .Bind(11, s.has_end_time() ? std::optional<int64_t>(Micros(s.end_time())) : std::nullopt)
      .Bind(12, EnumShortName(v1::StartMode_descriptor(), s.start_mode()))
      .Bind(13, EnumShortName(v1::StopReason_descriptor(), s.stop_reason()))
      .Bind(14, s.vendor_stop_code())
      .Bind(15, s.vendor_stop_description())
      .Bind(16, s.meter_start_wh())
      .Bind(17, opt_double(s.has_meter_stop_wh(), s.meter_stop_wh()))
      .Bind(18, s.meter_export_start_wh())
      .Bind(19, opt_double(s.has_meter_export_stop_wh(), s.meter_export_stop_wh()))
      .Bind(20, s.energy_charged_wh())
      .Bind(21, s.energy_discharged_wh())
      .Bind(22, s.peak_power_w())
      .Bind(23, s.power_w())
      .Bind(24, s.has_last_meter_at() ? std::optional<int64_t>(Micros(s.last_meter_at()))
                                      : std::nullopt)
      .Bind(25, opt_double(s.has_soc_start_pct(), s.soc_start_pct()))
      .Bind(26, opt_double(s.has_soc_end_pct(), s.soc_end_pct()))
      .Bind(27, opt_double(s.has_energy_limit_wh(), s.energy_limit_wh()))
      .Bind(28, s.has_time_limit()
                    ? std::optional<int64_t>(
                          google::protobuf::util::TimeUtil::DurationToMilliseconds(s.time_limit()))
                    : std::nullopt)
      .Bind(29, s.ocpp_transaction_id())
      .Bind(30, int64_t{s.energy_authorized() ? 1 : 0})
      .Bind(31, absl::ToUnixMicros(record.authorized_at))
      .Bind(32, record.meter_last_wh)
      .Bind(33, record.meter_export_last_wh)
      .Bind(34, now_us)
      .Bind(35, record.device_energy_start_wh);
}

// --- cards ------------------------------------------------------------------

constexpr char kCardColumns[] =
    "uid, name, valid_from_us, valid_until_us, allowed_evse_ids, allowed_groups, blocked, master, "
    "parent_id_tag, create_time_us, update_time_us";

std::vector<std::string> SplitList(const std::string& text) {
  return absl::StrSplit(text, ',', absl::SkipEmpty());
}

v1::Card ReadCard(const Statement& row) {
  v1::Card card;
  card.set_uid(row.Text(0));
  card.set_name(row.Text(1));
  if (!row.IsNull(2)) *card.mutable_valid_from() = FromMicros(row.Int(2));
  if (!row.IsNull(3)) *card.mutable_valid_until() = FromMicros(row.Int(3));
  for (const std::string& id : SplitList(row.Text(4))) card.add_allowed_evse_ids(id);
  for (const std::string& id : SplitList(row.Text(5))) card.add_allowed_groups(id);
  card.set_blocked(row.Int(6) != 0);
  card.set_master(row.Int(7) != 0);
  card.set_parent_id_tag(row.Text(8));
  *card.mutable_create_time() = FromMicros(row.Int(9));
  *card.mutable_update_time() = FromMicros(row.Int(10));
  return card;
}

// --- page tokens ------------------------------------------------------------

// A fingerprint of the filters a token was issued for (FNV-1a), so a token
// used with other filters is refused instead of silently skipping rows.
std::string FilterFingerprint(const v1::ListSessionsRequest& r) {
  const std::string key =
      absl::StrCat(r.has_start_time_from() ? Micros(r.start_time_from()) : -1, "|",
                   r.has_start_time_to() ? Micros(r.start_time_to()) : -1, "|", r.evse_id(), "|",
                   r.id_tag(), "|", static_cast<int>(r.state()));
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : key) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return absl::StrCat(absl::Hex(hash, absl::kZeroPad16));
}

std::string EncodeToken(int64_t start_us, const std::string& session_id,
                        const std::string& fingerprint) {
  return absl::WebSafeBase64Escape(absl::StrCat("1|", start_us, "|", session_id, "|", fingerprint));
}

struct Cursor {
  int64_t start_us;
  std::string session_id;
};

absl::StatusOr<Cursor> DecodeToken(const std::string& token, const std::string& fingerprint) {
  const auto bad = absl::InvalidArgumentError(
      "page_token is not a token from ListSessions; pass next_page_token unchanged, or leave it "
      "empty for the first page");
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return bad;
  std::vector<std::string> parts = absl::StrSplit(raw, '|');
  Cursor cursor;
  if (parts.size() != 4 || parts[0] != "1" || !absl::SimpleAtoi(parts[1], &cursor.start_us) ||
      parts[2].empty()) {
    return bad;
  }
  if (parts[3] != fingerprint) {
    return absl::InvalidArgumentError(
        "page_token was issued for different filters; repeat the request with the filters of "
        "the first page, or start again without a page_token");
  }
  cursor.session_id = parts[2];
  return cursor;
}

}  // namespace

// A read connection borrowed from the pool; returned on destruction.
class SessionStore::Reader {
 public:
  Reader(const SessionStore* store, std::unique_ptr<Database> db)
      : store_(store), db_(std::move(db)) {}
  Reader(Reader&& other) noexcept : store_(other.store_), db_(std::move(other.db_)) {}
  ~Reader() {
    if (db_ == nullptr) return;
    absl::MutexLock lock(&store_->read_mu_);
    store_->idle_readers_.push_back(std::move(db_));
  }
  Database* operator->() const { return db_.get(); }
  Database* get() const { return db_.get(); }

 private:
  const SessionStore* store_;
  std::unique_ptr<Database> db_;
};

SessionStore::Reader SessionStore::Read() const {
  absl::MutexLock lock(&read_mu_);
  read_mu_.Await(absl::Condition(
      +[](std::vector<std::unique_ptr<Database>>* idle) { return !idle->empty(); },
      &idle_readers_));
  std::unique_ptr<Database> db = std::move(idle_readers_.back());
  idle_readers_.pop_back();
  return Reader(this, std::move(db));
}

SessionStore::SessionStore(std::string path, const Clock& clock)
    : path_(std::move(path)), clock_(clock) {}

SessionStore::~SessionStore() = default;

absl::StatusOr<std::unique_ptr<SessionStore>> SessionStore::Open(const std::string& path,
                                                                 const Clock& clock,
                                                                 SessionStoreOptions options) {
  std::unique_ptr<SessionStore> store(new SessionStore(path, clock));
  absl::StatusOr<std::unique_ptr<Database>> writer = Database::Open(path, {});
  if (!writer.ok()) return writer.status();
  Database& db = **writer;
  // WAL + FULL (see the header).
  if (absl::Status s = sqlite::UseDurableWal(&db, "session database"); !s.ok()) return s;
  if (absl::Status s = internal::Migrate(&db, internal::SchemaMigrations(), clock.Now()); !s.ok()) {
    return s;
  }
  for (int i = 0; i < std::max(1, options.readers); ++i) {
    absl::StatusOr<std::unique_ptr<Database>> reader = Database::Open(path, {});
    if (!reader.ok()) return reader.status();
    if (absl::Status s = (*reader)->Exec("PRAGMA query_only = 1"); !s.ok()) return s;
    store->idle_readers_.push_back(*std::move(reader));
  }
  store->writer_ = *std::move(writer);
  return store;
}

absl::Status SessionStore::SaveSessions(const std::vector<SessionRecord>& records) {
  if (records.empty()) return absl::OkStatus();
  absl::MutexLock lock(&write_mu_);
  absl::StatusOr<Transaction> tx = Transaction::Begin(writer_.get());
  if (!tx.ok()) return tx.status();
  absl::StatusOr<Statement> st = writer_->Prepare(UpsertSessionSql());
  if (!st.ok()) return st.status();
  const int64_t now_us = absl::ToUnixMicros(clock_.Now());
  for (const SessionRecord& record : records) {
    st->Reset();
    BindSession(record, now_us, *st);
    if (absl::Status s = st->Run(); !s.ok()) {
      if (s.code() == absl::StatusCode::kAlreadyExists) {
        return absl::AlreadyExistsError(
            absl::StrCat("EVSE ", record.session.evse_id(), " already has an open session in ",
                         path_, "; session ", record.session.session_id(), " was not saved"));
      }
      return s;
    }
    if (writer_->Changes() == 0) {
      // The upsert's WHERE kept a closed row: a charge record is final.
      return absl::FailedPreconditionError(absl::StrCat(
          "session ", record.session.session_id(), " on EVSE ", record.session.evse_id(),
          " is already closed in ", path_, " and a closed charge record never changes; ",
          "nothing of this write was saved"));
    }
  }
  return tx->Commit();
}

absl::StatusOr<std::vector<SessionRecord>> SessionStore::LoadOpenSessions() const {
  Reader db = Read();
  absl::StatusOr<Statement> st = db->Prepare(
      absl::StrCat("SELECT ", kSessionColumns,
                   " FROM sessions WHERE end_time_us IS NULL ORDER BY start_time_us, session_id"));
  if (!st.ok()) return st.status();
  std::vector<SessionRecord> records;
  while (true) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    records.push_back(ReadSession(*st));
  }
  return records;
}

absl::StatusOr<SessionRecord> SessionStore::GetSession(const std::string& session_id) const {
  Reader db = Read();
  absl::StatusOr<Statement> st =
      db->Prepare(absl::StrCat("SELECT ", kSessionColumns, " FROM sessions WHERE session_id = ?"));
  if (!st.ok()) return st.status();
  st->Bind(1, session_id);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) {
    return absl::NotFoundError(absl::StrCat("no session '", session_id,
                                            "'; `evgatectl sessions list` shows the sessions"));
  }
  return ReadSession(*st);
}

absl::StatusOr<int64_t> SessionStore::CountSessions() const {
  Reader db = Read();
  return db->QueryInt("SELECT count(*) FROM sessions");
}

absl::StatusOr<v1::ListSessionsResponse> SessionStore::ListSessions(
    const v1::ListSessionsRequest& request) const {
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_size ", request.page_size(), " is negative; use 0 for the default (100) or 1–1000"));
  }
  const int page_size = request.page_size() == 0 ? 100 : std::min(request.page_size(), 1000);
  if (request.has_start_time_from() && request.has_start_time_to() &&
      Micros(request.start_time_from()) >= Micros(request.start_time_to())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "start_time_from (", google::protobuf::util::TimeUtil::ToString(request.start_time_from()),
        ") must be before start_time_to (",
        google::protobuf::util::TimeUtil::ToString(request.start_time_to()), ")"));
  }
  if (!v1::SessionStateFilter_IsValid(request.state())) {
    return absl::InvalidArgumentError(
        absl::StrCat("state ", request.state(), " is not a SessionStateFilter value"));
  }
  const std::string fingerprint = FilterFingerprint(request);
  std::optional<Cursor> cursor;
  if (!request.page_token().empty()) {
    absl::StatusOr<Cursor> decoded = DecodeToken(request.page_token(), fingerprint);
    if (!decoded.ok()) return decoded.status();
    cursor = *decoded;
  }

  std::vector<std::string> where;
  if (request.has_start_time_from()) where.push_back("start_time_us >= ?");
  if (request.has_start_time_to()) where.push_back("start_time_us < ?");
  if (!request.evse_id().empty()) where.push_back("evse_id = ?");
  if (!request.id_tag().empty()) where.push_back("id_tag = ?");
  if (request.state() == v1::SESSION_STATE_FILTER_OPEN) where.push_back("end_time_us IS NULL");
  if (request.state() == v1::SESSION_STATE_FILTER_CLOSED) {
    where.push_back("end_time_us IS NOT NULL");
  }
  if (cursor) where.push_back("(start_time_us, session_id) < (?, ?)");
  const std::string sql =
      absl::StrCat("SELECT ", kSessionColumns, " FROM sessions",
                   where.empty() ? "" : absl::StrCat(" WHERE ", absl::StrJoin(where, " AND ")),
                   " ORDER BY start_time_us DESC, session_id DESC LIMIT ?");

  Reader db = Read();
  absl::StatusOr<Statement> st = db->Prepare(sql);
  if (!st.ok()) return st.status();
  int index = 1;
  if (request.has_start_time_from()) st->Bind(index++, Micros(request.start_time_from()));
  if (request.has_start_time_to()) st->Bind(index++, Micros(request.start_time_to()));
  if (!request.evse_id().empty()) st->Bind(index++, request.evse_id());
  if (!request.id_tag().empty()) st->Bind(index++, request.id_tag());
  if (cursor) {
    st->Bind(index++, cursor->start_us);
    st->Bind(index++, cursor->session_id);
  }
  st->Bind(index++, int64_t{page_size + 1});

  v1::ListSessionsResponse response;
  int64_t last_start_us = 0;
  while (true) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (response.sessions_size() == page_size) {
      const v1::Session& last = response.sessions(page_size - 1);
      response.set_next_page_token(EncodeToken(last_start_us, last.session_id(), fingerprint));
      break;
    }
    last_start_us = st->Int(9);
    *response.add_sessions() = ReadSession(*st).session;
  }
  return response;
}

absl::StatusOr<std::vector<v1::Card>> SessionStore::ListCards(const std::string& after_uid,
                                                              int limit) const {
  Reader db = Read();
  absl::StatusOr<Statement> st = db->Prepare(
      absl::StrCat("SELECT ", kCardColumns, " FROM cards WHERE uid > ? ORDER BY uid LIMIT ?"));
  if (!st.ok()) return st.status();
  st->Bind(1, after_uid).Bind(2, int64_t{limit});
  std::vector<v1::Card> cards;
  while (true) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    cards.push_back(ReadCard(*st));
  }
  return cards;
}

absl::StatusOr<std::optional<v1::Card>> SessionStore::GetCard(const std::string& uid) const {
  Reader db = Read();
  absl::StatusOr<Statement> st =
      db->Prepare(absl::StrCat("SELECT ", kCardColumns, " FROM cards WHERE uid = ?"));
  if (!st.ok()) return st.status();
  st->Bind(1, uid);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<v1::Card>();
  return std::optional<v1::Card>(ReadCard(*st));
}

absl::StatusOr<std::vector<v1::Card>> SessionStore::UpsertCards(
    const std::vector<v1::Card>& cards) {
  absl::MutexLock lock(&write_mu_);
  absl::StatusOr<Transaction> tx = Transaction::Begin(writer_.get());
  if (!tx.ok()) return tx.status();
  absl::StatusOr<Statement> created =
      writer_->Prepare("SELECT create_time_us FROM cards WHERE uid = ?");
  if (!created.ok()) return created.status();
  absl::StatusOr<Statement> st =
      writer_->Prepare(absl::StrCat("INSERT OR REPLACE INTO cards (", kCardColumns,
                                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  if (!st.ok()) return st.status();
  const int64_t now_us = absl::ToUnixMicros(clock_.Now());
  std::vector<v1::Card> stored;
  for (const v1::Card& card : cards) {
    created->Reset();
    created->Bind(1, card.uid());
    absl::StatusOr<bool> existing = created->Step();
    if (!existing.ok()) return existing.status();
    const int64_t create_us = *existing ? created->Int(0) : now_us;
    st->Reset();
    st->Bind(1, card.uid())
        .Bind(2, card.name())
        .Bind(3, card.has_valid_from() ? std::optional<int64_t>(Micros(card.valid_from()))
                                       : std::nullopt)
        .Bind(4, card.has_valid_until() ? std::optional<int64_t>(Micros(card.valid_until()))
                                        : std::nullopt)
        .Bind(5, absl::StrJoin(card.allowed_evse_ids(), ","))
        .Bind(6, absl::StrJoin(card.allowed_groups(), ","))
        .Bind(7, int64_t{card.blocked() ? 1 : 0})
        .Bind(8, int64_t{card.master() ? 1 : 0})
        .Bind(9, card.parent_id_tag())
        .Bind(10, create_us)
        .Bind(11, now_us);
    if (absl::Status s = st->Run(); !s.ok()) return s;
    v1::Card out = card;
    *out.mutable_create_time() = FromMicros(create_us);
    *out.mutable_update_time() = FromMicros(now_us);
    out.set_from_site_config(false);
    stored.push_back(std::move(out));
  }
  if (absl::Status s = tx->Commit(); !s.ok()) return s;
  return stored;
}

absl::StatusOr<bool> SessionStore::DeleteCard(const std::string& uid) {
  absl::MutexLock lock(&write_mu_);
  absl::StatusOr<Statement> st = writer_->Prepare("DELETE FROM cards WHERE uid = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, uid);
  if (absl::Status s = st->Run(); !s.ok()) return s;
  return writer_->Changes() > 0;
}

absl::StatusOr<std::optional<CachedAuthorization>> SessionStore::GetCachedAuthorization(
    const std::string& id_tag) const {
  Reader db = Read();
  absl::StatusOr<Statement> st = db->Prepare(
      "SELECT status, parent_id_tag, expires_at_us FROM authorization_cache WHERE id_tag = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, id_tag);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<CachedAuthorization>();
  CachedAuthorization entry;
  entry.id_tag = id_tag;
  entry.status = static_cast<v1::AuthorizationStatus>(
      ParseEnumShortName(v1::AuthorizationStatus_descriptor(), st->Text(0)));
  entry.parent_id_tag = st->Text(1);
  entry.expires_at = absl::FromUnixMicros(st->Int(2));
  return std::optional<CachedAuthorization>(entry);
}

absl::Status SessionStore::PutCachedAuthorization(const CachedAuthorization& entry) {
  absl::MutexLock lock(&write_mu_);
  absl::StatusOr<Statement> st = writer_->Prepare(
      "INSERT OR REPLACE INTO authorization_cache (id_tag, status, parent_id_tag, expires_at_us, "
      "stored_at_us) VALUES (?, ?, ?, ?, ?)");
  if (!st.ok()) return st.status();
  return st->Bind(1, entry.id_tag)
      .Bind(2, EnumShortName(v1::AuthorizationStatus_descriptor(), entry.status))
      .Bind(3, entry.parent_id_tag)
      .Bind(4, absl::ToUnixMicros(entry.expires_at))
      .Bind(5, absl::ToUnixMicros(clock_.Now()))
      .Run();
}

}  // namespace evgate::session
