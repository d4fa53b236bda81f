#include "common/jsonl.hpp"

#include <string.h>

#include <cstring>

#include "common/exit_code.hpp"

namespace certfleet::jsonl {

std::string dump_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string ok_reply(const nlohmann::json& id, const nlohmann::json& result) {
  return dump_line(nlohmann::json{{"id", id}, {"ok", true}, {"result", result}});
}

nlohmann::json error_json(const caf::error& err) {
  return {{"code", to_string(code_of(err))},
          {"message", describe(err)},
          {"exit_code", static_cast<int>(exit_code_for(err))}};
}

std::string error_reply(const nlohmann::json& id, const caf::error& err) {
  return dump_line(nlohmann::json{{"id", id}, {"ok", false}, {"error", error_json(err)}});
}

ec parse_error_code(std::string_view name) {
  for (int i = 1; i <= static_cast<int>(ec::invalid_state); ++i) {
    auto code = static_cast<ec>(i);
    if (name == to_string(code)) return code;
  }
  return ec::none;
}

caf::error error_from_json(const nlohmann::json& error) {
  std::string message = "the peer reported an error without a description";
  ec code = ec::protocol_error;
  if (error.is_object()) {
    if (auto m = error.find("message"); m != error.end() && m->is_string()) message = *m;
    if (auto c = error.find("code"); c != error.end() && c->is_string()) {
      auto parsed = parse_error_code(c->get<std::string>());
      if (parsed != ec::none) code = parsed;
    }
  }
  return make_error(code, message);
}

caf::error parse_line(const std::string& line, nlohmann::json& doc, nlohmann::json& id) {
  id = nullptr;
  // Exceptions are off for parsing: a malformed line is an everyday event, not an exceptional one.
  doc = nlohmann::json::parse(line, nullptr, false);
  if (doc.is_discarded()) {
    // Run the parser again with exceptions only to get its description of where the line breaks.
    std::string why = "it is not valid JSON";
    try {
      auto unreachable = nlohmann::json::parse(line);
      (void)unreachable;
    } catch (const nlohmann::json::parse_error& e) {
      why = "it is not valid JSON (byte " + std::to_string(e.byte) + ")";
    } catch (const nlohmann::json::exception& e) {
      // A number out of range (1e999) is refused as out_of_range, not parse_error.
      why = std::string{"it is not valid JSON ("} + e.what() + ")";
    }
    doc = nullptr;
    return make_error(ec::invalid_argument,
                      "request line ignored: " + why + "; send one JSON object per line");
  }
  if (!doc.is_object())
    return make_error(ec::invalid_argument,
                      "request line ignored: it is JSON but not an object; send one JSON object "
                      "per line");
  if (auto it = doc.find("id"); it != doc.end()) {
    if (!it->is_number_integer() && !it->is_number_unsigned() && !it->is_string() && !it->is_null())
      return make_error(ec::invalid_argument,
                        "request ignored: \"id\" must be an integer or a string");
    id = *it;
  }
  return {};
}

void scrub(std::string& s) {
  if (!s.empty()) ::explicit_bzero(s.data(), s.size());
  s.clear();
}

void scrub_passwords(nlohmann::json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "password" && it->is_string())
        scrub(it->get_ref<std::string&>());
      else
        scrub_passwords(*it);
    }
  } else if (j.is_array()) {
    for (auto& e : j) scrub_passwords(e);
  }
}

void line_reader::feed(const char* data, size_t size) {
  if (overflowed_) return;
  buffer_.append(data, size);
}

bool line_reader::next(std::string& line) {
  scrub(line);
  if (overflowed_) return false;
  auto pos = buffer_.find('\n', scanned_);
  if (pos == std::string::npos) {
    scanned_ = buffer_.size();
    if (buffer_.size() > max_line_) {
      overflowed_ = true;
      scrub(buffer_);
    }
    return false;
  }
  if (pos > max_line_) {
    overflowed_ = true;
    scrub(buffer_);
    return false;
  }
  line.assign(buffer_, 0, pos);
  // Shift the rest down and scrub the tail the shift leaves behind.
  size_t rest = buffer_.size() - pos - 1;
  std::memmove(buffer_.data(), buffer_.data() + pos + 1, rest);
  ::explicit_bzero(buffer_.data() + rest, buffer_.size() - rest);
  buffer_.resize(rest);
  scanned_ = 0;
  return true;
}

}  // namespace certfleet::jsonl
