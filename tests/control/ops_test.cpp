#include "control/ops.hpp"

#include <gtest/gtest.h>

namespace certfleet::control {
namespace {

TEST(control_ops, every_op_the_protocol_admits_has_a_handler_or_is_the_event_stream) {
  for (const char* op :
       {"status", "server.list", "server.show", "server.add", "server.add_bulk", "server.trust",
        "server.trust_manifest", "server.reject", "server.remove", "server.credentials"}) {
    EXPECT_TRUE(required_access(op)) << op;
    EXPECT_NE(find_op(op), nullptr) << op;
  }
  EXPECT_TRUE(required_access("events.subscribe"));
  EXPECT_EQ(find_op("events.subscribe"), nullptr);
  EXPECT_EQ(find_op("server.nonsense"), nullptr);
  EXPECT_FALSE(required_access("server.nonsense"));
}

}  // namespace
}  // namespace certfleet::control
