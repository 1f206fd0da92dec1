#include "services/session/authorizer.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/log.h"

namespace evgate::session {
namespace {

constexpr log::Logger kLog("session");
constexpr size_t kMaxIdTagLength = 20;  // OCPP 1.6 IdToken: CiString20Type

google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(ts));
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string StatusName(v1::AuthorizationStatus status) {
  return EnumShortName(v1::AuthorizationStatus_descriptor(), status);
}

}  // namespace

absl::StatusOr<std::string> NormalizeIdTag(absl::string_view id_tag, absl::string_view field) {
  if (id_tag.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is empty; give the card UID in hex"));
  }
  if (id_tag.size() > kMaxIdTagLength) {
    return absl::InvalidArgumentError(absl::StrCat(field, " '", id_tag, "' has ", id_tag.size(),
                                                   " characters; an id tag has at most 20"));
  }
  bool hex = true;
  for (char c : id_tag) {
    if (c <= ' ' || c > '~' || c == ',') {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " '", absl::CHexEscape(id_tag),
          "' has a character that is not allowed; use printable ASCII without spaces or commas "
          "(a card UID is hex digits, no separators)"));
    }
    hex = hex && absl::ascii_isxdigit(static_cast<unsigned char>(c));
  }
  return hex ? absl::AsciiStrToUpper(id_tag) : std::string(id_tag);
}

Authorizer::Authorizer(const site::SiteConfig& config, SessionStore* store, const Clock& clock)
    : config_(config), store_(store), clock_(clock) {
  for (const site::CardConfig& c : config.authorization.cards) {
    v1::Card card;
    card.set_uid(c.uid);
    card.set_name(c.name);
    if (c.valid_from) *card.mutable_valid_from() = ToProto(*c.valid_from);
    if (c.valid_until) *card.mutable_valid_until() = ToProto(*c.valid_until);
    for (const std::string& e : c.evses) card.add_allowed_evse_ids(e);
    for (const std::string& g : c.groups) card.add_allowed_groups(g);
    card.set_blocked(c.blocked);
    card.set_master(c.master);
    card.set_from_site_config(true);
    config_card_lines_[c.uid] = c.source.line();
    config_cards_[c.uid] = std::move(card);
  }
  free_vend_.insert(config.authorization.free_vend_evses.begin(),
                    config.authorization.free_vend_evses.end());
  for (const site::StationConfig& station : config.stations) {
    for (const site::EvseConfig& evse : station.evses) {
      evse_groups_[evse.id].insert(evse.groups.begin(), evse.groups.end());
      groups_.insert(evse.groups.begin(), evse.groups.end());
    }
  }
}

void Authorizer::SetRemoteAuthorizer(RemoteAuthorizer* remote) {
  absl::MutexLock lock(&mu_);
  remote_ = remote;
}

std::string Authorizer::CardLabel(const v1::Card& card) const {
  return card.name().empty() ? absl::StrCat("card ", card.uid())
                             : absl::StrCat("card ", card.uid(), " (", card.name(), ")");
}

absl::StatusOr<std::optional<v1::Card>> Authorizer::FindCard(const std::string& uid) const {
  auto it = config_cards_.find(uid);
  if (it != config_cards_.end()) return std::optional<v1::Card>(it->second);
  return store_->GetCard(uid);
}

