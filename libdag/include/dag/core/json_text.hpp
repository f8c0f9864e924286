#pragma once
/// @file Writing JSON text by hand where pulling in a JSON library would cost every includer, and
/// bounding JSON from outside before a (recursive) parser sees it.

#include <cstdio>
#include <string>
#include <string_view>

namespace dag {

/// Appends `text` to `out` as a quoted JSON string, escaping quotes, backslashes and controls.
inline void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (char ch : text) {
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
