/// @file Parsing, load-time checking and rendering of Airflow-style Jinja templates.
//
// Three parts: the parser turns text into statements and expression trees, checking every name,
// filter, test and tag as it goes (so that mistakes are load-time errors); the values are
// Python-like (None, bool, int, float, str, list, dict, datetime, timedelta, and the namespaces
// of Airflow's context); the renderer walks the statements with a template_context.

#include <dag/template/template.hpp>

#include <algorithm>
#include <cstdlib>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <dag/core/secret_mask.hpp>

#include <dag/core/suggest.hpp>

namespace dag {
namespace {

// ---------------------------------------------------------------------------------------------
// Positions

/// Turns increasing byte offsets into positions without rescanning from the start each time,
/// so that parsing a long SQL text with many tags stays linear.
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

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }

// ---------------------------------------------------------------------------------------------
// Names known at parse time

/// Names of Airflow's context a template may start an expression with.
constexpr std::array<std::string_view, 37> root_names{
    "ds", "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz", "logical_date", "data_interval_start",
    "data_interval_end", "run_id", "dag_id", "task_id", "try_number", "params", "var", "conn", "ti",
    "task_instance", "macros", "dag_run", "task", "prev_ds", "prev_ds_nodash", "next_ds", "next_ds_nodash",
    "yesterday_ds", "yesterday_ds_nodash", "tomorrow_ds", "tomorrow_ds_nodash", "prev_data_interval_start_success",
    "prev_data_interval_end_success", "prev_start_date_success", "range", "true", "false", "none", "loop",
    "triggering_dataset_events"};

/// Airflow context names dagrun knowingly leaves out, with a replacement where one exists, so
/// that a migrated DAG gets a clear answer rather than a far-fetched suggestion.
struct unsupported_entry {
  std::string_view name;
  std::string_view hint;
};

constexpr std::array<unsupported_entry, 9> unsupported{{
    {"execution_date", "use 'logical_date'"},
    {"next_execution_date", "use 'data_interval_end'"},
    {"prev_execution_date", "use 'prev_ds' or 'data_interval_start'"},
    {"prev_execution_date_success", "use 'prev_data_interval_start_success'"},
    {"dag", "use 'dag_id'"},
    {"conf", "use 'dag_run.conf' for the run's conf"},
    {"test_mode", ""},
    {"inlets", ""},
    {"outlets", ""},
}};

constexpr std::array<std::string_view, 10> connection_attributes{
    "host", "port", "login", "password", "schema", "conn_type", "conn_id", "extra", "extra_dejson", "description"};
constexpr std::array<std::string_view, 7> ti_attributes{"xcom_pull", "try_number", "task_id", "dag_id", "run_id",
                                                        "max_tries", "map_index"};
constexpr std::array<std::string_view, 4> macro_names{"ds_add", "ds_format", "datetime", "timedelta"};
constexpr std::array<std::string_view, 9> dag_run_attributes{
    "conf", "run_id", "logical_date", "data_interval_start", "data_interval_end", "run_type", "external_trigger",
    "dag_id", "execution_date"};
constexpr std::array<std::string_view, 3> task_attributes{"owner", "task_id", "dag_id"};
constexpr std::array<std::string_view, 2> var_accessors{"value", "json"};

/// A filter: its name and how many positional-or-keyword arguments it takes besides the value.
struct filter_entry {
  std::string_view name;
  std::size_t min_args;
  std::size_t max_args;
};

constexpr std::array<filter_entry, 43> filters{{
    {"upper", 0, 0},   {"lower", 0, 0},      {"title", 0, 0},     {"capitalize", 0, 0}, {"trim", 0, 1},
    {"replace", 2, 3}, {"default", 0, 2},    {"d", 0, 2},         {"int", 0, 2},        {"float", 0, 1},
    {"string", 0, 0},  {"length", 0, 0},     {"count", 0, 0},     {"join", 0, 2},       {"first", 0, 0},
    {"last", 0, 0},    {"tojson", 0, 1},     {"fromjson", 0, 0},  {"list", 0, 0},       {"sort", 0, 3},
    {"unique", 0, 2},  {"min", 0, 2},        {"max", 0, 2},       {"round", 0, 2},      {"abs", 0, 0},
    {"truncate", 0, 4}, {"ds_add", 1, 1},    {"ds_format", 2, 2}, {"ds", 0, 0},         {"ds_nodash", 0, 0},
    {"ts", 0, 0},      {"ts_nodash", 0, 0},  {"ts_nodash_with_tz", 0, 0}, {"shquote", 0, 0}, {"reverse", 0, 0},
    {"sum", 0, 2},     {"bool", 0, 0},       {"indent", 0, 3},    {"items", 0, 0},      {"map", 0, 1},
    {"select", 0, 1},  {"reject", 0, 1},     {"dictsort", 0, 0},
}};

constexpr std::array<std::string_view, 15> tests{"defined", "undefined", "none",    "true",     "false",
                                                 "boolean", "number",    "integer", "float",    "string",
                                                 "mapping", "sequence",  "even",    "odd",      "divisibleby"};

template <class Range>
bool contains(const Range& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

template <class Range>
std::string listing(const Range& names) {
  std::string out;
  for (std::string_view n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Values

struct value;
using value_list = std::vector<value>;
using value_dict = std::vector<std::pair<std::string, value>>;

enum class value_kind { undefined, none, boolean, integer, number, string, list, dict, datetime, timedelta, object, method };

/// A Python-like value. `text` holds a string, an undefined value's description, an object's
/// namespace name or a method's name; `self` is a method's object.
struct value {
  value_kind kind = value_kind::none;
  bool flag = false;          // boolean; for datetime: naive (stdlib `datetime`, printed with a space)
  long long integer = 0;
  double number = 0;
  std::string text;
  std::shared_ptr<value_list> list;
  std::shared_ptr<value_dict> dict;
  std::chrono::microseconds micros{0};  // datetime since the epoch (UTC), or a timedelta
  std::shared_ptr<value> self;
  int depth = 0;  // lists and dicts nested in it (0: none), bounded by of_list and of_dict

  static value undefined(std::string why) { value v; v.kind = value_kind::undefined; v.text = std::move(why); return v; }
  static value boolean(bool b) { value v; v.kind = value_kind::boolean; v.flag = b; return v; }
  static value of_int(long long i) { value v; v.kind = value_kind::integer; v.integer = i; return v; }
  static value of_float(double d) { value v; v.kind = value_kind::number; v.number = d; return v; }
  static value of_string(std::string s);
  static value of_list(value_list l);
  static value of_dict(value_dict d);
  static value datetime(std::chrono::microseconds since_epoch, bool naive = false) {
    value v; v.kind = value_kind::datetime; v.micros = since_epoch; v.flag = naive; return v;
  }
  static value of_time(time_point t) { return datetime(std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch())); }
  static value timedelta(std::chrono::microseconds d) { value v; v.kind = value_kind::timedelta; v.micros = d; return v; }
  static value object(std::string name) { value v; v.kind = value_kind::object; v.text = std::move(name); return v; }
  static value method(value self, std::string name) {
    value v; v.kind = value_kind::method; v.text = std::move(name); v.depth = self.depth; v.self = std::make_shared<value>(std::move(self)); return v;
  }
  bool is(value_kind k) const { return kind == k; }
  bool numeric() const { return kind == value_kind::integer || kind == value_kind::number || kind == value_kind::boolean; }
  double as_double() const { return kind == value_kind::number ? number : static_cast<double>(kind == value_kind::boolean ? flag : integer); }
  long long as_int() const { return kind == value_kind::boolean ? (flag ? 1 : 0) : integer; }
};

std::string type_name(const value& v) {
  switch (v.kind) {
    case value_kind::undefined: return "undefined";
    case value_kind::none: return "NoneType";
    case value_kind::boolean: return "bool";
    case value_kind::integer: return "int";
    case value_kind::number: return "float";
    case value_kind::string: return "str";
    case value_kind::list: return "list";
    case value_kind::dict: return "dict";
    case value_kind::datetime: return "datetime";
    case value_kind::timedelta: return "timedelta";
    case value_kind::object: return v.text;
    case value_kind::method: return "method";
  }
  return "value";
}

[[noreturn]] void fail(const std::string& message) { throw error(message); }

// Bounds on what one template may ask of the process that renders it (the scheduler): a template
// comes from a DAG file and renders values from outside (a run's conf, XComs, variables), and
// neither may exhaust its stack, memory or time (docs/concepts.md, "Limits of a template").
constexpr int max_nesting = 64;                 // brackets, blocks, `not` or `-` in a row
constexpr std::size_t max_links = 500;          // operators, attributes, items, calls, filters of one tag
constexpr std::size_t max_text = 16u << 20;     // bytes of any string built, and of the output
constexpr std::size_t max_items = 100000;       // items of any list built (as range())
constexpr long long max_steps = 1'000'000;      // steps of one render (charge: evaluations, items, text)

/// Fails unless a string of `size` bytes is within max_text.
void fits(std::size_t size) {
  if (size > max_text) fail("a template may build strings of at most 16 MiB");
}
/// Fails unless a list of `count` items is within max_items.
void fits_items(std::size_t count) {
  if (count > max_items) fail("a template may build lists of at most 100000 items");
}

constexpr int max_value_depth = 64;  // lists and dicts nested in one value (`[[[…]]]`, fromjson)

/// The steps the render on this thread has taken (its renderer points it at its count; null
/// outside a render). Work inside one evaluation counts too: each item compared, printed or
/// parsed from JSON, each 256 bytes of text made, so that `unique` of a long list, `in` in a
/// loop or a list printed that holds itself many times over cannot run for hours.
thread_local long long* render_steps = nullptr;

void charge(long long steps) {
  if (render_steps && (*render_steps += steps) > max_steps)
    fail("a template may take at most 1000000 steps (evaluations, loop iterations, items compared or printed)");
}

value value::of_string(std::string s) {
  charge(static_cast<long long>(s.size() / 256));
  value v;
  v.kind = value_kind::string;
  v.text = std::move(s);
  return v;
}

/// The depth of a list or dict holding `items`; fails past max_value_depth, so that printing,
/// comparing or dropping a value never recurses deeper than that.
template <class Items, class Get>
int nested_depth(const Items& items, Get get) {
  int deepest = 0;
  for (const auto& item : items) deepest = std::max(deepest, get(item).depth);
  if (deepest + 1 > max_value_depth) fail("a template may nest lists and dicts at most 64 deep");
  return deepest + 1;
}

value value::of_list(value_list l) {
  value v;
  v.kind = value_kind::list;
  v.depth = nested_depth(l, [](const value& item) -> const value& { return item; });
  v.list = std::make_shared<value_list>(std::move(l));
  return v;
}

value value::of_dict(value_dict d) {
  value v;
  v.kind = value_kind::dict;
  v.depth = nested_depth(d, [](const auto& entry) -> const value& { return entry.second; });
  v.dict = std::make_shared<value_dict>(std::move(d));
  return v;
}

/// StrictUndefined: any use of an undefined value other than `default` and `is defined` fails.
const value& need(const value& v) {
  if (v.is(value_kind::undefined)) fail(v.text);
  return v;
}

bool truthy(const value& v) {
  switch (need(v).kind) {
    case value_kind::none: return false;
    case value_kind::boolean: return v.flag;
    case value_kind::integer: return v.integer != 0;
    case value_kind::number: return v.number != 0;
    case value_kind::string: return !v.text.empty();
    case value_kind::list: return !v.list->empty();
    case value_kind::dict: return !v.dict->empty();
    case value_kind::timedelta: return v.micros.count() != 0;
    default: return true;
  }
}

// --- dates

struct civil {
  int year;
  unsigned month, day;
  long long hour, minute, second, micro;
  unsigned weekday;  // 0 = Monday, as Python
  unsigned yearday;  // 1-based
};

civil split(std::chrono::microseconds since_epoch) {
  using namespace std::chrono;
  sys_time<microseconds> t{since_epoch};
  auto day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss hms{t - day};
  weekday wd{day};
  auto jan1 = sys_days{ymd.year() / January / 1};
  return {static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
          static_cast<long long>(hms.hours().count()), static_cast<long long>(hms.minutes().count()),
          static_cast<long long>(hms.seconds().count()), static_cast<long long>(hms.subseconds().count()),
          (wd.c_encoding() + 6) % 7, static_cast<unsigned>((day - jan1).count() + 1)};
}

std::chrono::microseconds make_date(long long y, long long mo, long long d, long long h = 0, long long mi = 0,
                                    long long s = 0, long long us = 0) {
  using namespace std::chrono;
  if (y < 1 || y > 9999) fail("year " + std::to_string(y) + " is out of range");
  if (mo < 1 || mo > 12) fail("month must be in 1..12");
  year_month_day ymd{year{static_cast<int>(y)}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(std::max(d, 0LL))}};
  if (d < 1 || !ymd.ok()) fail("day is out of range for month");
  if (h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59 || us < 0 || us > 999999) fail("time is out of range");
  return duration_cast<microseconds>(sys_days{ymd}.time_since_epoch()) + hours{h} + minutes{mi} + seconds{s} + microseconds{us};
}

void append_digits(std::string& out, long long value, int width) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  if (value < 0) out += '-';
  for (int pad = static_cast<int>(digits.size()); pad < width; ++pad) out += '0';
  out += digits;
}

constexpr std::array<std::string_view, 7> day_names{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> month_names{"January", "February", "March",     "April",   "May",      "June",
                                                        "July",    "August",   "September", "October", "November", "December"};

/// Python's `strftime` for the directives DAGs use (all times are UTC; a naive time has no zone).
std::string strftime(const value& dt, std::string_view format) {
  civil c = split(dt.micros);
  std::string out;
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 == format.size()) {
      out += format[i];
      continue;
    }
    char d = format[++i];
    switch (d) {
      case 'Y': append_digits(out, c.year, 4); break;
      case 'y': append_digits(out, c.year % 100, 2); break;
      case 'm': append_digits(out, c.month, 2); break;
      case 'd': append_digits(out, c.day, 2); break;
      case 'H': append_digits(out, c.hour, 2); break;
      case 'I': append_digits(out, c.hour % 12 == 0 ? 12 : c.hour % 12, 2); break;
      case 'p': out += c.hour < 12 ? "AM" : "PM"; break;
      case 'M': append_digits(out, c.minute, 2); break;
      case 'S': append_digits(out, c.second, 2); break;
      case 'f': append_digits(out, c.micro, 6); break;
      case 'j': append_digits(out, c.yearday, 3); break;
      case 'a': out += day_names[c.weekday].substr(0, 3); break;
      case 'A': out += day_names[c.weekday]; break;
      case 'w': out += std::to_string((c.weekday + 1) % 7); break;
      case 'u': out += std::to_string(c.weekday + 1); break;
      case 'b': out += month_names[c.month - 1].substr(0, 3); break;
      case 'B': out += month_names[c.month - 1]; break;
      case 'z': if (!dt.flag) out += "+0000"; break;
      case 'Z': if (!dt.flag) out += "UTC"; break;
      case 'F': out += strftime(dt, "%Y-%m-%d"); break;
      case 'T': out += strftime(dt, "%H:%M:%S"); break;
      case '%': out += '%'; break;
      default: fail("unsupported strftime directive '%" + std::string(1, d) + "'");
    }
  }
  return out;
}