AuthorizationDecision Authorizer::Decide(const v1::Card& card, const std::string& evse_id) const {
  AuthorizationDecision d;
  v1::AuthorizeResponse& r = d.response;
  r.set_source(v1::AUTHORIZATION_SOURCE_LOCAL_LIST);
  r.set_master(card.master());
  r.set_parent_id_tag(card.parent_id_tag());
  r.set_card_name(card.name());
  if (card.has_valid_until()) *r.mutable_expires_at() = card.valid_until();
  const absl::Time now = clock_.Now();
  if (card.blocked()) {
    r.set_status(v1::AUTHORIZATION_STATUS_BLOCKED);
    d.explanation = absl::StrCat(CardLabel(card), " is blocked");
    return d;
  }
  if (card.has_valid_from() && now < FromProto(card.valid_from())) {
    r.set_status(v1::AUTHORIZATION_STATUS_EXPIRED);
    d.explanation = absl::StrCat(CardLabel(card), " is not valid before ",
                                 TimeText(FromProto(card.valid_from())));
    return d;
  }
  if (card.has_valid_until() && now >= FromProto(card.valid_until())) {
    r.set_status(v1::AUTHORIZATION_STATUS_EXPIRED);
    d.explanation =
        absl::StrCat(CardLabel(card), " expired at ", TimeText(FromProto(card.valid_until())));
    return d;
  }
  if (!evse_id.empty() && (card.allowed_evse_ids_size() > 0 || card.allowed_groups_size() > 0)) {
    bool allowed =
        std::count(card.allowed_evse_ids().begin(), card.allowed_evse_ids().end(), evse_id) > 0;
    auto groups = evse_groups_.find(evse_id);
    for (const std::string& group : card.allowed_groups()) {
      allowed = allowed || (groups != evse_groups_.end() && groups->second.count(group) > 0);
    }
    if (!allowed) {
      r.set_status(v1::AUTHORIZATION_STATUS_NOT_ALLOWED_HERE);
      std::vector<std::string> where;
      if (card.allowed_evse_ids_size() > 0) {
        where.push_back(absl::StrCat("EVSEs ", absl::StrJoin(card.allowed_evse_ids(), ", ")));
      }
      if (card.allowed_groups_size() > 0) {
        where.push_back(absl::StrCat("groups ", absl::StrJoin(card.allowed_groups(), ", ")));
      }
      d.explanation = absl::StrCat(CardLabel(card), " may not charge at ", evse_id,
                                   "; it may charge at ", absl::StrJoin(where, " and "));
      return d;
    }
  }
  r.set_status(v1::AUTHORIZATION_STATUS_ACCEPTED);
  d.explanation = absl::StrCat(CardLabel(card), " accepted from the local list");
  return d;
}

