#include "services/session/authorizer.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "services/session/testing/test_site.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::session {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;
using namespace ::evgate::session::testing;  // NOLINT: the test site's cards

// A CSMS that answers from a table, or is unreachable.
class FakeCsms final : public RemoteAuthorizer {
 public:
  absl::StatusOr<RemoteAuthorization> Authorize(const std::string& id_tag) override {
    ++calls;
    if (!online) return absl::UnavailableError("connection refused");
    auto it = answers.find(id_tag);
    RemoteAuthorization answer;
    answer.status = it == answers.end() ? v1::AUTHORIZATION_STATUS_INVALID : it->second;
    answer.expires_at = expiry;
    return answer;
  }
  bool online = true;
  int calls = 0;
  std::map<std::string, v1::AuthorizationStatus> answers;
  std::optional<absl::Time> expiry;
};

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/auth.db");
    std::remove(path.c_str());
    auto config = site::LoadSiteConfigString(TestSiteYaml(path), "site.yaml");
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *std::move(config);
    store_ = *SessionStore::Open(path, clock_);
    authorizer_ = std::make_unique<Authorizer>(config_, store_.get(), clock_);
  }

  v1::AuthorizationStatus Status(const std::string& tag, const std::string& evse = "") {
    auto decision = authorizer_->Authorize(tag, evse);
    EXPECT_TRUE(decision.ok()) << decision.status();
    return decision.ok() ? decision->response.status() : v1::AUTHORIZATION_STATUS_UNSPECIFIED;
  }

  FakeClock clock_;
  site::SiteConfig config_;
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<Authorizer> authorizer_;
};

TEST_F(AuthorizerTest, SiteYamlCardsDecideByBlockValidityAndPlace) {
  EXPECT_EQ(Status(kVanCard, "wb1"), v1::AUTHORIZATION_STATUS_ACCEPTED);
  EXPECT_EQ(Status(kVanCard, ""), v1::AUTHORIZATION_STATUS_ACCEPTED);
  EXPECT_EQ(Status(kVanCard, "wb4"), v1::AUTHORIZATION_STATUS_NOT_ALLOWED_HERE);
  EXPECT_EQ(Status(kBlockedCard, "wb4"), v1::AUTHORIZATION_STATUS_BLOCKED);
  EXPECT_EQ(Status(kTempCard, "wb4"), v1::AUTHORIZATION_STATUS_EXPIRED);
  EXPECT_EQ(Status("0A0B0C0D", "wb1"), v1::AUTHORIZATION_STATUS_INVALID);
  EXPECT_EQ(Status("0A0B0C0D", "wb4"), v1::AUTHORIZATION_STATUS_ACCEPTED);  // free vend
  auto master = authorizer_->Authorize(kMasterCard, "wb1");
  EXPECT_TRUE(master->response.master());
  EXPECT_EQ(master->response.card_name(), "Depot manager");
  EXPECT_EQ(master->response.source(), v1::AUTHORIZATION_SOURCE_LOCAL_LIST);
  auto unknown_evse = authorizer_->Authorize(kVanCard, "wb9");
  EXPECT_EQ(unknown_evse.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AuthorizerTest, ValidityWindowIsHalfOpen) {
  v1::UpsertCardsRequest request;
  v1::Card* card = request.add_cards();
  card->set_uid("0A0B0C0D");
  *card->mutable_valid_from() =
      TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(clock_.Now()) + 10);
  *card->mutable_valid_until() =
      TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(clock_.Now()) + 20);
  ASSERT_TRUE(authorizer_->UpsertCards(request).ok());
  EXPECT_EQ(Status("0A0B0C0D"), v1::AUTHORIZATION_STATUS_EXPIRED);
  clock_.Advance(absl::Seconds(10));
  EXPECT_EQ(Status("0A0B0C0D"), v1::AUTHORIZATION_STATUS_ACCEPTED);
  clock_.Advance(absl::Seconds(10));
  EXPECT_EQ(Status("0A0B0C0D"), v1::AUTHORIZATION_STATUS_EXPIRED);
}

TEST_F(AuthorizerTest, ApiCardsAreStoredWithoutLimitAndListedWithTheSiteCards) {
  v1::UpsertCardsRequest request;
  for (int i = 0; i < 2500; ++i) {
    v1::Card* card = request.add_cards();
    card->set_uid(absl::StrCat("1", absl::Hex(0x1000000 + i, absl::kZeroPad7)));
    card->set_name(absl::StrCat("fleet card ", i));
    card->add_allowed_groups("fleet");
  }
  auto stored = authorizer_->UpsertCards(request);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->cards_size(), 2500);
  EXPECT_EQ(Status("110009C3", "wb1"), v1::AUTHORIZATION_STATUS_ACCEPTED);  // the 2500th
  EXPECT_EQ(Status("110009C3", "wb4"), v1::AUTHORIZATION_STATUS_NOT_ALLOWED_HERE);

  v1::ListCardsRequest list;
  list.set_page_size(1000);
  std::vector<std::string> uids;
  int site_cards = 0;
  do {
    auto page = authorizer_->ListCards(list);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const v1::Card& c : page->cards()) {
      uids.push_back(c.uid());
      site_cards += c.from_site_config();
    }
    list.set_page_token(page->next_page_token());
  } while (!list.page_token().empty());
  EXPECT_EQ(uids.size(), 2505u);
  EXPECT_EQ(site_cards, 5);
  EXPECT_TRUE(std::is_sorted(uids.begin(), uids.end()));
}

