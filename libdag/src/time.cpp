/// @file Duration and ISO-8601 text formats, and wall-clock conversions through the OS tz database.

#include <dag/core/time.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include <date/date.h>
#include <date/tz.h>

#include <dag/core/error.hpp>

namespace dag {
namespace {

using namespace std::chrono_literals;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// ---------------------------------------------------------------------------------------------
// Durations

/// One duration unit; the table is in the only order units may appear.
struct duration_unit {
  char letter;
  duration size;
};

constexpr std::array<duration_unit, 5> duration_units{{
    {'w', 604800s}, {'d', 86400s}, {'h', 3600s}, {'m', 60s}, {'s', 1s}}};

/// Digits per number are capped so that the sum of five weeks-sized terms cannot overflow.
constexpr std::size_t max_duration_digits = 9;

[[noreturn]] void bad_duration(std::string_view text) {
  throw usage_error("invalid duration '" + std::string(text) +
                    "': expected a positive whole number and unit (w d h m s), units in that "
                    "order and each at most once, e.g. 90s, 30m, 6h, 1d, 1h30m");
}

// ---------------------------------------------------------------------------------------------
// Timezones

/// The zone called `name`; "UTC" included. Throws usage_error naming an unknown zone.
const date::time_zone& find_zone(std::string_view name) {
  try {
    return *date::locate_zone(name);
  } catch (const std::runtime_error&) {
    throw usage_error("unknown timezone '" + std::string(name) +
                      "' (expected an IANA name such as UTC or Europe/Berlin)");
  }
}

/// UTC needs no tz database lookup: the common case stays cheap and works without zoneinfo.
bool is_utc(std::string_view name) { return name == "UTC" || name == "Etc/UTC"; }

/// `+HH:MM` (or `+HH:MM:SS` for the odd historical offset with seconds, as Python prints it).
std::string format_offset(duration offset) {
  std::string out = offset < 0s ? "-" : "+";
  auto total = offset < 0s ? -offset.count() : offset.count();
  auto two = [](std::int64_t v) {
    std::string s = std::to_string(v);
    return s.size() < 2 ? "0" + s : s;
  };
  out += two(total / 3600) + ":" + two(total / 60 % 60);
  if (total % 60 != 0) out += ":" + two(total % 60);
  return out;
}

// ---------------------------------------------------------------------------------------------
// ISO-8601 parsing

/// A left-to-right reader over the text of one date-time.
class iso_reader {
public:
  explicit iso_reader(std::string_view text) : text_(text) {}

