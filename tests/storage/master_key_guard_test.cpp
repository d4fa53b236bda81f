#include "storage/master_key_guard.hpp"

#include <fstream>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

namespace certfleet {
namespace {

namespace fs = std::filesystem;

struct state_fixture {
  test::temp_dir dir;
  fs::path key_file() const { return dir.path() / "master.key"; }
  fs::path sessions() const { return dir.path() / "tls-sessions"; }
  std::unique_ptr<state_store> db;

  state_fixture() {
    auto s = state_store::open(dir.path() / "db");
    EXPECT_TRUE(s) << describe(s.error());
    if (s) db = std::move(*s);
  }

  // A server with a credential sealed under `key`.
  void add_sealed(const master_key& key, const std::string& id) {
    server_record r;
    r.id = id;
    r.name = id;
    r.host = "127.0.0.1";
    r.port = 9401;
    ASSERT_TRUE(db->put_server(r, {}, true));
    auto blob = seal(key, id, to_secret("hunter2"));
    ASSERT_TRUE(blob);
    ASSERT_FALSE(db->put_credential(id, *blob));
  }
};

TEST(master_key_guard, a_missing_key_with_sealed_credentials_names_the_file_and_changes_nothing) {
  state_fixture st;
  {
    auto key = create_master_key(st.key_file(), *st.db, st.sessions(), false);
    ASSERT_TRUE(key) << describe(key.error());
    st.add_sealed(*key, "s-1");
  }
  fs::remove(st.key_file());
  auto loaded = load_master_key(st.key_file(), "master key file " + st.key_file().string(), *st.db,
                                st.sessions());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::invalid_state);
  auto text = describe(loaded.error());
  EXPECT_NE(text.find(st.key_file().string()), std::string::npos) << text;
  EXPECT_NE(text.find("1 sealed credential"), std::string::npos) << text;
  EXPECT_NE(text.find("--discard-sealed-credentials"), std::string::npos) << text;
  EXPECT_FALSE(fs::exists(st.key_file()));
  EXPECT_EQ(st.db->credential_ids().size(), 1u);
}

TEST(master_key_guard, a_missing_key_and_nothing_sealed_means_not_initialised) {
  state_fixture st;
  auto loaded = load_master_key(st.key_file(), "master key file", *st.db, st.sessions());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::not_found);
  EXPECT_NE(describe(loaded.error()).find("certfleet init"), std::string::npos);
}

TEST(master_key_guard, init_refuses_a_new_key_while_sealed_credentials_exist) {
  state_fixture st;
  {
    auto key = create_master_key(st.key_file(), *st.db, st.sessions(), false);
    ASSERT_TRUE(key);
    st.add_sealed(*key, "s-1");
  }
  fs::remove(st.key_file());
  auto last = st.db->last_event_seq();
  auto created = create_master_key(st.key_file(), *st.db, st.sessions(), false);
  ASSERT_FALSE(created);
  EXPECT_EQ(code_of(created.error()), ec::already_exists);
  EXPECT_NE(describe(created.error()).find("--discard-sealed-credentials"), std::string::npos);
  EXPECT_FALSE(fs::exists(st.key_file()));
  EXPECT_EQ(st.db->credential_ids().size(), 1u);
  EXPECT_EQ(st.db->last_event_seq(), last);
}

TEST(master_key_guard, discarding_sealed_credentials_deletes_them_with_events_then_creates_a_key) {
  state_fixture st;
  {
    auto key = create_master_key(st.key_file(), *st.db, st.sessions(), false);
    ASSERT_TRUE(key);
    st.add_sealed(*key, "s-1");
    st.add_sealed(*key, "s-2");
  }
  std::ofstream(st.sessions()) << "sealed sessions";
  fs::remove(st.key_file());
  auto last = st.db->last_event_seq();
  auto created = create_master_key(st.key_file(), *st.db, st.sessions(), true);
  ASSERT_TRUE(created) << describe(created.error());
  EXPECT_TRUE(st.db->credential_ids().empty());
  EXPECT_FALSE(fs::exists(st.sessions()));
  auto events = st.db->read_events(last, 10);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 2u);
  for (const auto& e : *events) {
    EXPECT_EQ(e.type, "credentials_deleted");
    EXPECT_NE(e.details.find("master_key_replaced"), std::string::npos);
    EXPECT_EQ(e.address, "127.0.0.1:9401");
  }
  auto loaded = load_master_key(st.key_file(), "master key file", *st.db, st.sessions());
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(loaded->id(), created->id());
}

TEST(master_key_guard, a_wrong_key_is_refused_before_any_credential_is_opened) {
  state_fixture st;
  {
    auto key = create_master_key(st.key_file(), *st.db, st.sessions(), false);
    ASSERT_TRUE(key);
    st.add_sealed(*key, "s-1");
  }
  fs::remove(st.key_file());
  ASSERT_TRUE(master_key::create(st.key_file()));
  auto loaded = load_master_key(st.key_file(), "master key file " + st.key_file().string(), *st.db,
                                st.sessions());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::tampered);
  auto text = describe(loaded.error());
  EXPECT_NE(text.find(st.key_file().string()), std::string::npos) << text;
  EXPECT_NE(text.find("key id"), std::string::npos) << text;
  EXPECT_EQ(st.db->credential_ids().size(), 1u);
}

TEST(master_key_guard, a_database_without_a_recorded_key_id_checks_the_key_on_a_credential) {
  state_fixture st;
  auto right = master_key::create(st.dir.path() / "right.key");
  ASSERT_TRUE(right);
  st.add_sealed(*right, "s-1");
  ASSERT_TRUE(master_key::create(st.key_file()));
  auto wrong = load_master_key(st.key_file(), "master key file", *st.db, st.sessions());
  ASSERT_FALSE(wrong);
  EXPECT_EQ(code_of(wrong.error()), ec::tampered);
  auto recorded = st.db->master_key_id();
  ASSERT_TRUE(recorded);
  EXPECT_FALSE(*recorded) << "a refused key is never recorded";

  auto ok = load_master_key(st.dir.path() / "right.key", "master key file", *st.db, st.sessions());
  ASSERT_TRUE(ok) << describe(ok.error());
  recorded = st.db->master_key_id();
  ASSERT_TRUE(recorded && *recorded);
  EXPECT_EQ(**recorded, right->id());
}

TEST(master_key_guard, a_key_id_names_the_key_and_nothing_more) {
  test::temp_dir dir;
  auto a = master_key::create(dir.path() / "a.key");
  auto b = master_key::create(dir.path() / "b.key");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->id().size(), 32u);
  EXPECT_NE(a->id(), b->id());
  auto again = master_key::load(dir.path() / "a.key");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id(), a->id());
}

}  // namespace
}  // namespace certfleet