absl::StatusOr<AuthorizationDecision> Authorizer::Authorize(const std::string& id_tag,
                                                            const std::string& evse_id) {
  if (!evse_id.empty() && config_.FindEvse(evse_id) == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("unknown EVSE '", evse_id, "'; site.yaml defines ",
                     absl::StrJoin(evse_groups_, ", ",
                                   [](std::string* out, const auto& e) { out->append(e.first); })));
  }
  absl::StatusOr<std::optional<v1::Card>> card = FindCard(id_tag);
  if (!card.ok()) return card.status();
  if (card->has_value()) return Decide(**card, evse_id);

  const absl::Time now = clock_.Now();
  absl::StatusOr<std::optional<CachedAuthorization>> cached =
      store_->GetCachedAuthorization(id_tag);
  if (!cached.ok()) return cached.status();
  if (cached->has_value() && (*cached)->expires_at > now) {
    AuthorizationDecision d;
    d.response.set_status((*cached)->status);
    d.response.set_source(v1::AUTHORIZATION_SOURCE_CACHE);
    d.response.set_parent_id_tag((*cached)->parent_id_tag);
    *d.response.mutable_expires_at() = ToProto((*cached)->expires_at);
    d.explanation =
        absl::StrCat("id tag ", id_tag, ": ", StatusName((*cached)->status),
                     " from the authorization cache (until ", TimeText((*cached)->expires_at), ")");
    return d;
  }

  RemoteAuthorizer* remote;
  {
    absl::MutexLock lock(&mu_);
    remote = remote_;
  }
  std::string remote_problem = "no upstream CSMS is configured";
  if (remote != nullptr) {
    absl::StatusOr<RemoteAuthorization> answer = remote->Authorize(id_tag);
    if (answer.ok()) {
      const int64_t ttl_s = config_.authorization.offline_cache_ttl_s;
      if (ttl_s > 0) {
        CachedAuthorization entry;
        entry.id_tag = id_tag;
        entry.status = answer->status;
        entry.parent_id_tag = answer->parent_id_tag;
        entry.expires_at = now + absl::Seconds(ttl_s);
        if (answer->expires_at) entry.expires_at = std::min(entry.expires_at, *answer->expires_at);
        if (absl::Status s = store_->PutCachedAuthorization(entry); !s.ok()) {
          kLog.Warning("cannot cache the CSMS answer for %s: %s", id_tag, s.message());
        }
      }
      AuthorizationDecision d;
      d.response.set_status(answer->status);
      d.response.set_source(v1::AUTHORIZATION_SOURCE_REMOTE);
      d.response.set_parent_id_tag(answer->parent_id_tag);
      if (answer->expires_at) *d.response.mutable_expires_at() = ToProto(*answer->expires_at);
      d.explanation =
          absl::StrCat("id tag ", id_tag, ": ", StatusName(answer->status), " from the CSMS");
      return d;
    }
    remote_problem = absl::StrCat("the CSMS could not be asked (", answer.status().message(), ")");
  }

  AuthorizationDecision d;
  if (!evse_id.empty() && IsFreeVend(evse_id)) {
    d.response.set_status(v1::AUTHORIZATION_STATUS_ACCEPTED);
    d.response.set_source(v1::AUTHORIZATION_SOURCE_FREE_VEND);
    d.explanation = absl::StrCat("EVSE ", evse_id, " is free vend");
    return d;
  }
  d.response.set_status(v1::AUTHORIZATION_STATUS_INVALID);
  d.response.set_source(v1::AUTHORIZATION_SOURCE_LOCAL_LIST);
  d.explanation =
      absl::StrCat("unknown card ", id_tag, ": not in the local card list, no cached answer, and ",
                   remote_problem, "; add it with UpsertCards or in site.yaml");
  return d;
}

absl::StatusOr<v1::ListCardsResponse> Authorizer::ListCards(
    const v1::ListCardsRequest& request) const {
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_size ", request.page_size(), " is negative; use 0 for the default (100) or 1–1000"));
  }
  const int page_size = request.page_size() == 0 ? 100 : std::min(request.page_size(), 1000);
  std::string after;
  if (!request.page_token().empty()) {
    std::string raw;
    if (!absl::WebSafeBase64Unescape(request.page_token(), &raw) || raw.rfind("c1|", 0) != 0) {
      return absl::InvalidArgumentError(
          "page_token is not a token from ListCards; pass next_page_token unchanged");
    }
    after = raw.substr(3);
  }
  absl::StatusOr<std::vector<v1::Card>> stored = store_->ListCards(after, page_size + 1);
  if (!stored.ok()) return stored.status();
  // Merge the two sorted lists by uid.
  std::vector<v1::Card> merged;
  auto config_it = config_cards_.upper_bound(after);
  auto stored_it = stored->begin();
  while (static_cast<int>(merged.size()) <= page_size &&
         (config_it != config_cards_.end() || stored_it != stored->end())) {
    if (stored_it == stored->end() ||
        (config_it != config_cards_.end() && config_it->first < stored_it->uid())) {
      merged.push_back((config_it++)->second);
    } else {
      merged.push_back(*stored_it++);
    }
  }
  v1::ListCardsResponse response;
  for (int i = 0; i < std::min(page_size, static_cast<int>(merged.size())); ++i) {
    *response.add_cards() = merged[i];
  }
  if (static_cast<int>(merged.size()) > page_size) {
    response.set_next_page_token(
        absl::WebSafeBase64Escape(absl::StrCat("c1|", merged[page_size - 1].uid())));
  }
  return response;
}