/// Python's `strptime` for the numeric directives and month names; the result is naive.
value strptime(std::string_view text, std::string_view format) {
  long long y = 1900, mo = 1, d = 1, h = 0, mi = 0, s = 0, us = 0;
  std::size_t at = 0;
  auto bad = [&]() -> value { fail("time data '" + std::string(text) + "' does not match format '" + std::string(format) + "'"); };
  auto number = [&](std::size_t max_digits) {
    std::size_t start = at;
    while (at < text.size() && at - start < max_digits && is_digit(text[at])) ++at;
    if (at == start) bad();
    return std::stoll(std::string(text.substr(start, at - start)));
  };
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 == format.size()) {
      if (at >= text.size() || text[at] != format[i]) bad();
      ++at;
      continue;
    }
    char dir = format[++i];
    switch (dir) {
      case 'Y': y = number(4); break;
      case 'y': y = number(2); y += y < 69 ? 2000 : 1900; break;
      case 'm': mo = number(2); break;
      case 'd': d = number(2); break;
      case 'H': h = number(2); break;
      case 'M': mi = number(2); break;
      case 'S': s = number(2); break;
      case 'f': {
        std::size_t start = at;
        us = number(6);
        for (std::size_t n = at - start; n < 6; ++n) us *= 10;
        break;
      }
      case 'b':
      case 'B': {
        bool found = false;
        for (std::size_t k = 0; k < month_names.size() && !found; ++k) {
          std::string_view name = month_names[k];
          std::string_view want = dir == 'b' ? name.substr(0, 3) : name;
          if (text.substr(at, want.size()) == want) {
            mo = static_cast<long long>(k) + 1;
            at += want.size();
            found = true;
          }
        }
        if (!found) bad();
        break;
      }
      case '%':
        if (at >= text.size() || text[at] != '%') bad();
        ++at;
        break;
      default: fail("unsupported strptime directive '%" + std::string(1, dir) + "'");
    }
  }
  if (at != text.size()) fail("unconverted data remains: " + std::string(text.substr(at)));
  return value::datetime(make_date(y, mo, d, h, mi, s, us), true);
}

/// Pendulum's ISO form (`2024-01-01T00:00:00+00:00`), or Python's for a naive datetime.
std::string iso(const value& dt, char separator = 'T') {
  civil c = split(dt.micros);
  std::string out;
  append_digits(out, c.year, 4);
  out += '-';
  append_digits(out, c.month, 2);
  out += '-';
  append_digits(out, c.day, 2);
  out += separator;
  append_digits(out, c.hour, 2);
  out += ':';
  append_digits(out, c.minute, 2);
  out += ':';
  append_digits(out, c.second, 2);
  if (c.micro != 0) {
    out += '.';
    append_digits(out, c.micro, 6);
  }
  if (!dt.flag) out += "+00:00";
  return out;
}

/// Python's `str(timedelta)`: `1 day, 2:03:04`, `-1 day, 23:00:00`, `0:00:00.500000`.
std::string timedelta_text(std::chrono::microseconds d) {
  using namespace std::chrono;
  long long total = d.count();
  long long day_us = 86400LL * 1000000;
  long long days_part = total >= 0 ? total / day_us : -((-total + day_us - 1) / day_us);
  long long rest = total - days_part * day_us;
  std::string out;
  if (days_part != 0) out += std::to_string(days_part) + (days_part == 1 || days_part == -1 ? " day, " : " days, ");
  long long secs = rest / 1000000;
  out += std::to_string(secs / 3600) + ":";
  append_digits(out, secs / 60 % 60, 2);
  out += ':';
  append_digits(out, secs % 60, 2);
  if (rest % 1000000 != 0) {
    out += '.';
    append_digits(out, rest % 1000000, 6);
  }
  return out;
}

std::string ds_of(const value& dt) { return strftime(dt, "%Y-%m-%d"); }

// --- text forms

/// Python's `repr(float)`: the shortest digits that read back, fixed between 1e-4 and 1e16.
std::string float_text(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  std::array<char, 64> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), d, std::chars_format::scientific);
  std::string sci(buf.data(), end);
  std::size_t e = sci.find('e');
  int exponent = std::stoi(sci.substr(e + 1));
  std::string mantissa = sci.substr(0, e);
  bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  std::string out = negative ? "-" : "";
  if (exponent >= -5 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    } else {
      auto point = static_cast<std::size_t>(exponent) + 1;
      if (digits.size() <= point) out += digits + std::string(point - digits.size(), '0') + ".0";
      else out += digits.substr(0, point) + "." + digits.substr(point);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  out += exponent < 0 ? "e-" : "e+";
  append_digits(out, exponent < 0 ? -exponent : exponent, 2);
  return out;
}

std::string str(const value& v);

/// Python's `repr`: strings quoted, the rest as `str`.
std::string repr(const value& v) {
  if (!v.is(value_kind::string)) return str(v);
  char q = v.text.find('\'') != std::string::npos && v.text.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, q);
  for (char c : v.text) {
    if (c == q || c == '\\') out += '\\';
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else out += c;
  }
  return out + q;
}

/// Python's `str`, with pendulum's form for aware datetimes (what Jinja prints).
std::string str(const value& v) {
  switch (need(v).kind) {
    case value_kind::none: return "None";
    case value_kind::boolean: return v.flag ? "True" : "False";
    case value_kind::integer: return std::to_string(v.integer);
    case value_kind::number: return float_text(v.number);
    case value_kind::string: return v.text;
    case value_kind::list: {
      std::string out = "[";
      for (const auto& item : *v.list) {
        charge(1);
        out += (out.size() > 1 ? ", " : "") + repr(item);
        fits(out.size());
      }
      return out + "]";
    }
    case value_kind::dict: {
      std::string out = "{";
      for (const auto& [k, item] : *v.dict) {
        charge(1);
        out += (out.size() > 1 ? ", " : "") + repr(value::of_string(k)) + ": " + repr(item);
        fits(out.size());
      }
      return out + "}";
    }
    case value_kind::datetime: return iso(v, v.flag ? ' ' : 'T');
    case value_kind::timedelta: return timedelta_text(v.micros);
    case value_kind::object: return "<" + v.text + ">";
    case value_kind::method: return "<method " + v.text + ">";
    case value_kind::undefined: break;
  }
  return {};
}

/// JSON as Jinja's `tojson` writes it: keys sorted, `<`, `>`, `&` and `'` escaped for HTML.
void write_json(std::string& out, const value& v, int indent, int depth) {
  charge(1);
  fits(out.size());
  auto newline = [&](int d) {
    if (indent <= 0) return;
    out += '\n';
    out += std::string(static_cast<std::size_t>(indent * d), ' ');
  };
  switch (need(v).kind) {
    case value_kind::none: out += "null"; return;
    case value_kind::boolean: out += v.flag ? "true" : "false"; return;
    case value_kind::integer: out += std::to_string(v.integer); return;
    case value_kind::number: out += std::isfinite(v.number) ? float_text(v.number) : (std::isnan(v.number) ? "NaN" : (v.number > 0 ? "Infinity" : "-Infinity")); return;
    case value_kind::list: {
      if (v.list->empty()) { out += "[]"; return; }
      out += '[';
      bool first = true;
      for (const auto& item : *v.list) {
        if (!first) out += indent > 0 ? "," : ", ";
        first = false;
        newline(depth + 1);
        write_json(out, item, indent, depth + 1);
      }
      newline(depth);
      out += ']';
      return;
    }
    case value_kind::dict: {
      if (v.dict->empty()) { out += "{}"; return; }
      std::vector<const std::pair<std::string, value>*> entries;
      for (const auto& e : *v.dict) entries.push_back(&e);
      std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      bool first = true;
      for (const auto* e : entries) {
        if (!first) out += indent > 0 ? "," : ", ";
        first = false;
        newline(depth + 1);
        write_json(out, value::of_string(e->first), indent, depth + 1);
        out += ": ";
        write_json(out, e->second, indent, depth + 1);
      }
      newline(depth);
      out += '}';
      return;
    }
    default: break;
  }
  std::string s = v.is(value_kind::string) ? v.text : v.is(value_kind::datetime) ? iso(v) : str(v);
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      case '\'': out += "\\u0027"; break;
      default:
        if (c < 0x20) {
          static constexpr char hex[] = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

value from_json(const nlohmann::json& j, int depth = 0) {
  // Bounded before it recurses: a JSON value nested deeper than a template's values may be (an
  // XCom of 30,000 brackets) would overflow the stack here.
  if ((j.is_array() || j.is_object()) && depth >= max_value_depth) fail("a template may nest lists and dicts at most 64 deep");
  charge(1);
  switch (j.type()) {
    case nlohmann::json::value_t::null: return value{};
    case nlohmann::json::value_t::boolean: return value::boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return value::of_int(j.get<long long>());
    case nlohmann::json::value_t::number_unsigned: return value::of_int(static_cast<long long>(j.get<unsigned long long>()));
    case nlohmann::json::value_t::number_float: return value::of_float(j.get<double>());
    case nlohmann::json::value_t::string: return value::of_string(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      value_list l;
      for (const auto& item : j) {
        fits_items(l.size() + 1);
        l.push_back(from_json(item, depth + 1));
      }
      return value::of_list(std::move(l));
    }
    case nlohmann::json::value_t::object: {
      value_dict d;
      for (const auto& [k, item] : j.items()) {
        fits_items(d.size() + 1);
        d.emplace_back(k, from_json(item, depth + 1));
      }
      return value::of_dict(std::move(d));
    }
    default: return value{};
  }
}

value parse_json(std::string_view text, std::string_view what) {
  // Its brackets counted first: the parser would build (and then free) every level of a string of
  // millions of `[` before from_json could refuse the 65th, seconds of work for nothing.
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_value_depth) fail("a template may nest lists and dicts at most 64 deep");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) fail(std::string(what) + " is not valid JSON");
  return from_json(j);
}

/// One shell word, as Python's `shlex.quote`: bare when only safe characters, else single-quoted.
std::string shell_quote(std::string_view s) {
  if (s.empty()) return "''";
  bool safe = std::all_of(s.begin(), s.end(), [](char c) {
    return is_ident_char(c) || c == '@' || c == '%' || c == '+' || c == '=' || c == ':' || c == ',' || c == '.' ||
           c == '/' || c == '-';
  });
  if (safe) return std::string(s);
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\"'\"'") : std::string(1, c);
  return out + "'";
}

// ---------------------------------------------------------------------------------------------
// Expression tokens

enum class token_kind { name, string, integer, number, op, end };

struct token {
  token_kind kind;
  std::string text;  // name, decoded string, number text, or operator
  std::size_t offset;
};

/// One past the closing quote of the string opening at `at`, or npos when it does not close on
/// its line (so an unbalanced quote is found where it is).
std::size_t string_stop(std::string_view text, std::size_t at, std::size_t limit) {
  char quote = text[at];
  for (std::size_t i = at + 1; i < limit; ++i) {
    if (text[i] == '\\' && i + 1 < limit && text[i + 1] != '\n') ++i;
    else if (text[i] == quote) return i + 1;
    else if (text[i] == '\n') break;
  }
  return std::string_view::npos;
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
      out.push_back({token_kind::name, std::string(text.substr(start, i - start)), start});
    } else if (is_digit(c)) {
      std::size_t start = i;
      bool is_float = false;
      while (i < end && (is_digit(text[i]) || text[i] == '_')) ++i;
      if (i + 1 < end && text[i] == '.' && is_digit(text[i + 1])) {
        is_float = true;
        ++i;
        while (i < end && is_digit(text[i])) ++i;
      }
      if (i < end && (text[i] == 'e' || text[i] == 'E')) {
        std::size_t j = i + 1;
        if (j < end && (text[j] == '+' || text[j] == '-')) ++j;
        if (j < end && is_digit(text[j])) {
          is_float = true;
          i = j;
          while (i < end && is_digit(text[i])) ++i;
        }
      }
      std::string digits;
      for (char d : text.substr(start, i - start))
        if (d != '_') digits += d;
      out.push_back({is_float ? token_kind::number : token_kind::integer, digits, start});
    } else if (c == '\'' || c == '"') {
      std::size_t stop = string_stop(text, i, end);
      if (stop == std::string_view::npos) fail_at(text, i, "unterminated string in template expression");
      std::string decoded;
      for (std::size_t k = i + 1; k + 1 < stop; ++k) {
        char ch = text[k];
        if (ch == '\\' && k + 2 < stop) {
          char next = text[++k];
          decoded += next == 'n' ? '\n' : next == 't' ? '\t' : next == 'r' ? '\r' : next;
        } else {
          decoded += ch;
        }
      }
      out.push_back({token_kind::string, std::move(decoded), i});
      i = stop;
    } else {
      static constexpr std::array<std::string_view, 7> two{"==", "!=", "<=", ">=", "//", "**", "  "};
      std::string_view pair = text.substr(i, std::min<std::size_t>(2, end - i));
      if (pair.size() == 2 && contains(two, pair) && pair != "  ") {
        out.push_back({token_kind::op, std::string(pair), i});
        i += 2;
      } else if (std::string_view("+-*/%~<>()[]{},.:|=").find(c) != std::string_view::npos) {
        out.push_back({token_kind::op, std::string(1, c), i});
        ++i;
      } else {
        fail_at(text, i, "unexpected character '" + std::string(1, c) + "' in template expression");
      }
    }
  }
  out.push_back({token_kind::end, "", end});
  return out;
}

// ---------------------------------------------------------------------------------------------
// Expression trees

struct expr;
using expr_ptr = std::unique_ptr<expr>;

enum class expr_kind { literal, name, attr, item, call, filter, test, not_, neg, pos, binary, and_, or_, cond, list, dict };

