/// @file Parsing, load-time checking and rendering of `{{ macro }}` templates.

#include <dag/template/template.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <dag/core/secret_mask.hpp>
#include <dag/core/suggest.hpp>

namespace dag {
namespace {

// ---------------------------------------------------------------------------------------------
// Positions

/// Turns increasing byte offsets into positions without rescanning from the start each time,
/// so that parsing a long SQL text with many references stays linear.
class position_cursor {
public:
  explicit position_cursor(std::string_view text) : text_(text) {}

  /// (0-based line, 1-based column) of `offset`.
  std::pair<int, int> at(std::size_t offset) {
    if (offset < offset_) *this = position_cursor(text_);
    for (; offset_ < offset && offset_ < text_.size(); ++offset_) {
      auto byte = static_cast<unsigned char>(text_[offset_]);
      if (byte == '\n') {
        ++line_;
        column_ = 1;
      } else if ((byte & 0xC0u) != 0x80u) {
        ++column_;
      }
    }
    return {line_, column_};
  }

private:
  std::string_view text_;
  std::size_t offset_ = 0;
  int line_ = 0;
  int column_ = 1;
};

/// (0-based line, 1-based column in UTF-8 characters) of a byte offset.
std::pair<int, int> position_of(std::string_view text, std::size_t offset) {
  return position_cursor(text).at(offset);
}

[[noreturn]] void fail_at(std::string_view text, std::size_t offset, const std::string& message) {
  auto [line, column] = position_of(text, offset);
  throw template_error(line, column, message);
}

/// "column 5": the line is the error's own (`template_error::line()`), which a loader turns into
/// a file line, so naming a template-relative line here would only clash with it.
std::string describe_column(std::string_view text, std::size_t offset) {
  return "column " + std::to_string(position_of(text, offset).second);
}

// ---------------------------------------------------------------------------------------------
// Names

struct macro_entry {
  std::string_view name;
  template_ref_kind kind;
};

constexpr std::array<macro_entry, 11> macros{{
    {"ds", template_ref_kind::ds},
    {"ds_nodash", template_ref_kind::ds_nodash},
    {"ts", template_ref_kind::ts},
    {"ts_nodash", template_ref_kind::ts_nodash},
    {"logical_date", template_ref_kind::logical_date},
    {"data_interval_start", template_ref_kind::data_interval_start},
    {"data_interval_end", template_ref_kind::data_interval_end},
    {"run_id", template_ref_kind::run_id},
    {"dag_id", template_ref_kind::dag_id},
    {"task_id", template_ref_kind::task_id},
    {"try_number", template_ref_kind::try_number},
}};

/// Every name an expression may start with, for "did you mean".
std::vector<std::string_view> root_names() {
  std::vector<std::string_view> out;
  for (const auto& m : macros) out.push_back(m.name);
  for (std::string_view n : {"params", "var", "conn", "ti"}) out.push_back(n);
  return out;
}

struct attribute_entry {
  std::string_view name;
  connection_attribute attribute;
};

constexpr std::array<attribute_entry, 5> attributes{{
    {"host", connection_attribute::host},
    {"port", connection_attribute::port},
    {"login", connection_attribute::login},
    {"password", connection_attribute::password},
    {"schema", connection_attribute::schema},
}};

/// Airflow context names dagrun knowingly leaves out, with a replacement where one exists, so
/// that a migrated DAG gets a clear answer rather than a far-fetched suggestion.
struct unsupported_entry {
  std::string_view name;
  std::string_view hint;
};

constexpr std::array<unsupported_entry, 22> unsupported{{
    {"execution_date", "use 'logical_date'"},
    {"next_execution_date", "use 'data_interval_end'"},
    {"prev_execution_date", ""},
    {"next_ds", "use 'data_interval_end'"},
    {"next_ds_nodash", ""},
    {"prev_ds", ""},
    {"prev_ds_nodash", ""},
    {"yesterday_ds", ""},
    {"yesterday_ds_nodash", ""},
    {"tomorrow_ds", ""},
    {"tomorrow_ds_nodash", ""},
    {"ts_nodash_with_tz", "use 'ts'"},
    {"task_instance", "use 'ti.xcom_pull(...)'"},
    {"macros", ""},
    {"dag", "use 'dag_id'"},
    {"task", "use 'task_id'"},
    {"dag_run", "use 'run_id'"},
    {"conf", ""},
    {"prev_data_interval_start_success", ""},
    {"prev_data_interval_end_success", ""},
    {"prev_start_date_success", ""},
    {"test_mode", ""},
}};

// ---------------------------------------------------------------------------------------------
// Expression tokens

enum class token_kind { identifier, string, punct, other };

struct token {
  token_kind kind;
  std::string text;     // identifier, decoded string, or the punctuation character
  std::size_t offset;   // byte offset in the whole template text
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }

/// One past the closing quote of the string opening at `at`, or npos when it does not close.
/// Strings stay on one line, so that an unbalanced quote is found where it is instead of
/// swallowing the rest of the template.
std::size_t string_stop(std::string_view text, std::size_t at) {
  char quote = text[at];
  for (std::size_t i = at + 1; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
      ++i;
    } else if (text[i] == quote) {
      return i + 1;
    } else if (text[i] == '\n') {
      break;
    }
  }
  return std::string_view::npos;
}

/// Like string_stop, but an unterminated string is an error.
std::size_t string_end(std::string_view text, std::size_t at) {
  std::size_t stop = string_stop(text, at);
  if (stop == std::string_view::npos) fail_at(text, at, "unterminated string in template expression");
  return stop;
}

/// The value of the quoted string spanning [begin, end) (quotes included): backslash escapes
/// the next character, as in Jinja's string literals (`\n`, `\t` too).
std::string decode_string(std::string_view text, std::size_t begin, std::size_t end) {
  std::string out;
  for (std::size_t i = begin + 1; i + 1 < end; ++i) {
    char c = text[i];
    if (c == '\\' && i + 2 < end) {
      char next = text[++i];
      out += next == 'n' ? '\n' : next == 't' ? '\t' : next;
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<token> tokenize(std::string_view text, std::size_t begin, std::size_t end) {
  std::vector<token> out;
  std::size_t i = begin;
  while (i < end) {
    char c = text[i];
    if (is_space(c)) {
      ++i;
    } else if (is_ident_start(c)) {
      std::size_t start = i;
      while (i < end && is_ident_char(text[i])) ++i;
      out.push_back({token_kind::identifier, std::string(text.substr(start, i - start)), start});
    } else if (c == '\'' || c == '"') {
      std::size_t stop = string_end(text, i);
      out.push_back({token_kind::string, decode_string(text, i, stop), i});
      i = stop;
    } else if (c == '.' || c == '(' || c == ')' || c == ',' || c == '=' || c == '|') {
      out.push_back({token_kind::punct, std::string(1, c), i});
      ++i;
    } else {
      // Keep a whole UTF-8 character so the message shows what the user typed.
      std::size_t start = i++;
      while (i < end && (static_cast<unsigned char>(text[i]) & 0xC0u) == 0x80u) ++i;
      out.push_back({token_kind::other, std::string(text.substr(start, i - start)), start});
    }
  }
  return out;
}

/// Parses the tokens of one `{{ ... }}` into a reference (or, for a quoted literal, its text).
class expression_parser {
public:
  /// A parser for the tokens of the tag opened at byte `open`, whose expression ends at `close`.
  expression_parser(std::string_view text, std::vector<token> tokens, std::size_t open, std::size_t close,
                    position_cursor& cursor)
      : text_(text), tokens_(std::move(tokens)), open_(open), close_(close), cursor_(&cursor) {}

  /// The reference, or nullopt with `literal` set for `{{ 'text' }}`.
  std::optional<template_ref> parse(std::string& literal) {
    if (tokens_.empty()) fail_at(text_, open_, "empty template expression '{{ }}'");
    const token& first = tokens_[0];
    if (first.kind == token_kind::string) {
      literal = first.text;
      expect_end(1, "'" + first.text + "'");
      return std::nullopt;
    }
    if (first.kind != token_kind::identifier) unexpected(0, "");
    const std::string& root = first.text;
    for (const auto& m : macros) {
      if (m.name == root) {
        expect_end(1, root);
        return make(m.kind, "", first.offset);
      }
    }
    if (root == "params") return parse_param();
    if (root == "var") return parse_variable();
    if (root == "conn") return parse_connection();
    if (root == "ti") return parse_xcom_pull();
    for (const auto& u : unsupported) {
      if (u.name == root) {
        std::string message = "template variable '" + root + "' is not supported by dagrun";
        if (!u.hint.empty()) message += " (" + std::string(u.hint) + ")";
        fail_at(text_, first.offset, message);
      }
    }
    fail_at(text_, first.offset,
            "unknown template variable '" + root + "'" + did_you_mean(root, root_names()));
  }

private:
  template_ref make(template_ref_kind kind, std::string name, std::size_t offset) const {
    auto [line, column] = cursor_->at(offset);
    template_ref ref;
    ref.kind = kind;
    ref.name = std::move(name);
    ref.line = line;
    ref.column = column;
    return ref;
  }

  bool is_punct(std::size_t i, char c) const {
    return i < tokens_.size() && tokens_[i].kind == token_kind::punct && tokens_[i].text[0] == c;
  }
  bool is_identifier(std::size_t i) const {
    return i < tokens_.size() && tokens_[i].kind == token_kind::identifier;
  }
  /// Where a missing token would have been: the next token, or the closing `}}`.
  std::size_t offset_at(std::size_t i) const {
    return i < tokens_.size() ? tokens_[i].offset : close_;
  }

  [[noreturn]] void unexpected(std::size_t i, const std::string& after) const {
    const token& t = tokens_[i];
    if (t.kind == token_kind::punct && t.text == "|")
      fail_at(text_, t.offset, "filters ('|') are not supported in templates");
    std::string shown = t.kind == token_kind::string ? "'" + t.text + "'" : t.text;
    std::string message = "unexpected '" + shown + "' in template expression";
    if (!after.empty()) message = "unexpected '" + shown + "' after '" + after + "'";
    fail_at(text_, t.offset, message);
  }

  void expect_end(std::size_t i, const std::string& after) const {
    if (i < tokens_.size()) unexpected(i, after);
  }

  /// `.NAME` at token i: the name's token index, else an error saying what was expected.
  std::size_t expect_member(std::size_t i, const std::string& expected, const std::string& note = "") const {
    if (is_punct(i, '.') && is_identifier(i + 1)) return i + 1;
    fail_at(text_, offset_at(is_punct(i, '.') ? i + 1 : i), "expected '" + expected + "'" + note);
  }

  template_ref parse_param() const {
    std::size_t name = expect_member(1, "params.NAME");
    expect_end(name + 1, "params." + tokens_[name].text);
    return make(template_ref_kind::param, tokens_[name].text, tokens_[name].offset);
  }

  template_ref parse_variable() const {
    std::size_t accessor = expect_member(1, "var.value.NAME");
    const std::string& how = tokens_[accessor].text;
    if (how == "json")
      fail_at(text_, tokens_[accessor].offset, "'var.json' is not supported (use 'var.value.NAME')");
    if (how != "value") {
      static constexpr std::array<std::string_view, 1> accessors{"value"};
      fail_at(text_, tokens_[accessor].offset,
              "unknown variable accessor 'var." + how + "'" + did_you_mean(how, accessors) +
                  "; use 'var.value.NAME'");
    }
    std::size_t name = expect_member(accessor + 1, "var.value.NAME");
    expect_end(name + 1, "var.value." + tokens_[name].text);
    return make(template_ref_kind::variable, tokens_[name].text, tokens_[name].offset);
  }

  template_ref parse_connection() const {
    std::size_t id = expect_member(1, "conn.ID.ATTRIBUTE");
    std::size_t attr = expect_member(id + 1, "conn." + tokens_[id].text + ".ATTRIBUTE",
                                     " (host, port, login, password or schema)");
    const std::string& name = tokens_[attr].text;
    const attribute_entry* found = nullptr;
    for (const auto& a : attributes)
      if (a.name == name) found = &a;
    if (found == nullptr) {
      std::vector<std::string_view> names;
      for (const auto& a : attributes) names.push_back(a.name);
      fail_at(text_, tokens_[attr].offset,
              "unknown connection attribute '" + name + "'" + did_you_mean(name, names) +
                  " (expected host, port, login, password or schema)");
    }
    expect_end(attr + 1, "conn." + tokens_[id].text + "." + name);
    template_ref ref = make(template_ref_kind::connection, tokens_[id].text, tokens_[id].offset);
    ref.attribute = found->attribute;
    return ref;
  }

  template_ref parse_xcom_pull() const {
    std::size_t method = expect_member(1, "ti.xcom_pull('TASK')");
    if (tokens_[method].text != "xcom_pull") {
      static constexpr std::array<std::string_view, 1> methods{"xcom_pull"};
      fail_at(text_, tokens_[method].offset,
              "unknown ti attribute '" + tokens_[method].text + "'" +
                  did_you_mean(tokens_[method].text, methods) + "; only ti.xcom_pull('TASK') is supported");
    }
    // ( 'TASK' )  or  ( task_ids = 'TASK' ); `bad` is the first token breaking that shape.
    std::size_t open_paren = method + 1;
    std::size_t arg = open_paren + 1;
    if (is_identifier(arg) && tokens_[arg].text == "task_ids" && is_punct(arg + 1, '=')) arg += 2;
    auto is_task_id = [&](std::size_t k) {
      return k < tokens_.size() && tokens_[k].kind == token_kind::string && !tokens_[k].text.empty();
    };
    std::optional<std::size_t> bad;
    if (!is_punct(open_paren, '('))
      bad = open_paren;
    else if (!is_task_id(arg))
      bad = arg;
    else if (!is_punct(arg + 1, ')'))
      bad = arg + 1;
    else if (arg + 2 < tokens_.size())
      bad = arg + 2;
    if (bad)
      fail_at(text_, offset_at(*bad),
              "bad call: xcom_pull needs one quoted task id, as ti.xcom_pull('TASK') or "
              "ti.xcom_pull(task_ids='TASK')");
    return make(template_ref_kind::xcom_pull, tokens_[arg].text, tokens_[arg].offset);
  }

  std::string_view text_;
  std::vector<token> tokens_;
  std::size_t open_;
  std::size_t close_;
  position_cursor* cursor_;
};

/// Drops trailing whitespace (Jinja's `{{-` / `{#-`).
void trim_right(std::string& s) {
  while (!s.empty() && is_space(s.back())) s.pop_back();
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// Appends `value` as exactly `width` decimal digits (zero padded); values are small and
/// non-negative here, and this avoids any locale or stream machinery on the hot path.
void append_digits(std::string& out, long long value, int width) {
  std::array<char, 20> buf{};
  int n = 0;
  do {
    buf[static_cast<std::size_t>(n++)] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && n < 20);
  for (int pad = n; pad < width; ++pad) out += '0';
  while (n > 0) out += buf[static_cast<std::size_t>(--n)];
}

struct civil_time {
  int year;
  unsigned month, day;
  long long hour, minute, second;
};

civil_time split(time_point t) {
  auto day = std::chrono::floor<std::chrono::days>(t);
  std::chrono::year_month_day ymd{day};
  std::chrono::hh_mm_ss hms{t - day};
  return {static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
          static_cast<long long>(hms.hours().count()), static_cast<long long>(hms.minutes().count()),
          static_cast<long long>(hms.seconds().count())};
}

void append_date(std::string& out, const civil_time& c, bool dashes) {
  int year = c.year;
  if (year < 0) {
    out += '-';
    year = -year;
  }
  append_digits(out, year, 4);
  if (dashes) out += '-';
  append_digits(out, c.month, 2);
  if (dashes) out += '-';
  append_digits(out, c.day, 2);
}

/// `2024-01-01T00:00:00+00:00` (with_separators) or `20240101T000000`.
void append_timestamp(std::string& out, time_point t, bool with_separators) {
  civil_time c = split(t);
  append_date(out, c, with_separators);
  out += 'T';
  append_digits(out, c.hour, 2);
  if (with_separators) out += ':';
  append_digits(out, c.minute, 2);
  if (with_separators) out += ':';
  append_digits(out, c.second, 2);
  if (with_separators) out += "+00:00";
}

/// The connections one render has looked up: `host:port` fields read the same connection twice
/// and the lookup may hit the store, so each id is fetched once per render.
struct connection_cache {
  std::vector<std::pair<std::string_view, dag::connection>> entries;

  const dag::connection& get(std::string_view id, const template_context& context) {
    for (const auto& [name, conn] : entries)
      if (name == id) return conn;
    std::optional<dag::connection> found;
    if (context.connection) found = context.connection(id);
    if (!found) throw error("connection '" + std::string(id) + "' is not defined");
    entries.emplace_back(id, std::move(*found));
    return entries.back().second;
  }
};

void append_ref(std::string& out, const template_ref& ref, const template_context& context,
                connection_cache& connections) {
  switch (ref.kind) {
    case template_ref_kind::ds: append_date(out, split(context.logical_date), true); return;
    case template_ref_kind::ds_nodash: append_date(out, split(context.logical_date), false); return;
    case template_ref_kind::ts: append_timestamp(out, context.logical_date, true); return;
    case template_ref_kind::ts_nodash: append_timestamp(out, context.logical_date, false); return;
    case template_ref_kind::logical_date: append_timestamp(out, context.logical_date, true); return;
    case template_ref_kind::data_interval_start: append_timestamp(out, context.data_interval_start, true); return;
    case template_ref_kind::data_interval_end: append_timestamp(out, context.data_interval_end, true); return;
    case template_ref_kind::run_id: out += context.run_id; return;
    case template_ref_kind::dag_id: out += context.dag_id; return;
    case template_ref_kind::task_id: out += context.task_id; return;
    case template_ref_kind::try_number: out += std::to_string(context.try_number); return;
    case template_ref_kind::param: {
      auto it = context.params.find(ref.name);
      if (it == context.params.end()) throw error("param '" + ref.name + "' is not set");
      out += it->second;
      return;
    }
    case template_ref_kind::variable: {
      std::optional<std::string> value;
      if (context.variable) value = context.variable(ref.name);
      if (!value) throw error("variable '" + ref.name + "' is not set");
      if (context.mask_secret && !value->empty() && looks_secret(ref.name)) context.mask_secret(*value);
      out += *value;
      return;
    }
    case template_ref_kind::connection: {
      const dag::connection& conn = connections.get(ref.name, context);
      switch (ref.attribute) {
        case connection_attribute::host: out += conn.host; return;
        case connection_attribute::port:
          if (conn.port) out += std::to_string(*conn.port);
          return;
        case connection_attribute::login: out += conn.login; return;
        case connection_attribute::password:
          if (context.mask_secret && !conn.password.empty()) context.mask_secret(conn.password);
          out += conn.password;
          return;
        case connection_attribute::schema: out += conn.schema; return;
      }
      return;
    }
    case template_ref_kind::xcom_pull: {
      std::optional<std::string> value;
      if (context.xcom_pull) value = context.xcom_pull(ref.name);
      if (!value) throw error("no XCom from task '" + ref.name + "' in this run");
      out += *value;
      return;
    }
  }
}

}  // namespace

// -------------------------------------------------------------------------------------------------

template_text template_text::parse(std::string_view text) {
  template_text out;
  out.source_ = std::string(text);
  out.literals_.assign(1, std::string{});
  std::string* literal = &out.literals_.back();
  bool trim_next = false;  // a `-}}` / `-#}` eats the whitespace that follows it
  position_cursor cursor(text);
  std::size_t i = 0;
  const std::size_t n = text.size();

  while (i < n) {
    // Copy the run of plain text up to the next '{' in one go.
    std::size_t brace = text.find('{', i);
    std::size_t stop = brace == std::string_view::npos ? n : brace;
    if (trim_next) {
      while (i < stop && is_space(text[i])) ++i;
      if (i < stop) trim_next = false;
    }
    literal->append(text.substr(i, stop - i));
    i = stop;
    if (i >= n) break;
    if (i + 1 >= n) {  // a lone '{' at the very end
      *literal += '{';
      trim_next = false;
      break;
    }
    char kind = text[i + 1];
    if (kind == '%') fail_at(text, i, "'{%' control tags are not supported (only '{{ ... }}' expressions)");

    if (kind == '#') {
      std::size_t close = text.find("#}", i + 2);
      if (close == std::string_view::npos)
        fail_at(text, i, "unclosed '{#' opened at " + describe_column(text, i));
      if (i + 2 < n && text[i + 2] == '-') trim_right(*literal);
      trim_next = close > i + 2 && text[close - 1] == '-';
      i = close + 2;
      continue;
    }

    if (kind != '{') {  // a single '{' is just text (shell `${x}`, JSON, awk)
      *literal += '{';
      trim_next = false;
      ++i;
      continue;
    }

    // `{{ ... }}`: find its `}}`, skipping quoted strings so that `{{ '}}' }}` works, and treating
    // another `{{` before it as the sign that this one was never closed.
    const std::size_t open = i;
    std::size_t body = open + 2;
    if (body < n && text[body] == '-') {
      trim_right(*literal);
      ++body;
    }
    std::size_t close = std::string_view::npos;
    for (std::size_t j = body; j < n;) {
      char c = text[j];
      std::size_t quoted_stop = c == '\'' || c == '"' ? string_stop(text, j) : std::string_view::npos;
      if (quoted_stop != std::string_view::npos) {
        // An unbalanced quote is left to the expression parser, which names it, unless the tag
        // never closes at all (an apostrophe in the text after a forgotten `}}`).
        j = quoted_stop;
      } else if (c == '}' && j + 1 < n && text[j + 1] == '}') {
        close = j;
        break;
      } else if (c == '{' && j + 1 < n && text[j + 1] == '{') {
        break;
      } else {
        ++j;
      }
    }
    if (close == std::string_view::npos)
      fail_at(text, open, "unclosed '{{' opened at " + describe_column(text, open));
    std::size_t body_end = close;
    trim_next = body_end > body && text[body_end - 1] == '-';
    if (trim_next) --body_end;

    std::string quoted;
    expression_parser parser(text, tokenize(text, body, body_end), open, body_end, cursor);
    std::optional<template_ref> ref = parser.parse(quoted);
    if (ref) {
      out.refs_.push_back(std::move(*ref));
      out.literals_.emplace_back();
      literal = &out.literals_.back();
    } else {
      *literal += quoted;
    }
    i = close + 2;
  }
  return out;
}

void check(const template_text& text, const template_scope& scope) {
  for (const template_ref& ref : text.refs()) {
    if (ref.kind == template_ref_kind::param && !scope.params.contains(ref.name)) {
      std::string message = "unknown param '" + ref.name + "'" + did_you_mean(ref.name, scope.params);
      if (scope.params.empty()) message += " (the DAG declares no params)";
      throw template_error(ref.line, ref.column, message);
    }
    if (ref.kind != template_ref_kind::xcom_pull) continue;
    if (!scope.task_ids.contains(ref.name))
      throw template_error(ref.line, ref.column,
                           "xcom_pull of unknown task '" + ref.name + "'" + did_you_mean(ref.name, scope.task_ids));
    if (!scope.task_id.empty() && ref.name == scope.task_id)
      throw template_error(ref.line, ref.column,
                           "task '" + ref.name + "' pulls its own XCom, which does not exist before it runs");
    if (scope.upstream_task_ids && !scope.upstream_task_ids->contains(ref.name))
      throw template_error(ref.line, ref.column,
                           "xcom_pull of task '" + ref.name +
                               "', which is not upstream of this task (add it to 'dependencies' so it runs first)");
  }
}

void render_to(std::string& out, const template_text& text, const template_context& context) {
  const auto& literals = text.literals();
  const auto& refs = text.refs();
  out += literals[0];
  connection_cache connections;
  for (std::size_t k = 0; k < refs.size(); ++k) {
    append_ref(out, refs[k], context, connections);
    out += literals[k + 1];
  }
}

std::string render(const template_text& text, const template_context& context) {
  std::string out;
  // Macros are mostly short (a ts is 25 characters), so this usually avoids any regrowth.
  out.reserve(text.source().size() + 16 * text.refs().size());
  render_to(out, text, context);
  return out;
}

std::string render(std::string_view text, const template_context& context) {
  return render(template_text::parse(text), context);
}

bool has_template(std::string_view text) {
  for (std::size_t i = text.find('{'); i != std::string_view::npos && i + 1 < text.size();
       i = text.find('{', i + 1)) {
    char next = text[i + 1];
    if (next == '{' || next == '%' || next == '#') return true;
  }
  return false;
}

}  // namespace dag