absl::StatusOr<v1::UpsertCardsResponse> Authorizer::UpsertCards(
    const v1::UpsertCardsRequest& request) {
  if (request.cards_size() == 0) {
    return absl::InvalidArgumentError("no cards given; UpsertCards needs at least one card");
  }
  std::vector<std::string> problems;
  std::vector<v1::Card> cards;
  std::set<std::string> seen;
  for (int i = 0; i < request.cards_size(); ++i) {
    v1::Card card = request.cards(i);
    const std::string where = absl::StrCat("cards[", i, "]");
    absl::StatusOr<std::string> uid = NormalizeIdTag(card.uid(), absl::StrCat(where, ".uid"));
    if (!uid.ok()) {
      problems.emplace_back(uid.status().message());
      continue;
    }
    card.set_uid(*uid);
    if (!seen.insert(*uid).second) {
      problems.push_back(absl::StrCat(where, ".uid: ", *uid, " is given twice"));
    }
    if (auto line = config_card_lines_.find(*uid); line != config_card_lines_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("card ", *uid, " is defined in ", config_.source_path, ":", line->second,
                       " (authorization.cards) and is read-only through the API; change it there"));
    }
    if (card.name().size() > 100) {
      problems.push_back(
          absl::StrCat(where, ".name: ", card.name().size(), " characters; at most 100"));
    }
    if (card.has_valid_from() && card.has_valid_until() &&
        FromProto(card.valid_from()) >= FromProto(card.valid_until())) {
      problems.push_back(
          absl::StrCat(where, ".valid_until: ", TimeText(FromProto(card.valid_until())),
                       " is not after valid_from ", TimeText(FromProto(card.valid_from()))));
    }
    for (const std::string& evse : card.allowed_evse_ids()) {
      if (config_.FindEvse(evse) == nullptr) {
        problems.push_back(absl::StrCat(where, ".allowed_evse_ids: unknown EVSE '", evse, "'"));
      }
    }
    for (const std::string& group : card.allowed_groups()) {
      if (groups_.count(group) == 0) {
        problems.push_back(absl::StrCat(
            where, ".allowed_groups: unknown group '", group, "'; EVSE groups of site.yaml: ",
            groups_.empty() ? std::string("none") : absl::StrJoin(groups_, ", ")));
      }
    }
    if (!card.parent_id_tag().empty()) {
      absl::StatusOr<std::string> parent =
          NormalizeIdTag(card.parent_id_tag(), absl::StrCat(where, ".parent_id_tag"));
      if (!parent.ok()) {
        problems.emplace_back(parent.status().message());
      } else {
        card.set_parent_id_tag(*parent);
      }
    }
    card.clear_create_time();
    card.clear_update_time();
    card.set_from_site_config(false);
    cards.push_back(std::move(card));
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no card was stored: ", absl::StrJoin(problems, "; ")));
  }
  absl::StatusOr<std::vector<v1::Card>> stored = store_->UpsertCards(cards);
  if (!stored.ok()) return stored.status();
  v1::UpsertCardsResponse response;
  for (v1::Card& card : *stored) *response.add_cards() = std::move(card);
  kLog.Info("card list: %d cards stored (%s)", response.cards_size(), absl::StrJoin(seen, ", "));
  return response;
}

absl::Status Authorizer::DeleteCard(const std::string& uid) {
  absl::StatusOr<std::string> canonical = NormalizeIdTag(uid, "uid");
  if (!canonical.ok()) return canonical.status();
  if (auto line = config_card_lines_.find(*canonical); line != config_card_lines_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("card ", *canonical, " is defined in ", config_.source_path, ":", line->second,
                     " (authorization.cards) and is read-only through the API; remove it there"));
  }
  absl::StatusOr<bool> deleted = store_->DeleteCard(*canonical);
  if (!deleted.ok()) return deleted.status();
  if (!*deleted) {
    return absl::NotFoundError(
        absl::StrCat("no card ", *canonical, " in the card list; ListCards shows the cards"));
  }
  kLog.Info("card list: card %s deleted", *canonical);
  return absl::OkStatus();
}

}  // namespace evgate::session
