// Who may charge where: the local card list, the authorization cache, the
// upstream CSMS and free vend, in that order (proto: SessionService.Authorize).
//
// The local card list has two parts: the cards of site.yaml
// (`authorization.cards`, read-only here, changed by editing the file) and
// the cards managed through the API (UpsertCards / DeleteCard, stored in the
// session database). There is no limit on their number: lookups are by key.
//
// A card decides on its own: blocked → BLOCKED (blocked wins over master);
// outside [valid_from, valid_until) → EXPIRED; at an EVSE that is neither in
// its allowed EVSEs nor in one of its allowed groups (both empty = anywhere)
// → NOT_ALLOWED_HERE; else ACCEPTED. An id tag not in the list is looked up
// in the authorization cache (answers of the CSMS, kept
// `offline_cache_ttl_s`, or less when the CSMS gave an expiry), then asked of
// the RemoteAuthorizer if one is plugged in; an unknown id tag at a free-vend
// EVSE is ACCEPTED (FREE_VEND); otherwise it is INVALID.
//
// CONCURRENT_TX needs the open sessions and is decided by the session
// manager, which calls this first.
//
// Thread-safe.
#ifndef EVGATE_SERVICES_SESSION_AUTHORIZER_H_
#define EVGATE_SERVICES_SESSION_AUTHORIZER_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "evgate/v1/session.pb.h"
#include "runtime/clock.h"
#include "services/session/session_store.h"
#include "site_controller/config/site_config.h"

namespace evgate::session {

// An answer of the upstream CSMS (OCPP Authorize.conf idTagInfo).
struct RemoteAuthorization {
  v1::AuthorizationStatus status = v1::AUTHORIZATION_STATUS_UNSPECIFIED;
  std::optional<absl::Time> expires_at;
  std::string parent_id_tag;
};

// The upstream CSMS as seen by the session service. The OCPP bridge
// implements it; until one is plugged in, authorization is local only.
class RemoteAuthorizer {
 public:
  virtual ~RemoteAuthorizer() = default;
  // Asks the CSMS about `id_tag`. UNAVAILABLE or DEADLINE_EXCEEDED when it
  // cannot be reached (offline). Thread-safe; may block up to its own
  // timeout (the caller holds no lock).
  virtual absl::StatusOr<RemoteAuthorization> Authorize(const std::string& id_tag) = 0;
};

struct AuthorizationDecision {
  v1::AuthorizeResponse response;
  // Why, for a person: "card 04B2… (Van 12) may charge only at wb3, wb4".
  std::string explanation;
};

// Checks an id tag given by a client or a device and returns it in the
// canonical form (an all-hex tag in upper case). INVALID_ARGUMENT names
// `field` when it is empty, longer than 20 characters (OCPP idTag) or has
// characters other than printable ASCII without spaces and commas.
absl::StatusOr<std::string> NormalizeIdTag(absl::string_view id_tag, absl::string_view field);

class Authorizer {
 public:
  // `config` must outlive the Authorizer.
  Authorizer(const site::SiteConfig& config, SessionStore* store, const Clock& clock);

  // Plugs in (or with nullptr removes) the upstream CSMS.
  void SetRemoteAuthorizer(RemoteAuthorizer* remote);

  // Decides for `id_tag` (canonical form) at `evse_id` ("" = without EVSE
  // restriction). Errors: NOT_FOUND for an unknown EVSE; database errors.
  absl::StatusOr<AuthorizationDecision> Authorize(const std::string& id_tag,
                                                  const std::string& evse_id);

  // The card from the local list (site.yaml or API), if any.
  absl::StatusOr<std::optional<v1::Card>> FindCard(const std::string& uid) const;

  bool IsFreeVend(const std::string& evse_id) const { return free_vend_.count(evse_id) > 0; }

  // --- card list management (SessionService ListCards/UpsertCards/DeleteCard)
  absl::StatusOr<v1::ListCardsResponse> ListCards(const v1::ListCardsRequest& request) const;
  // INVALID_ARGUMENT lists every problem of every card; FAILED_PRECONDITION
  // for a card defined in site.yaml. Nothing is written unless all are valid.
  absl::StatusOr<v1::UpsertCardsResponse> UpsertCards(const v1::UpsertCardsRequest& request);
  // NOT_FOUND if absent; FAILED_PRECONDITION for a site.yaml card.
  absl::Status DeleteCard(const std::string& uid);

 private:
  AuthorizationDecision Decide(const v1::Card& card, const std::string& evse_id) const;
  std::string CardLabel(const v1::Card& card) const;

  const site::SiteConfig& config_;
  SessionStore* const store_;
  const Clock& clock_;
  // site.yaml cards by uid, with the line they are defined on.
  std::map<std::string, v1::Card> config_cards_;
  std::map<std::string, int> config_card_lines_;
  std::set<std::string> free_vend_;
  // EVSE id -> its authorization groups.
  std::map<std::string, std::set<std::string>> evse_groups_;
  std::set<std::string> groups_;

  mutable absl::Mutex mu_;
  RemoteAuthorizer* remote_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace evgate::session

#endif  // EVGATE_SERVICES_SESSION_AUTHORIZER_H_
