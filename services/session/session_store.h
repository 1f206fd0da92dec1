// The charge-record database: sessions, the API-managed card list and the
// authorization cache, in one SQLite file (site.yaml
// `services.session_database`).
//
// Durability: the file is in WAL mode with `synchronous=FULL`, so a write
// call returns only after its transaction is on disk (the WAL is fsync'ed at
// every commit). A process crash (SIGKILL) or a power cut after the call
// returned loses nothing; one during the call loses the whole call and
// nothing else. NORMAL would survive a process crash too, but not a power
// cut, which is exactly when a site needs its charge records; grouping the
// changes of one event batch into one transaction keeps the fsync rate low
// instead.
//
// Reads (GetSession, ListSessions, cards, cache) use their own connections
// and run concurrently with writes, seeing the last committed state.
//
// Thread-safe.
#ifndef EVGATE_SERVICES_SESSION_SESSION_STORE_H_
#define EVGATE_SERVICES_SESSION_SESSION_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "evgate/v1/session.pb.h"
#include "runtime/clock.h"

namespace evgate::sqlite {
class Database;
}  // namespace evgate::sqlite

namespace evgate::session {

// A session as stored: the public record plus what is needed to carry it on
// (or close it properly) after a restart.
struct SessionRecord {
  v1::Session session;
  // When the session was opened (start_time moves to the plug-in time).
  absl::Time authorized_at = absl::InfinitePast();
  // The last register values read during the session.
  std::optional<double> meter_last_wh;
  std::optional<double> meter_export_last_wh;
  // The device's own session energy counter when this session started
  // (EvseMeasurements.session_energy_wh), if the device has one.
  std::optional<double> device_energy_start_wh;
};

// An answer of the upstream CSMS kept for offline use.
struct CachedAuthorization {
  std::string id_tag;
  v1::AuthorizationStatus status = v1::AUTHORIZATION_STATUS_UNSPECIFIED;
  std::string parent_id_tag;
  absl::Time expires_at;
};

struct SessionStoreOptions {
  // Read connections for concurrent RPCs.
  int readers = 4;
};

class SessionStore {
 public:
  // Opens (creating the file if needed) and migrates the database to the
  // latest schema. Errors name the file and say what to do.
  static absl::StatusOr<std::unique_ptr<SessionStore>> Open(const std::string& path,
                                                            const Clock& clock,
                                                            SessionStoreOptions options = {});
  ~SessionStore();

  const std::string& path() const { return path_; }

  // --- sessions ------------------------------------------------------------

  // Inserts or replaces `records` (by session id) in one transaction: all or
  // nothing. Fails with ALREADY_EXISTS if it would leave two open sessions
  // on one EVSE, and with FAILED_PRECONDITION if it would change a session
  // that is already closed (a closed charge record is final).
  absl::Status SaveSessions(const std::vector<SessionRecord>& records);

  // Every open session (end_time absent), oldest first.
  absl::StatusOr<std::vector<SessionRecord>> LoadOpenSessions() const;

  // One session; NOT_FOUND names the id.
  absl::StatusOr<SessionRecord> GetSession(const std::string& session_id) const;

  // ListSessions with its documented filters and paging (newest start time
  // first). INVALID_ARGUMENT for a negative page size, an empty or inverted
  // time range, or a page token that is malformed or was issued for other
  // filters.
  absl::StatusOr<v1::ListSessionsResponse> ListSessions(
      const v1::ListSessionsRequest& request) const;

  // Number of sessions stored (tests, benchmarks, logs).
  absl::StatusOr<int64_t> CountSessions() const;

  // --- card list (API-managed cards; site.yaml cards are not stored) -------

  // Cards with uid > `after_uid`, ordered by uid, at most `limit`.
  absl::StatusOr<std::vector<v1::Card>> ListCards(const std::string& after_uid, int limit) const;
  absl::StatusOr<std::optional<v1::Card>> GetCard(const std::string& uid) const;
  // Creates or replaces `cards` in one transaction, keeping the creation
  // time of replaced cards. Returns them as stored.
  absl::StatusOr<std::vector<v1::Card>> UpsertCards(const std::vector<v1::Card>& cards);
  // False if there was no such card.
  absl::StatusOr<bool> DeleteCard(const std::string& uid);

  // --- authorization cache --------------------------------------------------

  absl::StatusOr<std::optional<CachedAuthorization>> GetCachedAuthorization(
      const std::string& id_tag) const;
  absl::Status PutCachedAuthorization(const CachedAuthorization& entry);

 private:
  class Reader;
  SessionStore(std::string path, const Clock& clock);

  // Borrows a read connection for the lifetime of the returned object.
  Reader Read() const;

  const std::string path_;
  const Clock& clock_;

  absl::Mutex write_mu_;
  std::unique_ptr<sqlite::Database> writer_ ABSL_GUARDED_BY(write_mu_);

  mutable absl::Mutex read_mu_;
  mutable std::vector<std::unique_ptr<sqlite::Database>> idle_readers_ ABSL_GUARDED_BY(read_mu_);
};

// Short name of an enum value as stored and exported: "ACTIVE" for
// SESSION_STATE_ACTIVE; "" for the UNSPECIFIED value.
std::string EnumShortName(const google::protobuf::EnumDescriptor* type, int number);
// The inverse; 0 (UNSPECIFIED) for an unknown name.
int ParseEnumShortName(const google::protobuf::EnumDescriptor* type, const std::string& name);

}  // namespace evgate::session

#endif  // EVGATE_SERVICES_SESSION_SESSION_STORE_H_