  bool done() const { return pos_ == text_.size(); }
  char peek() const { return done() ? '\0' : text_[pos_]; }
  /// Consumes `c` if it is next.
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  /// Exactly `count` digits as a number; throws if they are not there.
  int digits(std::size_t count) {
    int value = 0;
    for (std::size_t i = 0; i < count; ++i) {
      if (!is_digit(peek())) fail();
      value = value * 10 + (text_[pos_++] - '0');
    }
    return value;
  }
  /// A fraction of a second, to the microsecond (further digits are dropped).
  std::chrono::microseconds fraction() {
    if (!is_digit(peek())) fail();
    std::int64_t micros = 0;
    for (int place = 0; place < 6; ++place) micros = micros * 10 + (is_digit(peek()) ? text_[pos_++] - '0' : 0);
    while (is_digit(peek())) ++pos_;
    return std::chrono::microseconds{micros};
  }
  [[noreturn]] void fail(std::string_view why = {}) const {
    std::string message = "invalid time '" + std::string(text_) + "'";
    if (!why.empty()) message += ": " + std::string(why);
    message += " (expected ISO-8601 such as 2024-01-01, 2024-01-01T06:00:00 or "
               "2024-01-01T06:00:00+02:00)";
    throw usage_error(message);
  }

private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

/// A parsed date-time: the wall clock as written, and the offset if one was given.
struct written_time {
  time_point wall;
  std::optional<duration> offset;
  std::chrono::microseconds fraction{0};  ///< of the second
};

/// `YYYY-MM-DD` as days since the epoch, checking that the day exists.
date::sys_days read_date(iso_reader& in) {
  int y = in.digits(4);
  if (!in.accept('-')) in.fail();
  int m = in.digits(2);
  if (!in.accept('-')) in.fail();
  int d = in.digits(2);
  date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(m)},
                           date::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) in.fail("no such date");
  return date::sys_days{ymd};
}

/// `Z` or `±HH[:MM]` / `±HHMM`.
duration read_offset(iso_reader& in) {
  if (in.accept('Z') || in.accept('z')) return 0s;
  int sign = in.accept('+') ? 1 : in.accept('-') ? -1 : 0;
  if (sign == 0) in.fail();
  int hours = in.digits(2);
  int minutes = 0;
  if (in.accept(':') || is_digit(in.peek())) minutes = in.digits(2);
  if (hours > 23 || minutes > 59) in.fail("offset out of range");
  return sign * (std::chrono::hours{hours} + std::chrono::minutes{minutes});
}

written_time read_time(std::string_view text) {
  iso_reader in(text);
  written_time out{time_point{read_date(in)}, std::nullopt};
  if (in.done()) return out;
  if (!in.accept('T') && !in.accept('t') && !in.accept(' ')) in.fail();
  int hour = in.digits(2);
  if (!in.accept(':')) in.fail();
  int minute = in.digits(2);
  int second = 0;
  if (in.accept(':')) {
    second = in.digits(2);
    if (in.accept('.')) out.fraction = in.fraction();
  }
  if (hour > 23 || minute > 59 || second > 59) in.fail("time of day out of range");
  out.wall += std::chrono::hours{hour} + std::chrono::minutes{minute} + std::chrono::seconds{second};
  if (!in.done()) out.offset = read_offset(in);
  if (!in.done()) in.fail();
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

duration parse_duration(std::string_view text) {
  duration total{0};
  std::size_t next_unit = 0;  // units must come in table order, so each at most once
  std::size_t pos = 0;
  if (text.empty()) bad_duration(text);
  while (pos < text.size()) {
    std::size_t digits_start = pos;
    while (pos < text.size() && is_digit(text[pos])) ++pos;
    std::size_t digit_count = pos - digits_start;
    // Counted before they are read: a long run of digits would overflow the value.
    if (digit_count == 0 || digit_count > max_duration_digits || pos == text.size()) bad_duration(text);
    std::int64_t value = 0;
    for (std::size_t i = digits_start; i < pos; ++i) value = value * 10 + (text[i] - '0');
    std::size_t unit = next_unit;
    while (unit < duration_units.size() && duration_units[unit].letter != text[pos]) ++unit;
    if (unit == duration_units.size()) bad_duration(text);
    total += value * duration_units[unit].size;
    next_unit = unit + 1;
    ++pos;
  }
  if (total <= 0s) bad_duration(text);
  return total;
}

std::string format_duration(duration d) {
  if (d == 0s) return "0s";
  if (d < 0s) return "-" + format_duration(-d);
  std::string out;
  for (const auto& unit : duration_units) {
    auto count = d / unit.size;
    if (count == 0) continue;
    out += std::to_string(count) + unit.letter;
    d -= count * unit.size;
  }
  return out;
}

time_point parse_time(std::string_view text, std::string_view zone_name) {
  return std::chrono::floor<std::chrono::seconds>(parse_precise_time(text, zone_name));
}

timestamp parse_precise_time(std::string_view text, std::string_view zone_name) {
  const written_time t = read_time(text);
  return timestamp{t.offset ? t.wall - *t.offset : from_wall_clock(t.wall, zone_name)} + t.fraction;
}

std::string format_iso(time_point t) { return date::format("%FT%T", t) + "+00:00"; }

std::string format_iso(time_point t, std::string_view zone_name) {
  if (is_utc(zone_name)) return format_iso(t);
  auto info = find_zone(zone_name).get_info(t);
  return date::format("%FT%T", t + info.offset) + format_offset(info.offset);
}

time_point latest_time() {
  return time_point{date::sys_days{date::year{9999} / 12 / 31}} + std::chrono::hours{24} - std::chrono::seconds{1};
}

bool is_known_timezone(std::string_view name) {
  if (is_utc(name)) return true;
  try {
    date::locate_zone(name);
    return true;
  } catch (const std::runtime_error&) {
    return false;
  }
}

time_point to_wall_clock(time_point t, std::string_view zone_name) {
  if (is_utc(zone_name)) return t;
  return t + find_zone(zone_name).get_info(t).offset;
}

time_point from_wall_clock(time_point wall, std::string_view zone_name) {
  if (is_utc(zone_name)) return wall;
  const auto local = date::local_seconds{wall.time_since_epoch()};
  const auto info = find_zone(zone_name).get_info(local);
  switch (info.result) {
    case date::local_info::nonexistent:
      // Skipped by a spring-forward gap: the first instant after the gap (02:30 in Berlin on
      // 2024-03-31 → 03:00+02:00), which keeps "the run at 02:30" on that day and in order.
      return info.second.begin;
    case date::local_info::ambiguous:  // repeated by a fall-back: its first occurrence
    case date::local_info::unique:
    default:
      return wall - info.first.offset;
  }
}

}  // namespace dag
