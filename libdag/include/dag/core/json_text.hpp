#pragma once
/// @file Writing JSON text by hand where pulling in a JSON library would cost every includer, and
/// bounding JSON from outside before a (recursive) parser sees it.

#include <cstdio>
#include <string>
#include <string_view>

namespace dag {

/// The length of the UTF-8 sequence at the start of `text`, 0 when it is not one (a stray
/// continuation byte, an overlong form, a surrogate, past U+10FFFF, or cut short).
inline std::size_t utf8_sequence_length(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) length = 2;
  else if (lead >= 0xE0 && lead <= 0xEF) length = 3, low = lead == 0xE0 ? 0xA0 : 0x80, high = lead == 0xED ? 0x9F : 0xBF;
  else if (lead >= 0xF0 && lead <= 0xF4) length = 4, low = lead == 0xF0 ? 0x90 : 0x80, high = lead == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  return length;
}

/// Whether `text` is UTF-8 without NUL bytes: text every store holds as it is (PostgreSQL's
/// `text` holds nothing else). Names that are looked up again (pools, queues) must be.
inline bool is_utf8_text(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = text[i] == '\0' ? 0 : utf8_sequence_length(text.substr(i));
    if (length == 0) return false;
    i += length;
  }
  return true;
}

/// Appends `text` to `out` as a quoted JSON string, escaping quotes, backslashes and controls;
/// a byte that does not start a UTF-8 sequence becomes U+FFFD (text is text, as json_dump).
inline void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (std::size_t i = 0; i < text.size();) {
    const char ch = text[i];
    const std::size_t length = utf8_sequence_length(text.substr(i));
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    if (length > 1) {
      out.append(text.substr(i, length));
      i += length;
      continue;
    }
    ++i;
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(ch)));
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

/// `value` (an nlohmann::json) as JSON text, `indent` spaces deep (-1: one line). Text is text:
/// bytes that are not UTF-8 (a DAG file, a task's output, an SQL error, a variable) become U+FFFD
/// instead of throwing, so no listing or answer fails on them. Every JSON text dagrun writes with
/// nlohmann goes through here.
template <class Json>
std::string json_dump(const Json& value, int indent = -1) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

/// The deepest nesting of `[` and `{` in a JSON text, outside strings; stops counting once past
/// `limit`. A scan, not a parse: it is safe on input that would overflow a recursive parser's
/// stack, so requests and `--conf` are checked with it before they are parsed.
inline int json_nesting_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

/// Collects result rows as a JSON array of arrays, stopping at `limit` bytes: what SQL
/// operators push to XCom.
class json_rows {
public:
  /// Rows up to `limit` bytes of JSON.
  explicit json_rows(std::size_t limit) : limit_(limit) {}
  /// Starts a row; false (and the row is dropped) once the limit was reached.
  bool begin_row() {
    if (capped_) return false;
    row_ = rows_ ? ",[" : "[";
    cells_ = 0;
    return true;
  }
  /// Adds a JSON value (already formatted: a number, `null`, a quoted string) to the row.
  void add_raw(std::string_view json) {
    if (cells_++) row_ += ',';
    row_ += json;
  }
  /// Adds a text cell.
  void add_text(std::string_view text) {
    if (cells_++) row_ += ',';
    append_json_string(row_, text);
  }
  /// Ends the row; false when it did not fit (the result is capped from here on).
  bool end_row() {
    row_ += ']';
    if (body_.size() + row_.size() + 2 > limit_) {
      capped_ = true;
      return false;
    }
    body_ += row_;
    ++rows_;
    return true;
  }
  /// True when rows were dropped to stay under the limit.
  bool capped() const { return capped_; }
  /// Rows kept.
  std::size_t rows() const { return rows_; }
  /// The JSON text.
  std::string json() const { return "[" + body_ + "]"; }

private:
  std::size_t limit_;
  std::string body_;
  std::string row_;
  std::size_t rows_ = 0;
  std::size_t cells_ = 0;
  bool capped_ = false;
};

}  // namespace dag
