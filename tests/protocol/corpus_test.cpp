// Keeps the fuzz seed corpus (tests/fuzz/corpus/) honest and exercised in every ctest run.
// Set CERTFLEET_WRITE_CORPUS=1 to regenerate the seed files after changing the encoding.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/frame.hpp"
#include "tests/fuzz/replay.hpp"
#include "tests/protocol/sample_messages.hpp"

namespace certfleet {
namespace {

namespace fs = std::filesystem;

const fs::path corpus_dir = fs::path{CERTFLEET_SOURCE_DIR} / "tests" / "fuzz" / "corpus";

std::vector<uint8_t> framed(const wire::message& m) {
  auto payload = wire::encode(m, testing::version_for(m));
  EXPECT_TRUE(payload);
  auto frame = encode_frame(payload->data(), payload->size());
  EXPECT_TRUE(frame);
  return {frame->begin(), frame->end()};
}

std::vector<uint8_t> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(fuzz_corpus, holds_one_current_frame_per_message_type) {
  const char* write = std::getenv("CERTFLEET_WRITE_CORPUS");
  for (const auto& m : testing::sample_messages()) {
    auto path = corpus_dir / (std::string{wire::to_string(wire::type_of(m))} + ".bin");
    auto expected = framed(m);
    if (write != nullptr && std::string{write} == "1") {
      fs::create_directories(corpus_dir);
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(expected.data()),
                static_cast<std::streamsize>(expected.size()));
    }
    ASSERT_TRUE(fs::exists(path)) << path << " is missing; run with CERTFLEET_WRITE_CORPUS=1";
    EXPECT_EQ(read_all(path), expected)
        << path << " is stale; regenerate it with CERTFLEET_WRITE_CORPUS=1";
  }
}

TEST(fuzz_corpus, every_corpus_file_replays_through_the_decoders_with_canonical_results) {
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(corpus_dir)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    auto bytes = read_all(entry.path());
    auto r = fuzz::replay(bytes.data(), bytes.size());
    EXPECT_TRUE(r.invariant_broken.empty()) << entry.path() << ": " << r.invariant_broken;
    // The seeds named after a message type must each be one valid frame holding that message.
    if (entry.path().extension() == ".bin") {
      EXPECT_EQ(r.frames, 1u) << entry.path();
      EXPECT_EQ(r.messages, 1u) << entry.path();
    }
  }
  EXPECT_GE(files, std::variant_size_v<wire::message>);
}

}  // namespace
}  // namespace certfleet
