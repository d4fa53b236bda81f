#include "apps/cli/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace certfleet::cli {
namespace {

/// The message, escaped for a JSON string.
class json_message_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr char hex[] = "0123456789abcdef";
    for (char c : std::string_view{msg.payload.data(), msg.payload.size()}) {
      switch (c) {
        case '"':
          dest.append(std::string_view{"\\\""});
          break;
        case '\\':
          dest.append(std::string_view{"\\\\"});
          break;
        case '\n':
          dest.append(std::string_view{"\\n"});
          break;
        case '\t':
          dest.append(std::string_view{"\\t"});
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char esc[7] = {'\\', 'u', '0', '0', hex[(c >> 4) & 0xF], hex[c & 0xF], 0};
            dest.append(std::string_view{esc, 6});
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message_flag>();
  }
};

}  // namespace

caf::error setup_logging(const log_settings& log) {
  auto level = spdlog::level::from_str(log.level);
  if (level == spdlog::level::off && log.level != "off")
    return make_error(ec::bad_config, "log.level '" + log.level + "' is not a known level");
  auto logger = spdlog::get("certfleet");
  if (!logger) {
    logger = spdlog::stderr_logger_mt("certfleet");
    spdlog::set_default_logger(logger);
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (log.format == "json") {
    formatter->add_flag<json_message_flag>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","pid":%P,"msg":"%*"})");
  } else if (log.format == "text") {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  } else {
    return make_error(ec::bad_config, "log.format '" + log.format + "' must be text or json");
  }
  logger->set_formatter(std::move(formatter));
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  return {};
}

}  // namespace certfleet::cli