TEST_F(AuthorizerTest, InvalidCardsAreAllReportedAndNothingIsStored) {
  v1::UpsertCardsRequest request;
  request.add_cards()->set_uid("0A0B0C0D");  // fine on its own
  v1::Card* bad = request.add_cards();
  bad->set_uid("04 A1 B2");
  v1::Card* places = request.add_cards();
  places->set_uid("0E0F1011");
  places->add_allowed_evse_ids("wb9");
  places->add_allowed_groups("visitors");
  *places->mutable_valid_from() = TimeUtil::SecondsToTimestamp(2000);
  *places->mutable_valid_until() = TimeUtil::SecondsToTimestamp(1000);
  auto result = authorizer_->UpsertCards(request);
  ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(result.status().message());
  EXPECT_THAT(message, HasSubstr("cards[1].uid '04 A1 B2' has a character that is not allowed"));
  EXPECT_THAT(message, HasSubstr("cards[2].allowed_evse_ids: unknown EVSE 'wb9'"));
  EXPECT_THAT(message, HasSubstr("unknown group 'visitors'"));
  EXPECT_THAT(message, HasSubstr("is not after valid_from"));
  EXPECT_FALSE(store_->GetCard("0A0B0C0D")->has_value());
}

TEST_F(AuthorizerTest, SiteYamlCardsAreReadOnlyThroughTheApi) {
  v1::UpsertCardsRequest request;
  request.add_cards()->set_uid(kBlockedCard);
  auto upsert = authorizer_->UpsertCards(request);
  EXPECT_EQ(upsert.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(upsert.status().message(), HasSubstr("defined in site.yaml:"));
  EXPECT_EQ(authorizer_->DeleteCard(kBlockedCard).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(authorizer_->DeleteCard("0A0B0C0D").code(), absl::StatusCode::kNotFound);
}

TEST_F(AuthorizerTest, TheCsmsIsAskedForUnknownCardsAndItsAnswerIsCachedForOfflineUse) {
  FakeCsms csms;
  csms.answers["0A0B0C0D"] = v1::AUTHORIZATION_STATUS_ACCEPTED;
  authorizer_->SetRemoteAuthorizer(&csms);
  auto remote = authorizer_->Authorize("0A0B0C0D", "wb1");
  EXPECT_EQ(remote->response.source(), v1::AUTHORIZATION_SOURCE_REMOTE);
  EXPECT_EQ(remote->response.status(), v1::AUTHORIZATION_STATUS_ACCEPTED);
  EXPECT_EQ(Status(kVanCard, "wb1"), v1::AUTHORIZATION_STATUS_ACCEPTED);  // local list first
  EXPECT_EQ(csms.calls, 1);

  csms.online = false;
  clock_.Advance(absl::Hours(23));
  auto cached = authorizer_->Authorize("0A0B0C0D", "wb1");
  EXPECT_EQ(cached->response.source(), v1::AUTHORIZATION_SOURCE_CACHE);
  EXPECT_EQ(cached->response.status(), v1::AUTHORIZATION_STATUS_ACCEPTED);
  clock_.Advance(absl::Hours(1));  // offline_cache_ttl_s (86400) has passed
  auto expired = authorizer_->Authorize("0A0B0C0D", "wb1");
  EXPECT_EQ(expired->response.status(), v1::AUTHORIZATION_STATUS_INVALID);
  EXPECT_THAT(expired->explanation, HasSubstr("the CSMS could not be asked (connection refused)"));
}

TEST_F(AuthorizerTest, TheCsmsExpiryShortensTheCacheEntry) {
  FakeCsms csms;
  csms.answers["0A0B0C0D"] = v1::AUTHORIZATION_STATUS_ACCEPTED;
  csms.expiry = clock_.Now() + absl::Minutes(5);
  authorizer_->SetRemoteAuthorizer(&csms);
  EXPECT_EQ(Status("0A0B0C0D"), v1::AUTHORIZATION_STATUS_ACCEPTED);
  csms.online = false;
  clock_.Advance(absl::Minutes(6));
  EXPECT_EQ(Status("0A0B0C0D"), v1::AUTHORIZATION_STATUS_INVALID);
}

TEST(NormalizeIdTagTest, HexIsUpperCasedOtherTagsKeptInvalidRefused) {
  EXPECT_EQ(*NormalizeIdTag("04a1b2c3", "id_tag"), "04A1B2C3");
  EXPECT_EQ(*NormalizeIdTag("fleet-7", "id_tag"), "fleet-7");
  EXPECT_THAT(NormalizeIdTag("", "id_tag").status().message(), HasSubstr("id_tag is empty"));
  EXPECT_THAT(NormalizeIdTag("0123456789ABCDEF01234", "id_tag").status().message(),
              HasSubstr("at most 20"));
  EXPECT_EQ(NormalizeIdTag("04 A1", "id_tag").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace evgate::session