struct expr {
  expr_kind kind = expr_kind::literal;
  std::size_t offset = 0;
  value literal;                 // literal
  std::string name;              // name, attribute, filter, test, binary operator
  bool negated = false;          // `is not`, `not in`
  std::vector<expr_ptr> args;    // operand(s) first, then positional arguments
  std::vector<std::pair<std::string, expr_ptr>> kwargs;  // keyword arguments
};

expr_ptr make_expr(expr_kind kind, std::size_t offset) {
  auto e = std::make_unique<expr>();
  e->kind = kind;
  e->offset = offset;
  return e;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Statements

namespace detail {

enum class node_kind { text, output, if_, for_, set, set_block };

struct node {
  node_kind kind = node_kind::text;
  std::string text;                                      // text
  expr_ptr value;                                        // output, set
  std::vector<std::string> targets;                      // for, set, set_block
  std::vector<std::pair<expr_ptr, std::vector<node>>> branches;  // if: (condition or null for else, body)
  std::vector<node> body;                                // for, set_block
  std::vector<node> else_body;                           // for
};

struct template_program {
  std::vector<node> nodes;
};

}  // namespace detail

namespace {

using detail::node;
using detail::node_kind;

// ---------------------------------------------------------------------------------------------
// Parsing

/// A piece of the text: plain text, `{{ expression }}` or `{% tag %}`.
enum class piece_kind { text, output, tag };

struct piece {
  piece_kind kind;
  std::string text;            // plain text
  std::size_t begin = 0;       // output/tag: the body's byte range
  std::size_t end = 0;
  std::size_t offset = 0;      // where the `{{` / `{%` opens
};

/// Drops trailing whitespace (Jinja's `{{-`, `{%-`, `{#-`).
void trim_right(std::string& s) {
  while (!s.empty() && is_space(s.back())) s.pop_back();
}

/// The end of the tag body that opens at `body`: the offset of its closing `close` (`}}` or
/// `%}`), skipping quoted strings, or npos. Another opening before it means it was never closed.
std::size_t find_close(std::string_view text, std::size_t body, char close) {
  int depth = 0;  // open brackets inside the tag: `{{ {'a': {'b': 1}}['a'] }}` closes after the last `}}`
  std::size_t unbalanced = std::string_view::npos;  // the first closing pair seen inside brackets
  for (std::size_t j = body; j < text.size();) {
    char c = text[j];
    std::size_t quoted_stop = c == '\'' || c == '"' ? string_stop(text, j, text.size()) : std::string_view::npos;
    if (quoted_stop != std::string_view::npos) {
      j = quoted_stop;
      continue;
    }
    const bool pair_closes = j + 1 < text.size() && text[j + 1] == '}';
    if (c == close && pair_closes) {
      if (depth == 0) return j;
      if (unbalanced == std::string_view::npos) unbalanced = j;
    }
    // Another opening means this tag was never closed, or closed inside unbalanced brackets
    // (then the expression parser names the bracket left open).
    if (depth == 0 && c == '{' && j + 1 < text.size() && (text[j + 1] == '{' || text[j + 1] == '%')) return unbalanced;
    if (c == '{' || c == '(' || c == '[') ++depth;
    else if ((c == '}' || c == ')' || c == ']') && depth > 0) --depth;
    ++j;
  }
  return unbalanced;
}

std::vector<piece> split_pieces(std::string_view text) {
  std::vector<piece> out;
  std::string literal;
  bool trim_next = false;
  std::size_t i = 0;
  const std::size_t n = text.size();
  auto flush = [&] {
    if (!literal.empty()) out.push_back({piece_kind::text, std::move(literal), 0, 0, 0});
    literal.clear();
  };
  while (i < n) {
    std::size_t brace = text.find('{', i);
    std::size_t stop = brace == std::string_view::npos ? n : brace;
    if (trim_next) {
      while (i < stop && is_space(text[i])) ++i;
      if (i < stop) trim_next = false;
    }
    literal.append(text.substr(i, stop - i));
    i = stop;
    if (i >= n) break;
    char kind = i + 1 < n ? text[i + 1] : '\0';
    if (kind != '{' && kind != '%' && kind != '#') {  // a single '{' is text (shell `${x}`, JSON, awk)
      literal += '{';
      trim_next = false;
      ++i;
      continue;
    }
    const std::size_t open = i;
    std::size_t body = open + 2;
    if (body < n && text[body] == '-') {
      trim_right(literal);
      ++body;
    }
    if (kind == '#') {
      std::size_t close = text.find("#}", open + 2);
      if (close == std::string_view::npos) fail_at(text, open, "unclosed '{#' opened at " + describe_column(text, open));
      trim_next = close > open + 2 && text[close - 1] == '-';
      i = close + 2;
      continue;
    }
    std::size_t close = find_close(text, body, kind == '{' ? '}' : '%');
    if (close == std::string_view::npos)
      fail_at(text, open, std::string("unclosed '{") + kind + "' opened at " + describe_column(text, open));
    std::size_t body_end = close;
    trim_next = body_end > body && text[body_end - 1] == '-';
    if (trim_next) --body_end;
    flush();
    out.push_back({kind == '{' ? piece_kind::output : piece_kind::tag, {}, body, body_end, open});
    i = close + 2;
    // `{% raw %}`: everything up to `{% endraw %}` is text.
    if (kind == '%') {
      auto tokens = tokenize(text, body, body_end);
      if (tokens.size() == 2 && tokens[0].kind == token_kind::name && tokens[0].text == "raw") {
        out.pop_back();
        static const std::regex endraw(R"(\{%-?\s*endraw\s*-?%\})");
        std::match_results<std::string_view::const_iterator> m;
        if (!std::regex_search(text.begin() + static_cast<std::ptrdiff_t>(i), text.end(), m, endraw))
          fail_at(text, open, "'{% raw %}' has no '{% endraw %}'");
        std::size_t raw_end = i + static_cast<std::size_t>(m.position(0));
        std::string raw(text.substr(i, raw_end - i));
        if (trim_next) raw.erase(0, raw.find_first_not_of(" \t\r\n\f\v") == std::string::npos ? raw.size() : raw.find_first_not_of(" \t\r\n\f\v"));
        if (m.str(0).size() > 2 && m.str(0)[2] == '-') trim_right(raw);
        literal += raw;
        i = raw_end + static_cast<std::size_t>(m.length(0));
        trim_next = m.str(0).size() > 3 && m.str(0)[m.str(0).size() - 3] == '-';
      }
    }
  }
  flush();
  return out;
}

class parser {
public:
  parser(std::string_view text, std::vector<template_ref>& refs) : text_(text), refs_(refs), cursor_(text) {}

  std::vector<node> parse_all() {
    pieces_ = split_pieces(text_);
    scopes_.emplace_back();
    auto nodes = parse_block({});
    if (at_ < pieces_.size()) {  // parse_block only stops early at an end tag
      fail_at(text_, pieces_[at_].offset, "unexpected '{% " + tag_name(pieces_[at_]) + " %}' with no open block");
    }
    return nodes;
  }

private:
  // --- statements

  std::string tag_name(const piece& p) const {
    auto tokens = tokenize(text_, p.begin, p.end);
    return tokens[0].kind == token_kind::name ? tokens[0].text : std::string{};
  }

  /// Statements up to (not including) a tag named in `stops`, or the end.
  std::vector<node> parse_block(std::vector<std::string_view> stops) {
    const nested guard(*this, at_ < pieces_.size() ? pieces_[at_].offset : text_.size());
    std::vector<node> out;
    while (at_ < pieces_.size()) {
      const piece& p = pieces_[at_];
      if (p.kind == piece_kind::text) {
        node t;
        t.text = p.text;
        out.push_back(std::move(t));
        ++at_;
        continue;
      }
      if (p.kind == piece_kind::output) {
        start(p.begin, p.end, p.offset);
        if (tok().kind == token_kind::end) fail_at(text_, p.offset, "empty template expression '{{ }}'");
        node o;
        o.kind = node_kind::output;
        o.value = parse_expression();
        expect_end("{{ ... }}");
        out.push_back(std::move(o));
        ++at_;
        continue;
      }
      start(p.begin, p.end, p.offset);
      if (tok().kind != token_kind::name) fail_at(text_, p.offset, "expected a tag name after '{%'");
      std::string name = tok().text;
      if (contains(stops, name)) return out;
      static constexpr std::array<std::string_view, 9> tags{"if", "for", "set", "raw", "elif", "else", "endif", "endfor", "endset"};
      if (name == "if") out.push_back(parse_if());
      else if (name == "for") out.push_back(parse_for());
      else if (name == "set") out.push_back(parse_set());
      else if (contains(tags, name))
        fail_at(text_, tok().offset, "unexpected '{% " + name + " %}'" +
                                        (stops.empty() ? std::string(" with no open block")
                                                       : " (expected '{% " + std::string(stops.back()) + " %}')"));
      else
        fail_at(text_, tok().offset, "unknown tag '" + name + "'" + did_you_mean(name, tags) +
                                        " (supported: if/elif/else/endif, for/else/endfor, set, raw)");
    }
    if (!stops.empty()) fail_at(text_, open_offset_, "'{% " + open_name_ + " %}' is never closed: expected '{% " +
                                                         std::string(stops.back()) + " %}'");
    return out;
  }

  /// The name of the tag at the current piece (after parse_block stopped at it), advancing past it.
  std::string take_tag() {
    const piece& p = pieces_[at_++];
    start(p.begin, p.end, p.offset);
    std::string name = tok().text;
    ++pos_;
    return name;
  }

  struct open_block {
    parser& self;
    std::size_t saved_offset;
    std::string saved_name;
    open_block(parser& p, std::size_t offset, std::string name) : self(p), saved_offset(p.open_offset_), saved_name(p.open_name_) {
      self.open_offset_ = offset;
      self.open_name_ = std::move(name);
    }
    ~open_block() {
      self.open_offset_ = saved_offset;
      self.open_name_ = saved_name;
    }
    open_block(const open_block&) = delete;
    open_block& operator=(const open_block&) = delete;
  };

  node parse_if() {
    node n;
    n.kind = node_kind::if_;
    open_block block(*this, pieces_[at_].offset, "if");
    ++pos_;
    expr_ptr condition = parse_expression();
    expect_end("{% if ... %}");
    ++at_;
    for (;;) {
      auto body = parse_block({"elif", "else", "endif"});
      n.branches.emplace_back(std::move(condition), std::move(body));
      std::string name = take_tag();
      if (name == "endif") {
        expect_end("{% endif %}");
        return n;
      }
      if (name == "else") {
        expect_end("{% else %}");
        auto last = parse_block({"endif"});
        n.branches.emplace_back(nullptr, std::move(last));
        take_tag();
        expect_end("{% endif %}");
        return n;
      }
      condition = parse_expression();
      expect_end("{% elif ... %}");
    }
  }

  std::vector<std::string> parse_targets(std::string_view what) {
    std::vector<std::string> names;
    do {
      if (tok().kind != token_kind::name) fail_at(text_, tok().offset, "expected a variable name in '" + std::string(what) + "'");
      names.push_back(tok().text);
      ++pos_;
    } while (accept(","));
    return names;
  }

  node parse_for() {
    node n;
    n.kind = node_kind::for_;
    open_block block(*this, pieces_[at_].offset, "for");
    ++pos_;
    n.targets = parse_targets("{% for NAME in ... %}");
    if (!(tok().kind == token_kind::name && tok().text == "in")) fail_at(text_, tok().offset, "expected 'in' in '{% for NAME in ... %}'");
    ++pos_;
    n.value = parse_or_test();
    expect_end("{% for ... %}");
    ++at_;
    scopes_.emplace_back(n.targets.begin(), n.targets.end());
    scopes_.back().insert("loop");
    n.body = parse_block({"else", "endfor"});
    scopes_.pop_back();
    if (take_tag() == "else") {
      expect_end("{% else %}");
      n.else_body = parse_block({"endfor"});
      take_tag();
    }
    expect_end("{% endfor %}");
    return n;
  }

  node parse_set() {
    node n;
    n.kind = node_kind::set;
    std::size_t offset = pieces_[at_].offset;
    ++pos_;
    n.targets = parse_targets("{% set NAME = ... %}");
    if (accept("=")) {
      n.value = parse_expression();
      expect_end("{% set ... %}");
      ++at_;
    } else {
      if (tok().kind != token_kind::end) fail_at(text_, tok().offset, "expected '=' in '{% set NAME = ... %}'");
      if (n.targets.size() != 1) fail_at(text_, offset, "a '{% set %}' block sets one name");
      n.kind = node_kind::set_block;
      ++at_;
      open_block block(*this, offset, "set");
      n.body = parse_block({"endset"});
      take_tag();
      expect_end("{% endset %}");
    }
    for (const auto& t : n.targets) scopes_.back().insert(t);
    return n;
  }

  // --- expressions

  void start(std::size_t begin, std::size_t end, std::size_t open) {
    tokens_ = tokenize(text_, begin, end);
    pos_ = 0;
    links_ = 0;
    tag_offset_ = open;
  }
  const token& tok() const { return tokens_[pos_]; }
  const token& peek(std::size_t k = 1) const { return tokens_[std::min(pos_ + k, tokens_.size() - 1)]; }
  bool is_op(std::string_view op) const { return tok().kind == token_kind::op && tok().text == op; }
  bool is_keyword(std::string_view word) const { return tok().kind == token_kind::name && tok().text == word; }
  bool accept(std::string_view op) {
    if (!is_op(op)) return false;
    ++pos_;
    return true;
  }
  void expect(std::string_view op, std::string_view context) {
    if (!accept(op)) fail_at(text_, tok().offset, "expected '" + std::string(op) + "' " + std::string(context) + describe_found());
  }
  std::string describe_found() const {
    if (tok().kind == token_kind::end) return " but the expression ended";
    return ", found '" + (tok().kind == token_kind::string ? "\"" + tok().text + "\"" : tok().text) + "'";
  }
  void expect_end(std::string_view what) {
    if (tok().kind == token_kind::end) return;
    fail_at(text_, tok().offset, "unexpected '" + tok().text + "' in '" + std::string(what) + "'");
  }

  /// Counts one level of nesting while it lives: the parser and the renderer recurse once per
  /// level, so a template nested thousands deep would overflow the stack.
  class nested {
  public:
    nested(parser& p, std::size_t offset) : p_(p) {
      if (++p_.nesting_ > max_nesting)
        fail_at(p_.text_, offset, "the template nests deeper than 64 levels (brackets, blocks, 'not' or '-' in a row)");
    }
    ~nested() { --p_.nesting_; }
    nested(const nested&) = delete;
    nested& operator=(const nested&) = delete;

  private:
    parser& p_;
  };

  /// Counts one operator, attribute, item, call or filter of the current tag: each makes the tree
  /// one deeper (`1+1+1…`), and rendering recurses once per level.
  void link(std::size_t offset) {
    if (++links_ > max_links)
      fail_at(text_, offset, "a template tag may hold at most 500 operators, attributes, items, calls and filters");
  }

  expr_ptr parse_expression() {
    const nested guard(*this, tok().offset);
    expr_ptr e = parse_or_test();
    if (is_keyword("if")) {  // `a if cond else b`
      std::size_t offset = tok().offset;
      ++pos_;
      auto c = make_expr(expr_kind::cond, offset);
      c->args.push_back(parse_or_test());
      c->args.push_back(std::move(e));
      if (is_keyword("else")) {
        ++pos_;
        c->args.push_back(parse_expression());
      }
      return c;
    }
    return e;
  }

  expr_ptr parse_or_test() {
    expr_ptr left = parse_and();
    while (is_keyword("or")) {
      link(tok().offset);
      auto e = make_expr(expr_kind::or_, tok().offset);
      ++pos_;
      e->args.push_back(std::move(left));
      e->args.push_back(parse_and());
      left = std::move(e);
    }
    return left;
  }

  expr_ptr parse_and() {
    expr_ptr left = parse_not();
    while (is_keyword("and")) {
      link(tok().offset);
      auto e = make_expr(expr_kind::and_, tok().offset);
      ++pos_;
      e->args.push_back(std::move(left));
      e->args.push_back(parse_not());
      left = std::move(e);
    }
    return left;
  }

  expr_ptr parse_not() {
    if (is_keyword("not")) {
      const nested guard(*this, tok().offset);
      auto e = make_expr(expr_kind::not_, tok().offset);
      ++pos_;
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  expr_ptr parse_compare() {
    expr_ptr left = parse_math1();
    for (;;) {
      std::string op;
      bool negated = false;
      std::size_t offset = tok().offset;
      if (tok().kind == token_kind::op && (tok().text == "==" || tok().text == "!=" || tok().text == "<" ||
                                           tok().text == "<=" || tok().text == ">" || tok().text == ">=")) {
        op = tok().text;
        ++pos_;
      } else if (is_keyword("in")) {
        op = "in";
        ++pos_;
      } else if (is_keyword("not") && peek().kind == token_kind::name && peek().text == "in") {
        op = "in";
        negated = true;
        pos_ += 2;
      } else {
        return left;
      }
      link(offset);
      auto e = make_expr(expr_kind::binary, offset);
      e->name = op;
      e->negated = negated;
      e->args.push_back(std::move(left));
      e->args.push_back(parse_math1());
      left = std::move(e);
    }
  }

  expr_ptr parse_binary_level(std::initializer_list<std::string_view> ops, expr_ptr (parser::*next)()) {
    expr_ptr left = (this->*next)();
    for (;;) {
      if (tok().kind != token_kind::op || std::find(ops.begin(), ops.end(), tok().text) == ops.end()) return left;
      link(tok().offset);
      auto e = make_expr(expr_kind::binary, tok().offset);
      e->name = tok().text;
      ++pos_;
      e->args.push_back(std::move(left));
      e->args.push_back((this->*next)());
      left = std::move(e);
    }
  }
  expr_ptr parse_math1() { return parse_binary_level({"+", "-"}, &parser::parse_concat); }
  expr_ptr parse_concat() { return parse_binary_level({"~"}, &parser::parse_math2); }
  expr_ptr parse_math2() { return parse_binary_level({"*", "/", "//", "%"}, &parser::parse_pow); }
  expr_ptr parse_pow() { return parse_binary_level({"**"}, &parser::parse_unary_filtered); }
  expr_ptr parse_unary_filtered() { return parse_unary(true); }

  /// Jinja's precedence: `-x|abs` is `(-x)|abs`; filters apply to the whole unary expression.
  expr_ptr parse_unary(bool with_filters = true) {
    expr_ptr e;
    if (is_op("-") || is_op("+")) {
      const nested guard(*this, tok().offset);
      e = make_expr(is_op("-") ? expr_kind::neg : expr_kind::pos, tok().offset);
      ++pos_;
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_postfix(parse_primary());
    }
    return with_filters ? parse_filters(std::move(e)) : std::move(e);
  }

  expr_ptr parse_primary() {
    const token& t = tok();
    switch (t.kind) {
      case token_kind::string: {
        // Adjacent strings join, as in Jinja.
        std::string s = t.text;
        std::size_t offset = t.offset;
        ++pos_;
        while (tok().kind == token_kind::string) s += tokens_[pos_++].text;
        auto e = make_expr(expr_kind::literal, offset);
        e->literal = value::of_string(std::move(s));
        return e;
      }
      case token_kind::integer: {
        auto e = make_expr(expr_kind::literal, t.offset);
        long long v = 0;
        auto [p, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (ec != std::errc{}) fail_at(text_, t.offset, "integer '" + t.text + "' is too large");
        e->literal = value::of_int(v);
        ++pos_;
        return e;
      }
      case token_kind::number: {
        auto e = make_expr(expr_kind::literal, t.offset);
        e->literal = value::of_float(std::strtod(t.text.c_str(), nullptr));  // 1e999 is inf, as in Python (stod throws)
        ++pos_;
        return e;
      }
      case token_kind::name: return parse_name();
      case token_kind::op:
        if (t.text == "(") {
          ++pos_;
          expr_ptr e = parse_expression();
          if (is_op(",")) {  // a tuple: a list here
            auto l = make_expr(expr_kind::list, e->offset);
            l->args.push_back(std::move(e));
            while (accept(",") && !is_op(")")) l->args.push_back(parse_expression());
            e = std::move(l);
          }
          expect(")", "to close '('");
          return e;
        }
        if (t.text == "[") {
          auto l = make_expr(expr_kind::list, t.offset);
          ++pos_;
          while (!is_op("]")) {
            l->args.push_back(parse_expression());
            if (!accept(",")) break;
          }
          expect("]", "to close '['");
          return l;
        }
        if (t.text == "{") {
          auto d = make_expr(expr_kind::dict, t.offset);
          ++pos_;
          while (!is_op("}")) {
            d->args.push_back(parse_expression());
            expect(":", "after a dict key");
            d->args.push_back(parse_expression());
            if (!accept(",")) break;
          }
          expect("}", "to close '{'");
          return d;
        }
        if (t.text == "|") fail_at(text_, t.offset, "expected a value before '|'");
        break;
      case token_kind::end: fail_at(text_, t.offset, "expected a value but the expression ended");
    }
    fail_at(text_, t.offset, "unexpected '" + t.text + "' in template expression");
  }

  bool is_local(const std::string& name) const {
    return std::any_of(scopes_.begin(), scopes_.end(), [&](const auto& s) { return s.contains(name); });
  }

  expr_ptr parse_name() {
    const token& t = tok();
    ++pos_;
    static constexpr std::array<std::pair<std::string_view, int>, 6> constants{
        {{"true", 1}, {"True", 1}, {"false", 0}, {"False", 0}, {"none", -1}, {"None", -1}}};
    for (const auto& [word, v] : constants)
      if (t.text == word && !is_local(t.text)) {
        auto e = make_expr(expr_kind::literal, t.offset);
        e->literal = v < 0 ? value{} : value::boolean(v == 1);
        return e;
      }
    if (!is_local(t.text)) {
      for (const auto& u : unsupported)
        if (u.name == t.text)
          fail_at(text_, t.offset, "template variable '" + t.text + "' is not supported by dagrun" +
                                       (u.hint.empty() ? std::string{} : " (" + std::string(u.hint) + ")"));
      if (!contains(root_names, t.text) || (t.text == "loop" && !is_local("loop"))) {
        std::vector<std::string> names;
        for (std::string_view n : root_names)
          if (n != "loop" || is_local("loop")) names.emplace_back(n);
        for (const auto& s : scopes_) names.insert(names.end(), s.begin(), s.end());
        fail_at(text_, t.offset, "unknown template variable '" + t.text + "'" + did_you_mean(t.text, names));
      }
    }
    auto e = make_expr(expr_kind::name, t.offset);
    e->name = t.text;
    return e;
  }

  /// Attribute access, item access and calls after a primary; a chain rooted at one of Airflow's
  /// namespaces is checked as it grows.
  expr_ptr parse_postfix(expr_ptr e) {
    for (;;) {
      if (is_op(".") || is_op("[") || is_op("(")) link(tok().offset);
      if (is_op(".")) {
        ++pos_;
        if (tok().kind != token_kind::name && tok().kind != token_kind::integer)
          fail_at(text_, tok().offset, "expected an attribute name after '.'" + describe_found());
        auto a = make_expr(expr_kind::attr, tok().offset);
        a->name = tok().text;
        ++pos_;
        a->args.push_back(std::move(e));
        e = std::move(a);
        check_chain(*e);
      } else if (is_op("[")) {
        auto a = make_expr(expr_kind::item, tok().offset);
        ++pos_;
        a->args.push_back(std::move(e));
        a->args.push_back(parse_expression());
        expect("]", "to close '['");
        e = std::move(a);
        check_chain(*e);
      } else if (is_op("(")) {
        auto c = make_expr(expr_kind::call, tok().offset);
        ++pos_;
        c->args.push_back(std::move(e));
        parse_arguments(*c);
        e = std::move(c);
        check_call(*e);
      } else {
        check_complete(*e);
        return e;
      }
    }
  }

  void parse_arguments(expr& call) {
    while (!is_op(")")) {
      if (tok().kind == token_kind::name && peek().kind == token_kind::op && peek().text == "=") {
        std::string key = tok().text;
        pos_ += 2;
        call.kwargs.emplace_back(key, parse_expression());
      } else {
        if (!call.kwargs.empty()) fail_at(text_, tok().offset, "a positional argument follows a keyword argument");
        call.args.push_back(parse_expression());
      }
      if (!accept(",")) break;
    }
    expect(")", "to close the argument list");
  }

  /// The chain under `e` as (root name, [(attribute or constant item, offset)...]), or no root
  /// when it does not start at a global name.
  struct chain {
    std::string root;
    std::size_t root_offset = 0;
    std::vector<std::pair<std::string, std::size_t>> links;  // attribute names or constant string items
    bool constant = true;                                    // every link is known
  };

  std::optional<chain> chain_of(const expr& e) const {
    std::vector<const expr*> path;
    const expr* at = &e;
    while (at->kind == expr_kind::attr || at->kind == expr_kind::item) {
      path.push_back(at);
      at = at->args[0].get();
    }
    if (at->kind != expr_kind::name || is_local(at->name)) return std::nullopt;
    chain c{at->name, at->offset, {}, true};
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
      const expr& link = **it;
      if (link.kind == expr_kind::attr) {
        c.links.emplace_back(link.name, link.offset);
      } else if (link.args[1]->kind == expr_kind::literal && link.args[1]->literal.is(value_kind::string)) {
        c.links.emplace_back(link.args[1]->literal.text, link.args[1]->offset);
      } else {
        c.constant = false;
        break;
      }
    }
    return c;
  }

  template <class Range>
  void require_member(const std::string& owner, const std::pair<std::string, std::size_t>& link, const Range& names,
                      std::string_view what) {
    if (contains(names, link.first)) return;
    fail_at(text_, link.second, "unknown " + std::string(what) + " '" + link.first + "'" + did_you_mean(link.first, names) +
                                    " (" + owner + " has " + listing(names) + ")");
  }

  void add_ref(template_ref_kind kind, const std::string& name, std::size_t offset) {
    auto [line, column] = cursor_.at(offset);
    refs_.push_back({kind, name, line, column, false});
  }

  /// Checks a growing chain's newest link against the namespace it belongs to.
  void check_chain(const expr& e) {
    auto c = chain_of(e);
    if (!c || c->links.empty()) return;
    const auto& links = c->links;
    const std::size_t depth = links.size();
    const auto& last = links.back();
    if (!c->constant) return;
    const std::string& root = c->root;
    if (root == "params" && depth == 1) add_ref(template_ref_kind::param, last.first, last.second);
    else if (root == "var" && depth == 1) require_member("var", last, var_accessors, "variable accessor 'var." + last.first + "'; use 'var.value.NAME' or 'var.json.NAME':");
    else if (root == "var" && depth == 2) add_ref(template_ref_kind::variable, last.first, last.second);
    else if (root == "conn" && depth == 1) add_ref(template_ref_kind::connection, last.first, last.second);
    else if (root == "conn" && depth == 2) require_member("a connection", last, connection_attributes, "connection attribute");
    else if ((root == "ti" || root == "task_instance") && depth == 1) require_member("ti", last, ti_attributes, "ti attribute");
    else if (root == "macros" && depth == 1) require_member("macros", last, macro_names, "macro");
    else if (root == "dag_run" && depth == 1) require_member("dag_run", last, dag_run_attributes, "dag_run attribute");
    else if (root == "task" && depth == 1) require_member("task", last, task_attributes, "task attribute");
  }

  /// A chain that ends here must be a value, not a namespace half-way (`conn.db`, `var.value`).
  void check_complete(const expr& e) {
    auto c = chain_of(e);
    if (!c || !c->constant) return;
    const std::size_t depth = c->links.size();
    std::string path = c->root;
    for (const auto& l : c->links) path += "." + l.first;
    if (c->root == "var" && depth < 2) fail_at(text_, c->root_offset, "expected 'var.value.NAME' or 'var.json.NAME'");
    if (c->root == "conn" && depth < 2)
      fail_at(text_, c->root_offset, "expected '" + (depth == 0 ? std::string("conn.ID") : path) + ".ATTRIBUTE' (" +
                                         listing(connection_attributes) + ")");
    if ((c->root == "ti" || c->root == "task_instance") && depth == 0)
      fail_at(text_, c->root_offset, "expected 'ti.xcom_pull(task_ids='TASK')' or 'ti.try_number'");
    if ((c->root == "ti" || c->root == "task_instance") && depth == 1 && c->links[0].first == "xcom_pull")
      fail_at(text_, c->links[0].second, "bad call: xcom_pull needs a task id, as ti.xcom_pull('TASK') or ti.xcom_pull(task_ids='TASK')");
    if (c->root == "macros" && depth == 0) fail_at(text_, c->root_offset, "expected 'macros.NAME' (" + listing(macro_names) + ")");
  }

  void check_call(const expr& call) {
    const expr& callee = *call.args[0];
    auto c = chain_of(callee);
    if (!c || !c->constant) return;
    if ((c->root == "ti" || c->root == "task_instance") && c->links.size() == 1 && c->links[0].first == "xcom_pull")
      check_xcom_pull(call);
    if (c->root == "macros" && c->links.size() == 1) {
      const std::string& m = c->links[0].first;
      std::size_t given = call.args.size() - 1;
      std::size_t want = m == "ds_add" ? 2 : m == "ds_format" ? 3 : 0;
      if (want != 0 && (given != want || !call.kwargs.empty()))
        fail_at(text_, call.offset, "macros." + m + " takes " + std::to_string(want) + " arguments (" +
                                        (m == "ds_add" ? "ds, days" : "ds, input_format, output_format") + "), " +
                                        std::to_string(given + call.kwargs.size()) + " given");
    }
  }

  void check_xcom_pull(const expr& call) {
    const std::string message =
        "bad call: xcom_pull needs a task id, as ti.xcom_pull('TASK') or ti.xcom_pull(task_ids='TASK')";
    const expr* ids = nullptr;
    if (call.args.size() > 2) fail_at(text_, call.args[2]->offset, message);
    if (call.args.size() == 2) ids = call.args[1].get();
    for (const auto& [key, arg] : call.kwargs) {
      if (key == "task_ids" && ids == nullptr) ids = arg.get();
      else if (key != "key" && key != "default")
        fail_at(text_, arg->offset, "unknown xcom_pull argument '" + key + "'" +
                                        did_you_mean(key, std::array<std::string_view, 3>{"task_ids", "key", "default"}) +
                                        " (task_ids, key, default)");
    }
    if (ids == nullptr) fail_at(text_, call.offset + 1, message);
    auto add_literal = [&](const expr& id) {
      if (id.kind != expr_kind::literal) return;
      if (!id.literal.is(value_kind::string) || id.literal.text.empty()) fail_at(text_, id.offset, message);
      add_ref(template_ref_kind::xcom_pull, id.literal.text, id.offset);
    };
    if (ids->kind == expr_kind::list)
      for (const auto& id : ids->args) add_literal(*id);
    else
      add_literal(*ids);
  }

  expr_ptr parse_filters(expr_ptr e) {
    for (;;) {
      if (is_op("|") || is_keyword("is")) link(tok().offset);
      if (is_op("|")) {
        ++pos_;
        if (tok().kind != token_kind::name) fail_at(text_, tok().offset, "expected a filter name after '|'" + describe_found());
        auto f = make_expr(expr_kind::filter, tok().offset);
        f->name = tok().text;
        ++pos_;
        const filter_entry* entry = nullptr;
        for (const auto& candidate : filters)
          if (candidate.name == f->name) entry = &candidate;
        if (!entry) {
          std::vector<std::string_view> names;
          for (const auto& candidate : filters) names.push_back(candidate.name);
          fail_at(text_, f->offset, "unknown filter '" + f->name + "'" + did_you_mean(f->name, names));
        }
        f->args.push_back(std::move(e));
        if (accept("(")) parse_arguments(*f);
        std::size_t given = f->args.size() - 1 + f->kwargs.size();
        if (given < entry->min_args || given > entry->max_args)
          fail_at(text_, f->offset, "filter '" + f->name + "' takes " +
                                        (entry->min_args == entry->max_args
                                             ? std::to_string(entry->min_args)
                                             : std::to_string(entry->min_args) + " to " + std::to_string(entry->max_args)) +
                                        " argument" + (entry->max_args == 1 ? "" : "s") + ", " + std::to_string(given) + " given");
        if (f->name == "default" || f->name == "d") mark_optional(*f->args[0]);
        e = std::move(f);
      } else if (is_keyword("is")) {
        auto t = make_expr(expr_kind::test, tok().offset);
        ++pos_;
        if (is_keyword("not")) {
          t->negated = true;
          ++pos_;
        }
        if (tok().kind != token_kind::name) fail_at(text_, tok().offset, "expected a test name after 'is'" + describe_found());
        t->name = tok().text;
        t->offset = tok().offset;
        ++pos_;
        if (!contains(tests, t->name))
          fail_at(text_, t->offset, "unknown test '" + t->name + "'" + did_you_mean(t->name, tests) + " (" + listing(tests) + ")");
        t->args.push_back(std::move(e));
        if (accept("(")) parse_arguments(*t);
        else if (t->name == "divisibleby" && tok().kind != token_kind::end && tok().kind != token_kind::op) t->args.push_back(parse_primary());
        if (t->name == "defined" || t->name == "undefined") mark_optional(*t->args[0]);
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  /// `params.x | default(...)` and `params.x is defined` cope with a missing param.
  void mark_optional(const expr& e) {
    auto c = chain_of(e);
    if (!c || c->root != "params" || c->links.size() != 1) return;
    auto [line, column] = cursor_.at(c->links[0].second);
    for (auto& r : refs_)
      if (r.kind == template_ref_kind::param && r.line == line && r.column == column) r.optional = true;
  }

  std::string_view text_;
  std::vector<template_ref>& refs_;
  position_cursor cursor_;
  std::vector<piece> pieces_;
  std::size_t at_ = 0;
  std::vector<token> tokens_;
  std::size_t pos_ = 0;
  std::size_t tag_offset_ = 0;
  std::size_t open_offset_ = 0;
  std::string open_name_;
  std::vector<std::set<std::string>> scopes_;
  int nesting_ = 0;         // levels open now (nested)
  std::size_t links_ = 0;   // links of the current tag (link)
};

// ---------------------------------------------------------------------------------------------
// Rendering


std::string lower_text(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}
std::string upper_text(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}
std::string strip_text(std::string_view s, std::string_view chars = " \t\n\r\f\v") {
  std::size_t b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return {};
  std::size_t e = s.find_last_not_of(chars);
  return std::string(s.substr(b, e - b + 1));
}
std::string replace_text(std::string s, std::string_view from, std::string_view to, long long count = -1) {
  if (from.empty()) return s;
  std::string out;
  std::size_t at = 0;
  for (std::size_t hit; count != 0 && (hit = s.find(from, at)) != std::string::npos; --count) {
    out.append(s, at, hit - at);
    out += to;
    at = hit + from.size();
    fits(out.size() + s.size() - at);
  }
  out.append(s, at);
  return out;
}

bool equal(const value& a, const value& b) {
  charge(1);
  need(a);
  need(b);
  if (a.numeric() && b.numeric()) return a.as_double() == b.as_double();
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case value_kind::none: return true;
    case value_kind::string: return a.text == b.text;
    case value_kind::datetime:
    case value_kind::timedelta: return a.micros == b.micros;
    case value_kind::list:
      return a.list->size() == b.list->size() && std::equal(a.list->begin(), a.list->end(), b.list->begin(), equal);
    case value_kind::dict: {
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, v] : *a.dict) {
        const auto& key = k;  // clang 14 cannot capture a structured binding in a lambda
        auto it = std::find_if(b.dict->begin(), b.dict->end(), [&](const auto& e) { return e.first == key; });
        if (it == b.dict->end() || !equal(v, it->second)) return false;
      }
      return true;
    }
    default: return a.text == b.text;
  }
}

/// -1, 0 or 1; fails for values Python cannot order.
int compare(const value& a, const value& b) {
  charge(1);
  need(a);
  need(b);
  if (a.numeric() && b.numeric()) return a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double() ? 1 : 0;
  if (a.kind == b.kind) {
    if (a.is(value_kind::string)) return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
    if (a.is(value_kind::datetime) || a.is(value_kind::timedelta)) return a.micros < b.micros ? -1 : a.micros > b.micros ? 1 : 0;
    if (a.is(value_kind::list)) {
      for (std::size_t i = 0; i < std::min(a.list->size(), b.list->size()); ++i)
        if (int c = compare((*a.list)[i], (*b.list)[i]); c != 0) return c;
      return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
    }
  }
  fail("cannot compare " + type_name(a) + " with " + type_name(b));
}

/// The bytes of the character that `lead` starts, as iterating a string counts them.
std::size_t char_length(char lead) {
  const auto byte = static_cast<unsigned char>(lead);
  return byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1;
}

value_list items_of(const value& v) {
  switch (need(v).kind) {
    case value_kind::list: return *v.list;
    case value_kind::dict: {
      value_list keys;
      for (const auto& e : *v.dict) keys.push_back(value::of_string(e.first));
      return keys;
    }
    case value_kind::string: {
      value_list chars;
      for (std::size_t i = 0; i < v.text.size();) {
        fits_items(chars.size() + 1);
        const std::size_t len = char_length(v.text[i]);
        chars.push_back(value::of_string(v.text.substr(i, len)));
        i += len;
      }
      return chars;
    }
    default: fail("'" + type_name(v) + "' object is not iterable");
  }
}

long long int_of(const value& v, std::string_view what) {
  if (v.is(value_kind::integer) || v.is(value_kind::boolean)) return v.as_int();
  fail(std::string(what) + " must be an integer, not " + type_name(v));
}

/// -x, where the negation of the smallest integer (which has no positive counterpart in 64 bits)
/// is an overflow error rather than undefined behaviour.
long long negative_of(long long x) {
  if (x == std::numeric_limits<long long>::min()) fail("integer overflow in '-'");
  return -x;
}

/// A float's integer part (Python's int(x)); a float beyond the 64-bit range (inf, nan, 1e300) is
/// an error rather than undefined behaviour.
long long truncated(double d) {
  constexpr double bound = 9223372036854775808.0;  // 2^63, exactly
  if (!(d >= -bound && d < bound)) fail("cannot convert float " + float_text(d) + " to integer");
  return static_cast<long long>(d);
}

std::string string_of(const value& v, std::string_view what) {
  if (v.is(value_kind::string)) return v.text;
  fail(std::string(what) + " must be a string, not " + type_name(need(v)));
}

/// Positional-or-keyword arguments of a filter or call, evaluated.
struct arguments {
  std::vector<value> positional;
  std::vector<std::pair<std::string, value>> named;

  /// Argument `index` (or named `name`), or nullopt when not given.
  std::optional<value> get(std::size_t index, std::string_view name) const {
    if (index < positional.size()) return positional[index];
    for (const auto& [k, v] : named)
      if (k == name) return v;
    return std::nullopt;
  }
  value get_or(std::size_t index, std::string_view name, value fallback) const {
    auto v = get(index, name);
    return v ? *v : fallback;
  }
};

class renderer {
public:
  renderer(const template_context& context, std::string& out) : context_(context), out_(out), outer_steps_(render_steps) {
    scopes_.emplace_back();
    render_steps = &steps_;
  }
  ~renderer() { render_steps = outer_steps_; }
  renderer(const renderer&) = delete;
  renderer& operator=(const renderer&) = delete;

  void run(const std::vector<node>& nodes) {
    for (const auto& n : nodes) run(n);
  }

private:
  /// Counts one evaluation or loop iteration against max_steps: nested loops over range() could
  /// otherwise run for hours without printing anything.
  void step() { charge(1); }

  void run(const node& n) {
    switch (n.kind) {
      case node_kind::text:
        out_ += n.text;
        fits(out_.size());
        return;
      case node_kind::output:
        out_ += str(eval(*n.value));
        fits(out_.size());
        return;
      case node_kind::if_:
        for (const auto& [condition, body] : n.branches)
          if (!condition || truthy(eval(*condition))) {
            run(body);
            return;
          }
        return;
      case node_kind::for_: {
        value_list items = items_of(eval(*n.value));
        if (items.empty()) {
          run(n.else_body);
          return;
        }
        scopes_.emplace_back();
        const auto length = static_cast<long long>(items.size());
        for (long long i = 0; i < length; ++i) {
          step();
          const value& item = items[static_cast<std::size_t>(i)];
          bind(n.targets, item);
          scopes_.back()["loop"] = value::of_dict({{"index", value::of_int(i + 1)},
                                                    {"index0", value::of_int(i)},
                                                    {"revindex", value::of_int(length - i)},
                                                    {"revindex0", value::of_int(length - i - 1)},
                                                    {"first", value::boolean(i == 0)},
                                                    {"last", value::boolean(i == length - 1)},
                                                    {"length", value::of_int(length)}});
          run(n.body);
        }
        scopes_.pop_back();
        return;
      }
      case node_kind::set: bind(n.targets, eval(*n.value)); return;
      case node_kind::set_block: {
        std::string captured;
        std::swap(captured, out_);
        run(n.body);
        std::swap(captured, out_);
        scopes_.back()[n.targets[0]] = value::of_string(std::move(captured));
        return;
      }
    }
  }

  void bind(const std::vector<std::string>& targets, const value& v) {
    if (targets.size() == 1) {
      scopes_.back()[targets[0]] = v;
      return;
    }
    value_list parts = items_of(v);
    if (parts.size() != targets.size())
      fail("cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(targets.size()) + " names");
    for (std::size_t i = 0; i < targets.size(); ++i) scopes_.back()[targets[i]] = parts[i];
  }

  // --- expressions

  value eval(const expr& e) {
    step();
    switch (e.kind) {
      case expr_kind::literal: return e.literal;
      case expr_kind::name: return lookup(e.name);
      case expr_kind::attr: return attribute(eval(*e.args[0]), e.name);
      case expr_kind::item: return item(eval(*e.args[0]), eval(*e.args[1]));
      case expr_kind::call: return call(eval(*e.args[0]), evaluate_arguments(e));
      case expr_kind::filter: return filter(e.name, eval(*e.args[0]), evaluate_arguments(e));
      case expr_kind::test: {
        bool result = test(e.name, eval(*e.args[0]), evaluate_arguments(e));
        return value::boolean(result != e.negated);
      }
      case expr_kind::not_: return value::boolean(!truthy(eval(*e.args[0])));
      case expr_kind::neg:
      case expr_kind::pos: {
        value v = need(eval(*e.args[0]));
        if (e.kind == expr_kind::pos) return v;
        if (v.is(value_kind::integer) || v.is(value_kind::boolean)) return value::of_int(negative_of(v.as_int()));
        if (v.is(value_kind::number)) return value::of_float(-v.number);
        if (v.is(value_kind::timedelta)) return value::timedelta(-v.micros);
        fail("bad operand type for unary -: '" + type_name(v) + "'");
      }
      case expr_kind::and_: {
        value left = eval(*e.args[0]);
        return truthy(left) ? eval(*e.args[1]) : left;
      }
      case expr_kind::or_: {
        value left = eval(*e.args[0]);
        return truthy(left) ? left : eval(*e.args[1]);
      }
      case expr_kind::cond:
        if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
        return e.args.size() > 2 ? eval(*e.args[2]) : value::undefined("the 'if' expression has no 'else'");
      case expr_kind::list: {
        value_list l;
        for (const auto& item_expr : e.args) l.push_back(eval(*item_expr));
        return value::of_list(std::move(l));
      }
      case expr_kind::dict: {
        value_dict d;
        for (std::size_t i = 0; i + 1 < e.args.size(); i += 2) {
          value key = need(eval(*e.args[i]));
          std::string k = key.is(value_kind::string) ? key.text : str(key);
          auto it = std::find_if(d.begin(), d.end(), [&](const auto& entry) { return entry.first == k; });
          if (it != d.end()) it->second = eval(*e.args[i + 1]);
          else d.emplace_back(k, eval(*e.args[i + 1]));
        }
        return value::of_dict(std::move(d));
      }
      case expr_kind::binary: return binary(e.name, eval(*e.args[0]), eval(*e.args[1]), e.negated);
    }
    return {};
  }

  arguments evaluate_arguments(const expr& e) {
    arguments out;
    for (std::size_t i = 1; i < e.args.size(); ++i) out.positional.push_back(eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) out.named.emplace_back(k, eval(*v));
    return out;
  }

  value binary(const std::string& op, const value& a, const value& b, bool negated) {
    if (op == "==") return value::boolean(equal(a, b));
    if (op == "!=") return value::boolean(!equal(a, b));
    if (op == "<") return value::boolean(compare(a, b) < 0);
    if (op == "<=") return value::boolean(compare(a, b) <= 0);
    if (op == ">") return value::boolean(compare(a, b) > 0);
    if (op == ">=") return value::boolean(compare(a, b) >= 0);
    if (op == "in") {
      need(a);
      bool found = false;
      if (need(b).is(value_kind::string)) {
        found = b.text.find(string_of(a, "the left side of 'in' a string")) != std::string::npos;
      } else if (b.is(value_kind::dict)) {
        found = a.is(value_kind::string) &&
                std::any_of(b.dict->begin(), b.dict->end(), [&](const auto& e) { return e.first == a.text; });
      } else {
        value_list items = items_of(b);
        found = std::any_of(items.begin(), items.end(), [&](const value& v) { return equal(v, a); });
      }
      return value::boolean(found != negated);
    }
    if (op == "~") {
      std::string joined = str(a);
      const std::string right = str(b);
      fits(joined.size() + right.size());
      return value::of_string(joined += right);
    }
    need(a);
    need(b);
    using vk = value_kind;
    if (op == "+") {
      if (a.is(vk::string) && b.is(vk::string)) {
        fits(a.text.size() + b.text.size());
        return value::of_string(a.text + b.text);
      }
      if (a.is(vk::list) && b.is(vk::list)) {
        fits_items(a.list->size() + b.list->size());
        value_list l = *a.list;
        l.insert(l.end(), b.list->begin(), b.list->end());
        return value::of_list(std::move(l));
      }
      if (a.is(vk::datetime) && b.is(vk::timedelta)) return value::datetime(a.micros + b.micros, a.flag);
      if (a.is(vk::timedelta) && b.is(vk::datetime)) return value::datetime(a.micros + b.micros, b.flag);
      if (a.is(vk::timedelta) && b.is(vk::timedelta)) return value::timedelta(a.micros + b.micros);
    }
    if (op == "-") {
      if (a.is(vk::datetime) && b.is(vk::timedelta)) return value::datetime(a.micros - b.micros, a.flag);
      if (a.is(vk::datetime) && b.is(vk::datetime)) {
        if (a.flag != b.flag) fail("cannot subtract offset-naive and offset-aware datetimes");
        return value::timedelta(a.micros - b.micros);
      }
      if (a.is(vk::timedelta) && b.is(vk::timedelta)) return value::timedelta(a.micros - b.micros);
    }
    if (op == "*") {
      if (a.is(vk::string) && b.is(vk::integer)) {
        if (b.integer <= 0 || a.text.empty()) return value::of_string("");
        fits(static_cast<std::size_t>(std::min<long long>(b.integer, max_text + 1)) * a.text.size());
        std::string out;
        for (long long i = 0; i < b.integer; ++i) out += a.text;
        return value::of_string(std::move(out));
      }
      if (a.is(vk::timedelta) && b.is(vk::integer)) return value::timedelta(a.micros * b.integer);
      if (a.is(vk::integer) && b.is(vk::timedelta)) return value::timedelta(b.micros * a.integer);
    }
    if (op == "/" && a.is(vk::timedelta) && b.is(vk::timedelta)) {
      if (b.micros.count() == 0) fail("division by zero");
      return value::of_float(static_cast<double>(a.micros.count()) / static_cast<double>(b.micros.count()));
    }
    if (op == "%" && a.is(vk::string)) {  // `'%s' % x`, the printf form Airflow DAGs use
      std::string out;
      value_list args = b.is(vk::list) ? *b.list : value_list{b};
      std::size_t next = 0;
      for (std::size_t i = 0; i < a.text.size(); ++i) {
        if (a.text[i] == '%' && i + 1 < a.text.size()) {
          char d = a.text[++i];
          if (d == '%') { out += '%'; continue; }
          if (next >= args.size()) fail("not enough arguments for format string");
          fits(out.size());
          const value& arg = args[next++];
          if (d == 's') out += str(arg);
          else if (d == 'd') out += std::to_string(arg.is(value_kind::number) ? truncated(arg.number) : int_of(arg, "%d"));
          else if (d == 'r') out += repr(arg);
          else fail("unsupported format character '" + std::string(1, d) + "'");
        } else {
          out += a.text[i];
        }
      }
      return value::of_string(std::move(out));
    }
    if (a.numeric() && b.numeric()) {
      bool ints = !a.is(vk::number) && !b.is(vk::number);
      if (ints) {
        long long x = a.as_int(), y = b.as_int();
        long long r = 0;
        // Python's integers have no bound; ours have 64 bits, and going past them is an error.
        const auto checked = [&](bool overflowed) {
          if (overflowed) fail("integer overflow in '" + op + "'");
          return value::of_int(r);
        };
        if (op == "+") return checked(__builtin_add_overflow(x, y, &r));
        if (op == "-") return checked(__builtin_sub_overflow(x, y, &r));
        if (op == "*") return checked(__builtin_mul_overflow(x, y, &r));
        if (op == "**") {
          if (y < 0) return value::of_float(std::pow(static_cast<double>(x), static_cast<double>(y)));
          r = 1;
          long long base = x;
          bool overflowed = false;
          for (long long e = y; e > 0 && !overflowed; e >>= 1) {  // by squaring: a huge exponent ends at once
            if (e & 1) overflowed = __builtin_mul_overflow(r, base, &r);
            if (e > 1 && !overflowed) overflowed = __builtin_mul_overflow(base, base, &base);
          }
          return checked(overflowed);
        }
        if (y == 0 && (op == "/" || op == "//" || op == "%")) fail("division by zero");
        if (op == "/") return value::of_float(static_cast<double>(x) / static_cast<double>(y));
        // The smallest integer divided by -1 does not fit (the CPU traps on it: SIGFPE).
        if (y == -1) return op == "//" ? value::of_int(negative_of(x)) : value::of_int(0);
        long long q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0))) --q;  // Python floors
        if (op == "//") return value::of_int(q);
        if (op == "%") return value::of_int(x - q * y);
      }
      double x = a.as_double(), y = b.as_double();
      if (op == "+") return value::of_float(x + y);
      if (op == "-") return value::of_float(x - y);
      if (op == "*") return value::of_float(x * y);
      if (op == "**") return value::of_float(std::pow(x, y));
      if (y == 0) fail("division by zero");
      if (op == "/") return value::of_float(x / y);
      if (op == "//") return value::of_float(std::floor(x / y));
      if (op == "%") return value::of_float(x - std::floor(x / y) * y);
    }
    fail("unsupported operand types for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
  }

  // --- Airflow's context

  static value optional_date(const std::optional<time_point>& t) { return t ? value::of_time(*t) : value{}; }

  value ds_or_none(const std::optional<time_point>& t, const char* format) {
    if (!t) return value{};
    return value::of_string(strftime(value::of_time(*t), format));
  }

  value params_value() {
    if (params_) return *params_;  // parsed once a render: a loop reading params.x parses nothing again
    value_dict d;
    for (const auto& [k, v] : context_.params) {
      if (context_.typed_params.contains(k)) d.emplace_back(k, parse_json(v, "param '" + k + "'"));
      else d.emplace_back(k, value::of_string(v));
    }
    value out = value::of_dict(std::move(d));
    out.text = "param";  // names what a missing key is, for the error
    params_ = out;
    return out;
  }

  value lookup(const std::string& name) {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
      if (auto found = it->find(name); found != it->end()) return found->second;
    const value logical = value::of_time(context_.logical_date);
    const auto day = std::chrono::days{1};
    if (name == "ds") return value::of_string(ds_of(logical));
    if (name == "ds_nodash") return value::of_string(strftime(logical, "%Y%m%d"));
    if (name == "ts") return value::of_string(iso(logical));
    if (name == "ts_nodash") return value::of_string(strftime(logical, "%Y%m%dT%H%M%S"));
    if (name == "ts_nodash_with_tz") return value::of_string(replace_text(replace_text(iso(logical), "-", ""), ":", ""));
    if (name == "logical_date") return logical;
    if (name == "data_interval_start") return value::of_time(context_.data_interval_start);
    if (name == "data_interval_end") return value::of_time(context_.data_interval_end);
    if (name == "run_id") return value::of_string(context_.run_id);
    if (name == "dag_id") return value::of_string(context_.dag_id);
    if (name == "task_id") return value::of_string(context_.task_id);
    if (name == "try_number") return value::of_int(context_.try_number);
    if (name == "params") return params_value();
    if (name == "prev_ds") return ds_or_none(context_.prev_logical_date, "%Y-%m-%d");
    if (name == "prev_ds_nodash") return ds_or_none(context_.prev_logical_date, "%Y%m%d");
    if (name == "next_ds") return ds_or_none(context_.next_logical_date, "%Y-%m-%d");
    if (name == "next_ds_nodash") return ds_or_none(context_.next_logical_date, "%Y%m%d");
    if (name == "yesterday_ds") return ds_or_none(context_.logical_date - day, "%Y-%m-%d");
    if (name == "yesterday_ds_nodash") return ds_or_none(context_.logical_date - day, "%Y%m%d");
    if (name == "tomorrow_ds") return ds_or_none(context_.logical_date + day, "%Y-%m-%d");
    if (name == "tomorrow_ds_nodash") return ds_or_none(context_.logical_date + day, "%Y%m%d");
    if (name == "prev_data_interval_start_success") return optional_date(context_.prev_data_interval_start_success);
    if (name == "prev_data_interval_end_success") return optional_date(context_.prev_data_interval_end_success);
    if (name == "prev_start_date_success") return optional_date(context_.prev_start_date_success);
    if (name == "triggering_dataset_events")
      return parse_json(context_.triggering_dataset_events, "the run's triggering dataset events");
    if (name == "dag_run") {
      const std::string type = !context_.run_type.empty()                        ? context_.run_type
                               : context_.run_id.starts_with("manual__")            ? "manual"
                               : context_.run_id.starts_with("backfill__")          ? "backfill"
                               : context_.run_id.starts_with("dataset_triggered__") ? "dataset_triggered"
                                                                                    : "scheduled";
      if (!conf_) conf_ = parse_json(context_.conf, "the run's conf");  // once a render, as params
      return value::of_dict({{"conf", *conf_},
                             {"run_id", value::of_string(context_.run_id)},
                             {"dag_id", value::of_string(context_.dag_id)},
                             {"logical_date", logical},
                             {"execution_date", logical},
                             {"data_interval_start", value::of_time(context_.data_interval_start)},
                             {"data_interval_end", value::of_time(context_.data_interval_end)},
                             {"run_type", value::of_string(type)},
                             {"external_trigger", value::boolean(type == "manual")}});
    }
    if (name == "task")
      return value::of_dict({{"owner", value::of_string(context_.owner)},
                             {"task_id", value::of_string(context_.task_id)},
                             {"dag_id", value::of_string(context_.dag_id)}});
    if (name == "task_instance") return value::object("ti");
    // var, conn, ti, macros, range: namespaces and functions resolved by attribute() and call().
    return value::object(name);
  }

  value attribute(const value& self, const std::string& name) {
    need(self);
    using vk = value_kind;
    if (self.is(vk::object)) {
      const std::string& ns = self.text;
      if (ns == "var") return value::object("var." + name);
      if (ns == "var.value" || ns == "var.json") {
        std::optional<std::string> v;
        if (context_.variable) v = context_.variable(name);
        if (!v) fail("variable '" + name + "' is not set");
        if (context_.mask_secret && !v->empty() && looks_secret(name)) context_.mask_secret(*v);
        return ns == "var.json" ? parse_json(*v, "variable '" + name + "'") : value::of_string(*v);
      }
      if (ns == "conn") return connection(name);
      if (ns == "ti") {
        if (name == "try_number") return value::of_int(context_.try_number);
        if (name == "max_tries") return value::of_int(context_.try_number);
        if (name == "map_index") return value::of_int(context_.map_index);
        if (name == "task_id") return value::of_string(context_.task_id);
        if (name == "dag_id") return value::of_string(context_.dag_id);
        if (name == "run_id") return value::of_string(context_.run_id);
        return value::method(self, name);
      }
      if (ns == "macros") return name == "datetime" || name == "timedelta" ? value::object(name) : value::method(self, name);
      if (ns == "datetime" && (name == "strptime" || name == "utcnow" || name == "now" || name == "fromisoformat"))
        return value::method(self, name);
      fail("'" + ns + "' has no attribute '" + name + "'");
    }
    if (self.is(vk::dict)) {
      for (const auto& [k, v] : *self.dict)
        if (k == name) return v;
      static constexpr std::array<std::string_view, 4> dict_methods{"get", "keys", "values", "items"};
      if (contains(dict_methods, name)) return value::method(self, name);
      if (!self.text.empty()) return value::undefined(self.text + " '" + name + "' is not set");
      return value::undefined("'dict object' has no attribute '" + name + "'");
    }
    if (self.is(vk::datetime)) {
      civil c = split(self.micros);
      if (name == "year") return value::of_int(c.year);
      if (name == "month") return value::of_int(c.month);
      if (name == "day") return value::of_int(c.day);
      if (name == "hour") return value::of_int(c.hour);
      if (name == "minute") return value::of_int(c.minute);
      if (name == "second") return value::of_int(c.second);
      if (name == "microsecond") return value::of_int(c.micro);
      static constexpr std::array<std::string_view, 6> dt_methods{"strftime", "isoformat", "date", "replace", "weekday", "timestamp"};
      if (contains(dt_methods, name)) return value::method(self, name);
    }
    if (self.is(vk::timedelta)) {
      long long total = self.micros.count();
      long long day_us = 86400LL * 1000000;
      long long d = total >= 0 ? total / day_us : -((-total + day_us - 1) / day_us);
      if (name == "days") return value::of_int(d);
      if (name == "seconds") return value::of_int((total - d * day_us) / 1000000);
      if (name == "microseconds") return value::of_int((total - d * day_us) % 1000000);
      if (name == "total_seconds") return value::method(self, name);
    }
    if (self.is(vk::string)) {
      static constexpr std::array<std::string_view, 13> string_methods{"upper", "lower", "strip", "lstrip", "rstrip", "replace", "split",
                                                                       "startswith", "endswith", "title", "capitalize", "join", "format"};
      if (contains(string_methods, name)) return value::method(self, name);
    }
    return value::undefined("'" + type_name(self) + "' object has no attribute '" + name + "'");
  }

  value item(const value& self, const value& key) {
    need(self);
    need(key);
    if (self.is(value_kind::dict) || self.is(value_kind::object)) {
      if (!key.is(value_kind::string)) return value::undefined("dict has no key " + repr(key));
      if (self.is(value_kind::dict))
        for (const auto& [k, v] : *self.dict)
          if (k == key.text) return v;
      if (self.is(value_kind::object)) return attribute(self, key.text);
      if (!self.text.empty()) return value::undefined(self.text + " '" + key.text + "' is not set");
      return value::undefined("'dict object' has no key " + repr(key));
    }
    if (self.is(value_kind::list) || self.is(value_kind::string)) {
      value_list items = self.is(value_kind::list) ? *self.list : items_of(self);
      auto n = static_cast<long long>(items.size());
      long long i = int_of(key, "an index");
      if (i < 0) i += n;
      if (i < 0 || i >= n) return value::undefined(type_name(self) + " index " + std::to_string(int_of(key, "")) + " out of range");
      return items[static_cast<std::size_t>(i)];
    }
    return attribute(self, key.is(value_kind::string) ? key.text : str(key));
  }

  value connection(const std::string& id) {
    for (const auto& [name, conn] : connections_)
      if (name == id) return conn;
    std::optional<dag::connection> found;
    if (context_.connection) found = context_.connection(id);
    if (!found) fail("connection '" + id + "' is not defined");
    if (context_.mask_secret && !found->password.empty()) context_.mask_secret(found->password);
    // Airflow's extra_dejson: the extra JSON object (empty when none); its secret-looking values
    // are masked like the password.
    value extra_dejson = value::of_dict({});
    if (!found->extra.empty()) {
      const auto j = nlohmann::json::parse(found->extra, nullptr, false);
      if (!j.is_object()) fail("connection '" + id + "': extra is not a JSON object");
      extra_dejson = from_json(j);
      if (context_.mask_secret)
        for (const auto& [name, item] : j.items())
          if (looks_secret(name)) context_.mask_secret(item.is_string() ? item.get<std::string>() : item.dump());
    }
    value c = value::of_dict({{"conn_id", value::of_string(found->conn_id)},
                              {"conn_type", value::of_string(found->conn_type)},
                              {"host", value::of_string(found->host)},
                              {"port", found->port ? value::of_int(*found->port) : value::of_string("")},
                              {"login", value::of_string(found->login)},
                              {"password", value::of_string(found->password)},
                              {"schema", value::of_string(found->schema)},
                              {"description", value::of_string("")},
                              {"extra", value::of_string(found->extra)},
                              {"extra_dejson", extra_dejson}});
    connections_.emplace_back(id, c);
    return c;
  }

  value xcom_pull(const arguments& args) {
    auto ids_arg = args.get(0, "task_ids");
    if (!ids_arg) fail("xcom_pull needs task_ids");
    value ids = need(*ids_arg);
    std::string key = args.get(99, "key") ? string_of(*args.get(99, "key"), "key") : "return_value";
    auto default_value = args.get(99, "default");
    auto pull = [&](const value& id) -> std::optional<value> {
      std::string task = string_of(id, "task_ids");
      std::optional<std::string> v;
      if (context_.xcom_pull) v = context_.xcom_pull(task, key);
      if (!v) return std::nullopt;
      return value::of_string(*v);
    };
    if (ids.is(value_kind::list)) {
      value_list out;
      for (const auto& id : *ids.list)
        if (auto v = pull(id)) out.push_back(*v);
      return value::of_list(std::move(out));
    }
    if (auto v = pull(ids)) return *v;
    if (default_value) return *default_value;
    fail("no XCom from task '" + ids.text + "'" + (key == "return_value" ? std::string{} : " under key '" + key + "'") + " in this run");
  }

  static std::chrono::microseconds timedelta_of(const arguments& args) {
    static constexpr std::array<std::pair<std::string_view, long long>, 7> units{
        {{"days", 86400000000LL}, {"seconds", 1000000LL}, {"microseconds", 1LL}, {"milliseconds", 1000LL},
         {"minutes", 60000000LL}, {"hours", 3600000000LL}, {"weeks", 604800000000LL}}};
    double total = 0;
    for (std::size_t i = 0; i < args.positional.size(); ++i) {
      if (i >= units.size()) fail("timedelta takes at most 7 positional arguments");
      total += need(args.positional[i]).as_double() * static_cast<double>(units[i].second);
    }
    for (const auto& [k, v] : args.named) {
      const auto& name = k;  // clang 14 cannot capture a structured binding in a lambda
      auto it = std::find_if(units.begin(), units.end(), [&](const auto& u) { return u.first == name; });
      if (it == units.end()) fail("timedelta has no argument '" + k + "'");
      if (!need(v).numeric()) fail("timedelta " + k + " must be a number");
      total += v.as_double() * static_cast<double>(it->second);
    }
    return std::chrono::microseconds{std::llround(total)};
  }

  static std::string ds_add(const value& ds, const value& days) {
    value date = strptime(string_of(ds, "ds"), "%Y-%m-%d");
    return ds_of(value::datetime(date.micros + std::chrono::days{int_of(days, "days")}, true));
  }

  value call(const value& callee, const arguments& args) {
    need(callee);
    auto arg = [&](std::size_t i, std::string_view name) {
      auto v = args.get(i, name);
      if (!v) fail("missing argument '" + std::string(name) + "'");
      return need(*v);
    };
    if (callee.is(value_kind::object)) {
      if (callee.text == "timedelta") return value::timedelta(timedelta_of(args));
      if (callee.text == "datetime") {
        return value::datetime(make_date(int_of(arg(0, "year"), "year"), int_of(arg(1, "month"), "month"), int_of(arg(2, "day"), "day"),
                                         int_of(args.get_or(3, "hour", value::of_int(0)), "hour"),
                                         int_of(args.get_or(4, "minute", value::of_int(0)), "minute"),
                                         int_of(args.get_or(5, "second", value::of_int(0)), "second"),
                                         int_of(args.get_or(6, "microsecond", value::of_int(0)), "microsecond")),
                               true);
      }
      if (callee.text == "range") {
        long long start = 0, stop = 0, step = 1;
        if (args.positional.size() == 1) stop = int_of(arg(0, "stop"), "stop");
        else {
          start = int_of(arg(0, "start"), "start");
          stop = int_of(arg(1, "stop"), "stop");
          if (args.positional.size() > 2) step = int_of(arg(2, "step"), "step");
        }
        if (step == 0) fail("range() step must not be zero");
        value_list l;
        for (long long i = start; step > 0 ? i < stop : i > stop; i += step) {
          if (l.size() >= 100000) fail("range() is limited to 100000 items");
          l.push_back(value::of_int(i));
        }
        return value::of_list(std::move(l));
      }
      fail("'" + callee.text + "' is not callable");
    }
    if (!callee.is(value_kind::method)) fail("'" + type_name(callee) + "' object is not callable");
    const value& self = *callee.self;
    const std::string& m = callee.text;
    if (self.is(value_kind::object)) {
      if (self.text == "ti" && m == "xcom_pull") return xcom_pull(args);
      if (self.text == "macros" && m == "ds_add") return value::of_string(ds_add(arg(0, "ds"), arg(1, "days")));
      if (self.text == "macros" && m == "ds_format")
        return value::of_string(strftime(strptime(string_of(arg(0, "ds"), "ds"), string_of(arg(1, "input_format"), "input_format")),
                                         string_of(arg(2, "output_format"), "output_format")));
      if (self.text == "datetime" && m == "strptime") return strptime(string_of(arg(0, "date_string"), "date_string"), string_of(arg(1, "format"), "format"));
      if (self.text == "datetime" && m == "fromisoformat") {
        time_point t = parse_time(string_of(arg(0, "date_string"), "date_string"));
        return value::of_time(t);
      }
      fail("'" + self.text + "' has no method '" + m + "' (only time-independent macros are available)");
    }
    if (self.is(value_kind::datetime)) {
      if (m == "strftime") return value::of_string(strftime(self, string_of(arg(0, "format"), "format")));
      if (m == "isoformat") return value::of_string(iso(self, args.get(0, "sep") ? string_of(*args.get(0, "sep"), "sep").front() : 'T'));
      if (m == "date") return value::of_string(ds_of(self));
      if (m == "weekday") return value::of_int(split(self.micros).weekday);
      if (m == "timestamp") return value::of_float(static_cast<double>(self.micros.count()) / 1e6);
      if (m == "replace") {
        civil c = split(self.micros);
        auto part = [&](std::string_view k, long long current) {
          for (const auto& [name, v] : args.named)
            if (name == k) return int_of(v, k);
          return current;
        };
        return value::datetime(make_date(part("year", c.year), part("month", c.month), part("day", c.day), part("hour", c.hour),
                                         part("minute", c.minute), part("second", c.second), part("microsecond", c.micro)),
                               self.flag);
      }
    }
    if (self.is(value_kind::timedelta) && m == "total_seconds") return value::of_float(static_cast<double>(self.micros.count()) / 1e6);
    if (self.is(value_kind::dict)) {
      if (m == "get") {
        std::string k = string_of(arg(0, "key"), "key");
        for (const auto& [name, v] : *self.dict)
          if (name == k) return v;
        return args.get_or(1, "default", value{});
      }
      value_list out;
      for (const auto& [k, v] : *self.dict) {
        if (m == "keys") out.push_back(value::of_string(k));
        else if (m == "values") out.push_back(v);
        else out.push_back(value::of_list({value::of_string(k), v}));
      }
      return value::of_list(std::move(out));
    }
    if (self.is(value_kind::string)) {
      const std::string& s = self.text;
      if (m == "upper") return value::of_string(upper_text(s));
      if (m == "lower") return value::of_string(lower_text(s));
      if (m == "title") return filter("title", self, {});
      if (m == "capitalize") return filter("capitalize", self, {});
      if (m == "strip" || m == "lstrip" || m == "rstrip") {
        std::string chars = args.get(0, "chars") ? string_of(*args.get(0, "chars"), "chars") : " \t\n\r\f\v";
        std::size_t b = m == "rstrip" ? 0 : s.find_first_not_of(chars);
        if (b == std::string::npos) return value::of_string("");
        std::size_t e = m == "lstrip" ? s.size() : s.find_last_not_of(chars) + 1;
        return value::of_string(s.substr(b, e - b));
      }
      if (m == "replace")
        return value::of_string(replace_text(s, string_of(arg(0, "old"), "old"), string_of(arg(1, "new"), "new"),
                                             args.get(2, "count") ? int_of(*args.get(2, "count"), "count") : -1));
      if (m == "startswith") return value::boolean(s.starts_with(string_of(arg(0, "prefix"), "prefix")));
      if (m == "endswith") return value::boolean(s.ends_with(string_of(arg(0, "suffix"), "suffix")));
      if (m == "join") {
        std::string out;
        bool first = true;
        for (const auto& item_value : items_of(arg(0, "iterable"))) {
          out += (first ? "" : s) + string_of(item_value, "a joined item");
          fits(out.size());
          first = false;
        }
        return value::of_string(std::move(out));
      }
      if (m == "split") {
        value_list parts;
        auto sep = args.get(0, "sep");
        if (!sep || sep->is(value_kind::none)) {
          std::size_t i = 0;
          while (i < s.size()) {
            while (i < s.size() && is_space(s[i])) ++i;
            std::size_t start = i;
            while (i < s.size() && !is_space(s[i])) ++i;
            if (i > start) {
              fits_items(parts.size() + 1);
              parts.push_back(value::of_string(s.substr(start, i - start)));
            }
          }
        } else {
          std::string d = string_of(*sep, "sep");
          if (d.empty()) fail("empty separator");
          std::size_t at = 0;
          for (std::size_t hit; (hit = s.find(d, at)) != std::string::npos; at = hit + d.size()) {
            fits_items(parts.size() + 1);
            parts.push_back(value::of_string(s.substr(at, hit - at)));
          }
          parts.push_back(value::of_string(s.substr(at)));
        }
        return value::of_list(std::move(parts));
      }
      if (m == "format") {
        std::string out;
        std::size_t next = 0;
        for (std::size_t i = 0; i < s.size(); ++i) {
          if (s[i] == '{' && i + 1 < s.size() && s[i + 1] == '}') {
            if (next >= args.positional.size()) fail("not enough arguments for format()");
            out += str(args.positional[next++]);
            fits(out.size());
            ++i;
          } else {
            out += s[i];
          }
        }
        return value::of_string(std::move(out));
      }
    }
    fail("'" + type_name(self) + "' has no method '" + m + "'");
  }

  // --- filters

  value filter(const std::string& name, const value& v, const arguments& args) {
    using vk = value_kind;
    if (name == "default" || name == "d") {
      bool boolean = truthy(args.get_or(1, "boolean", value::boolean(false)));
      if (v.is(vk::undefined) || (boolean && !truthy(v))) return args.get_or(0, "default_value", value::of_string(""));
      return v;
    }
    need(v);
    if (name == "upper") return value::of_string(upper_text(str(v)));
    if (name == "lower") return value::of_string(lower_text(str(v)));
    if (name == "capitalize") {
      std::string s = lower_text(str(v));
      if (!s.empty()) s = upper_text(s.substr(0, 1)) + s.substr(1);
      return value::of_string(s);
    }
    if (name == "title") {
      std::string s = str(v), out;
      bool word_start = true;
      for (char c : s) {
        out += word_start ? upper_text(std::string(1, c)) : lower_text(std::string(1, c));
        word_start = is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
      }
      return value::of_string(out);
    }
    if (name == "trim") {
      auto chars = args.get(0, "chars");
      return value::of_string(chars && !chars->is(vk::none) ? strip_text(str(v), string_of(*chars, "chars")) : strip_text(str(v)));
    }
    if (name == "replace")
      return value::of_string(replace_text(str(v), str(*args.get(0, "old")), str(*args.get(1, "new")),
                                           args.get(2, "count") ? int_of(*args.get(2, "count"), "count") : -1));
    if (name == "int") {
      value fallback = args.get_or(0, "default", value::of_int(0));
      long long base = int_of(args.get_or(1, "base", value::of_int(10)), "base");
      if (v.is(vk::integer) || v.is(vk::boolean)) return value::of_int(v.as_int());
      if (v.is(vk::number)) return value::of_int(truncated(v.number));
      if (v.is(vk::string)) {
        std::string s = strip_text(v.text);
        std::string digits;
        for (char c : s)
          if (c != '_') digits += c;
        long long out = 0;
        auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out, static_cast<int>(base));
        if (ec == std::errc{} && p == digits.data() + digits.size() && !digits.empty()) return value::of_int(out);
        double d = 0;
        auto [q, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
        if (ec2 == std::errc{} && q == s.data() + s.size() && !s.empty() && std::isfinite(d)) return value::of_int(truncated(d));
      }
      return fallback;
    }
    if (name == "float") {
      value fallback = args.get_or(0, "default", value::of_float(0.0));
      if (v.numeric()) return value::of_float(v.as_double());
      if (v.is(vk::string)) {
        std::string s = strip_text(v.text);
        double d = 0;
        auto [q, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
        if (ec == std::errc{} && q == s.data() + s.size() && !s.empty()) return value::of_float(d);
      }
      return fallback;
    }
    if (name == "string") return value::of_string(str(v));
    if (name == "bool") return value::boolean(truthy(v));
    if (name == "length" || name == "count") {
      if (v.is(vk::dict)) return value::of_int(static_cast<long long>(v.dict->size()));
      if (v.is(vk::list)) return value::of_int(static_cast<long long>(v.list->size()));
      if (v.is(vk::string)) {  // characters, as items_of counts them, without making a list of them
        long long count = 0;
        for (std::size_t i = 0; i < v.text.size(); i += char_length(v.text[i])) ++count;
        return value::of_int(count);
      }
      return value::of_int(static_cast<long long>(items_of(v).size()));
    }
    if (name == "join") {
      std::string separator = args.get(0, "d") ? str(*args.get(0, "d")) : "";
      auto attr = args.get(1, "attribute");
      std::string out;
      bool first = true;
      for (const auto& x : items_of(v)) {
        out += (first ? "" : separator) + str(attr ? attribute(x, str(*attr)) : x);
        fits(out.size());
        first = false;
      }
      return value::of_string(out);
    }
    if (name == "first" || name == "last") {
      value_list items = items_of(v);
      if (items.empty()) return value::undefined("No " + name + " item, sequence was empty.");
      return name == "first" ? items.front() : items.back();
    }
    if (name == "tojson") {
      std::string out;
      const long long indent = int_of(args.get_or(0, "indent", value::of_int(0)), "indent");
      if (indent > 64) fail("tojson: indent must be at most 64");
      write_json(out, v, static_cast<int>(indent), 0);
      fits(out.size());
      return value::of_string(out);
    }
    if (name == "fromjson") return parse_json(string_of(v, "fromjson's value"), "the value given to fromjson");
    if (name == "list") return value::of_list(items_of(v));
    if (name == "reverse") {
      if (v.is(vk::string)) {
        value_list chars = items_of(v);
        std::string out;
        for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += it->text;
        return value::of_string(out);
      }
      value_list items = items_of(v);
      std::reverse(items.begin(), items.end());
      return value::of_list(std::move(items));
    }
    if (name == "sort" || name == "unique" || name == "min" || name == "max") {
      std::size_t at = name == "sort" ? 1 : 0;  // sort(reverse, case_sensitive, attribute)
      bool reverse = name == "sort" && truthy(args.get_or(0, "reverse", value::boolean(false)));
      bool case_sensitive = truthy(args.get_or(at, "case_sensitive", value::boolean(false)));
      auto attr = args.get(at + 1, "attribute");
      auto key = [&](const value& x) {
        value k = attr ? need(attribute(x, str(*attr))) : x;
        if (!case_sensitive && k.is(vk::string)) k.text = lower_text(k.text);
        return k;
      };
      value_list items = items_of(v);
      if (name == "unique") {
        value_list out;
        std::vector<value> seen;
        for (const auto& x : items) {
          value k = key(x);
          if (std::none_of(seen.begin(), seen.end(), [&](const value& s) { return equal(s, k); })) {
            seen.push_back(k);
            out.push_back(x);
          }
        }
        return value::of_list(std::move(out));
      }
      if (name == "sort") {
        std::stable_sort(items.begin(), items.end(), [&](const value& a, const value& b) {
          int c = compare(key(a), key(b));
          return reverse ? c > 0 : c < 0;
        });
        return value::of_list(std::move(items));
      }
      if (items.empty()) return value::undefined("No aggregated item, sequence was empty.");
      auto best = items.begin();
      for (auto it = items.begin() + 1; it != items.end(); ++it) {
        int c = compare(key(*it), key(*best));
        if (name == "min" ? c < 0 : c > 0) best = it;
      }
      return *best;
    }
    if (name == "sum") {
      auto attr = args.get(0, "attribute");
      value total = args.get_or(1, "start", value::of_int(0));
      for (const auto& x : items_of(v)) total = binary("+", total, attr ? attribute(x, str(*attr)) : x, false);
      return total;
    }
    if (name == "round") {
      if (!v.numeric()) fail("round needs a number, not " + type_name(v));
      long long precision = int_of(args.get_or(0, "precision", value::of_int(0)), "precision");
      std::string method = str(args.get_or(1, "method", value::of_string("common")));
      double scale = std::pow(10.0, static_cast<double>(precision));
      double x = v.as_double() * scale;
      if (method == "common") x = std::nearbyint(x);  // Python's round: halves to even
      else if (method == "ceil") x = std::ceil(x);
      else if (method == "floor") x = std::floor(x);
      else fail("round method must be 'common', 'ceil' or 'floor'");
      return value::of_float(x / scale);
    }
    if (name == "abs") {
      if (v.is(vk::number)) return value::of_float(std::fabs(v.number));
      if (v.is(vk::timedelta)) return value::timedelta(v.micros < std::chrono::microseconds{0} ? -v.micros : v.micros);
      if (v.numeric()) return value::of_int(v.as_int() < 0 ? negative_of(v.as_int()) : v.as_int());
      fail("bad operand type for abs(): '" + type_name(v) + "'");
    }
    if (name == "truncate") {
      std::string s = str(v);
      auto length = static_cast<std::size_t>(std::max(0LL, int_of(args.get_or(0, "length", value::of_int(255)), "length")));
      bool killwords = truthy(args.get_or(1, "killwords", value::boolean(false)));
      std::string end = str(args.get_or(2, "end", value::of_string("...")));
      auto leeway = static_cast<std::size_t>(std::max(0LL, int_of(args.get_or(3, "leeway", value::of_int(5)), "leeway")));
      if (s.size() <= length + leeway) return value::of_string(s);
      std::string cut = s.substr(0, length > end.size() ? length - end.size() : 0);
      if (!killwords) {
        std::size_t space = cut.rfind(' ');
        if (space != std::string::npos) cut = cut.substr(0, space);
      }
      return value::of_string(cut + end);
    }
    if (name == "indent") {
      value width = args.get_or(0, "width", value::of_int(4));
      const long long spaces = width.is(vk::string) ? 0 : std::max(0LL, int_of(width, "width"));
      fits(static_cast<std::size_t>(std::min<long long>(spaces, max_text + 1)));
      std::string pad = width.is(vk::string) ? width.text : std::string(static_cast<std::size_t>(spaces), ' ');
      bool first = truthy(args.get_or(1, "first", value::boolean(false)));
      bool blank = truthy(args.get_or(2, "blank", value::boolean(false)));
      std::string s = str(v), out;
      std::size_t line_start = 0;
      for (std::size_t i = 0; i <= s.size(); ++i) {
        if (i < s.size() && s[i] != '\n') continue;
        std::string_view line(s.data() + line_start, i - line_start);
        bool indent = (line_start != 0 || first) && (blank || !strip_text(line).empty());
        fits(out.size() + (indent ? pad.size() : 0) + line.size());
        out += (indent ? pad : "") + std::string(line) + (i < s.size() ? "\n" : "");
        line_start = i + 1;
      }
      return value::of_string(out);
    }
    if (name == "items" || name == "dictsort") {
      if (!v.is(vk::dict)) fail(name + " needs a dict, not " + type_name(v));
      value_list out;
      for (const auto& [k, x] : *v.dict) out.push_back(value::of_list({value::of_string(k), x}));
      if (name == "dictsort")
        std::stable_sort(out.begin(), out.end(), [](const value& a, const value& b) {
          return lower_text((*a.list)[0].text) < lower_text((*b.list)[0].text);
        });
      return value::of_list(std::move(out));
    }
    if (name == "map" || name == "select" || name == "reject") {
      value_list out;
      for (const auto& x : items_of(v)) {
        if (name == "map") {
          auto attr = args.get(99, "attribute");
          if (!args.positional.empty()) out.push_back(filter(string_of(args.positional[0], "map's filter"), x, {}));
          else if (attr) out.push_back(attribute(x, str(*attr)));
          else fail("map needs a filter name or attribute=");
        } else {
          bool pass = args.positional.empty() ? truthy(x) : test(string_of(args.positional[0], "the test"), x, {});
          if (pass == (name == "select")) out.push_back(x);
        }
      }
      return value::of_list(std::move(out));
    }
    if (name == "ds_add") return value::of_string(ds_add(v, *args.get(0, "days")));
    if (name == "ds_format")
      return value::of_string(strftime(strptime(string_of(v, "ds"), string_of(*args.get(0, "input_format"), "input_format")),
                                       string_of(*args.get(1, "output_format"), "output_format")));
    if (name == "shquote") return value::of_string(shell_quote(str(v)));
    // Airflow's date filters: on a datetime, or on text in ISO form.
    value dt = v.is(vk::datetime) ? v : v.is(vk::string) ? value::of_time(parse_time(v.text)) : value{};
    if (!dt.is(vk::datetime)) fail("filter '" + name + "' needs a datetime, not " + type_name(v));
    if (name == "ds") return value::of_string(ds_of(dt));
    if (name == "ds_nodash") return value::of_string(strftime(dt, "%Y%m%d"));
    if (name == "ts") return value::of_string(iso(dt));
    if (name == "ts_nodash") return value::of_string(strftime(dt, "%Y%m%dT%H%M%S"));
    return value::of_string(replace_text(replace_text(iso(dt), "-", ""), ":", ""));  // ts_nodash_with_tz
  }

  bool test(const std::string& name, const value& v, const arguments& args) {
    using vk = value_kind;
    if (name == "defined") return !v.is(vk::undefined);
    if (name == "undefined") return v.is(vk::undefined);
    need(v);
    if (name == "none") return v.is(vk::none);
    if (name == "true") return v.is(vk::boolean) && v.flag;
    if (name == "false") return v.is(vk::boolean) && !v.flag;
    if (name == "boolean") return v.is(vk::boolean);
    if (name == "number") return v.numeric();
    if (name == "integer") return v.is(vk::integer);
    if (name == "float") return v.is(vk::number);
    if (name == "string") return v.is(vk::string);
    if (name == "mapping") return v.is(vk::dict);
    if (name == "sequence") return v.is(vk::list) || v.is(vk::string) || v.is(vk::dict);
    if (name == "even" || name == "odd") return (int_of(v, "the value tested") % 2 == 0) == (name == "even");
    long long by = int_of(need(*args.get(0, "num")), "divisibleby's argument");
    if (by == 0) fail("division by zero");
    return int_of(v, "the value tested") % by == 0;
  }

  const template_context& context_;
  std::string& out_;
  long long steps_ = 0;        // steps taken (charge)
  std::optional<value> params_, conf_;  // params and the run's conf, parsed on first use
  long long* outer_steps_;     // the count render_steps pointed at before (a render inside a render)
  std::vector<std::map<std::string, value>> scopes_;
  std::vector<std::pair<std::string, value>> connections_;
};

}  // namespace

// -------------------------------------------------------------------------------------------------

template_text::template_text() : program_(std::make_shared<detail::template_program>()) {}

template_text template_text::parse(std::string_view text) {
  template_text out;
  out.source_ = std::string(text);
  auto program = std::make_shared<detail::template_program>();
  parser p(text, out.refs_);
  program->nodes = p.parse_all();
  out.program_ = std::move(program);
  return out;
}

bool template_text::is_constant() const noexcept {
  return std::all_of(program_->nodes.begin(), program_->nodes.end(), [](const node& n) {
    return n.kind == node_kind::text || (n.kind == node_kind::output && n.value->kind == expr_kind::literal);
  });
}

void check(const template_text& text, const template_scope& scope) {
  for (const template_ref& ref : text.refs()) {
    if (ref.kind == template_ref_kind::param && !ref.optional && !scope.params.contains(ref.name)) {
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
  renderer r(context, out);
  try {
    r.run(text.program().nodes);
  } catch (const std::bad_alloc&) {
    // The bounds above keep a render to a few hundred MiB (text is charged as it is made); where
    // even that fails to be allocated, this render (and so its try) fails, not the scheduler.
    fail("the template ran out of memory");
  }
}

std::string render(const template_text& text, const template_context& context) {
  std::string out;
  out.reserve(text.source().size() + 32);
  render_to(out, text, context);
  return out;
}

std::string render(std::string_view text, const template_context& context) {
  return render(template_text::parse(text), context);
}

bool has_template(std::string_view text) {
  for (std::size_t i = text.find('{'); i != std::string_view::npos && i + 1 < text.size(); i = text.find('{', i + 1)) {
    char next = text[i + 1];
    if (next == '{' || next == '%' || next == '#') return true;
  }
  return false;
}

}  // namespace dag
