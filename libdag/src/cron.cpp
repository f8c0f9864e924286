/// @file Parsing 5-field cron expressions and searching wall-clock minutes that match them.

#include <dag/schedule/cron.hpp>

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <date/date.h>

#include <dag/core/error.hpp>

namespace dag {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Parsing

constexpr std::array<std::string_view, 12> month_names{"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> weekday_names{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

/// What one of the five fields accepts.
struct field_def {
  std::string_view name;                     // as named in messages
  int min;                                   // smallest accepted value
  int max;                                   // largest accepted value (day-of-week: 7 = Sunday)
  int wildcard_max;                          // largest value `*` stands for (day-of-week: 6)
  std::span<const std::string_view> names;   // names of min, min+1, … (month and weekday only)
  bool day_field;                            // accepts `?` for `*`, as croniter does
};

constexpr std::array<field_def, 5> field_defs{{
    {"minute", 0, 59, 59, {}, false},
    {"hour", 0, 23, 23, {}, false},
    {"day-of-month", 1, 31, 31, {}, true},
    {"month", 1, 12, 12, month_names, false},
    {"day-of-week", 0, 7, 6, weekday_names, true},
}};

/// Presets and the expressions they stand for (`@once` is not a cron schedule).
constexpr std::array<std::pair<std::string_view, std::string_view>, 8> presets{{
    {"@hourly", "0 * * * *"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},
    {"@monthly", "0 0 1 * *"},
    {"@quarterly", "0 0 1 */3 *"},
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
}};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_digit(c)) return false;
  return true;
}

char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (upper(a[i]) != upper(b[i])) return false;
  return true;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t begin = 0;
  while (true) {
    std::size_t end = text.find(separator, begin);
    parts.push_back(text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) return parts;
    begin = end + 1;
  }
}

std::vector<std::string_view> split_whitespace(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t pos = 0;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (pos < text.size()) {
    while (pos < text.size() && is_space(text[pos])) ++pos;
    std::size_t begin = pos;
    while (pos < text.size() && !is_space(text[pos])) ++pos;
    if (pos > begin) words.push_back(text.substr(begin, pos - begin));
  }
  return words;
}

/// Reads one field into a set of values, naming the field and expression in every error.
class field_parser {
public:
  field_parser(const field_def& def, std::string_view expression) : def_(def), expression_(expression) {}

  /// The values `field` selects (bit i = value i; day-of-week 7 already folded onto 0).
  std::bitset<64> parse(std::string_view field) const {
    std::bitset<64> values;
    for (std::string_view item : split(field, ',')) add_item(item, values);
    if (def_.max == 7 && values.test(7)) {  // day-of-week 7 is Sunday, like 0
      values.reset(7);
      values.set(0);
    }
    return values;
  }

private:
  void add_item(std::string_view item, std::bitset<64>& values) const {
    if (item.empty()) fail("has an empty list item");
    std::string_view base = item;
    int step = 1;
    bool stepped = false;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      base = item.substr(0, slash);
      step = read_step(item.substr(slash + 1));
      stepped = true;
    }
    int low = 0;
    int high = 0;
    if (base == "*" || (base == "?" && def_.day_field)) {
      low = def_.min;
      high = def_.wildcard_max;
    } else if (auto dash = base.find('-'); dash != std::string_view::npos) {
      low = read_value(base.substr(0, dash));
      high = read_value(base.substr(dash + 1));
      if (low > high) fail("range " + std::string(base) + " is reversed");
    } else {
      low = read_value(base);
      // `5/15` means 5, 20, 35, 50: a start with a step runs to the field's end (croniter).
      high = stepped ? def_.wildcard_max : low;
    }
    for (int v = low; v <= high; v += step) values.set(static_cast<std::size_t>(v));
  }

  int read_step(std::string_view text) const {
    if (!all_digits(text)) fail("step '" + std::string(text) + "' is not a whole number");
    if (text.size() > 3) fail("step " + std::string(text) + " is too large");
    int step = std::stoi(std::string(text));
    if (step == 0) fail("step 0 must be at least 1");
    return step;
  }

  int read_value(std::string_view token) const {
    if (token.empty()) fail("has an empty value");
    if (all_digits(token)) {
      int v = token.size() > 3 ? def_.max + 1 : std::stoi(std::string(token));
      if (v < def_.min || v > def_.max)
        fail("value " + std::string(token) + " out of range " + std::to_string(def_.min) + "-" +
             std::to_string(def_.max));
      return v;
    }
    for (std::size_t i = 0; i < def_.names.size(); ++i)
      if (iequals(token, def_.names[i])) return def_.min + static_cast<int>(i);
    if (!def_.names.empty()) fail("has unknown name '" + std::string(token) + "'");
    fail("value '" + std::string(token) + "' is not a number");
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw usage_error("cron field '" + std::string(def_.name) + "' " + what + " in '" +
                      std::string(expression_) + "'");
  }

  const field_def& def_;
  std::string_view expression_;
};

template <std::size_t N>
std::bitset<N> narrow(const std::bitset<64>& wide) {
  std::bitset<N> out;
  for (std::size_t i = 0; i < N; ++i) out[i] = wide[i];
  return out;
}

/// A day field counts as unrestricted (`*`) as croniter decides it: written `*` (or `?`), or
/// selecting every value while the other day field contains a `*`. Only then does the day
/// rule use AND; two restricted fields use Vixie's OR.
bool day_field_is_star(std::string_view field, bool selects_all, std::string_view other_field) {
  if (field == "*" || field == "?") return true;
  return selects_all && other_field.find('*') != std::string_view::npos;
}

/// The most days month `m` can have (February: 29, leap years included).
unsigned max_days_in(unsigned m) {
  constexpr std::array<unsigned, 13> days{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return days[m];
}

// ---------------------------------------------------------------------------------------------
// Searching

/// The lowest set bit at or above `from`, or N.
template <std::size_t N>
std::size_t first_at_or_after(const std::bitset<N>& bits, std::size_t from) {
  for (std::size_t i = from; i < N; ++i)
    if (bits.test(i)) return i;
  return N;
}

/// The highest set bit at or below `from`, or N.
template <std::size_t N>
std::size_t last_at_or_before(const std::bitset<N>& bits, std::size_t from) {
  for (std::size_t i = from + 1; i-- > 0;)
    if (bits.test(i)) return i;
  return N;
}

/// The span the searches give up after: longer than any gap between fires of a valid expression
/// (the longest is `0 0 29 2 *` across a non-leap century year: 8 years).
constexpr date::days search_span{366 * 50};

/// A position in a day-by-day search: the day and the minute of day to start from.
struct search_point {
  date::sys_days day;
  std::size_t hour;
  std::size_t minute;
};

time_point at_minute(date::sys_days day, std::size_t hour, std::size_t minute) {
  return time_point{day} + std::chrono::minutes{static_cast<std::int64_t>(hour * 60 + minute)};
}

search_point split_minute(std::chrono::sys_time<std::chrono::minutes> m) {
  auto day = date::floor<date::days>(m);
  auto minute_of_day = static_cast<std::size_t>((m - day).count());
  return {day, minute_of_day / 60, minute_of_day % 60};
}

}  // namespace

// ---------------------------------------------------------------------------------------------

cron_expr cron_expr::parse(std::string_view text) {
  std::vector<std::string_view> words = split_whitespace(text);
  if (!words.empty())  // keep the text as written, without surrounding blanks
    text = std::string_view(words.front().data(), static_cast<std::size_t>(words.back().data() + words.back().size() - words.front().data()));
  cron_expr out;
  out.text_ = std::string(text);
  if (words.size() == 1 && words[0].starts_with('@')) {
    for (const auto& [name, expansion] : presets) {
      if (!iequals(words[0], name)) continue;
      cron_expr expanded = parse(expansion);
      expanded.text_ = out.text_;
      return expanded;
    }
    throw usage_error("unknown cron preset '" + std::string(words[0]) +
                      "' (expected @hourly @daily @midnight @weekly @monthly @quarterly @yearly "
                      "@annually)");
  }
  if (words.size() != 5)
    throw usage_error("cron expression '" + std::string(text) + "' has " + std::to_string(words.size()) +
                      " fields; expected 5 (minute hour day-of-month month day-of-week)");

  std::array<std::bitset<64>, 5> sets;
  for (std::size_t i = 0; i < 5; ++i) sets[i] = field_parser(field_defs[i], text).parse(words[i]);
  out.minutes = narrow<60>(sets[0]);
  out.hours = narrow<24>(sets[1]);
  out.days = narrow<32>(sets[2]);
  out.months = narrow<13>(sets[3]);
  out.weekdays = narrow<7>(sets[4]);
  out.day_restricted = !day_field_is_star(words[2], sets[2].count() == 31, words[4]);
  out.weekday_restricted = !day_field_is_star(words[4], out.weekdays.all(), words[2]);
  out.hour_wildcard_ = out.hours.all();  // `*`, `*/1` and `0-23` alike, as Airflow's croniter sees it

  // With the AND rule the day-of-month field alone decides the days; make sure some selected
  // month has a selected day, so that searches always end (`0 0 30 2 *` never fires).
  if (!out.weekday_restricted) {
    bool possible = false;
    for (unsigned m = 1; m <= 12 && !possible; ++m)
      if (out.months.test(m))
        for (unsigned d = 1; d <= max_days_in(m) && !possible; ++d) possible = out.days.test(d);
    if (!possible)
      throw usage_error("cron expression '" + out.text_ +
                        "' never fires: no selected month has the selected day of month");
  }
  return out;
}

bool cron_expr::day_matches(int month, int day, int weekday) const {
  if (month < 1 || month > 12 || day < 1 || day > 31 || weekday < 0 || weekday > 6) return false;
  if (!months.test(static_cast<std::size_t>(month))) return false;
  bool by_day = days.test(static_cast<std::size_t>(day));
  bool by_weekday = weekdays.test(static_cast<std::size_t>(weekday));
  // Vixie cron: when both day fields are restricted a day matching either one fires.
  if (day_restricted && weekday_restricted) return by_day || by_weekday;
  return by_day && by_weekday;
}

bool cron_expr::matches(int month, int day, int weekday, int hour, int minute) const {
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59) return false;
  return day_matches(month, day, weekday) && hours.test(static_cast<std::size_t>(hour)) &&
         minutes.test(static_cast<std::size_t>(minute));
}

std::optional<time_point> cron_expr::next_match(time_point wall) const {
  search_point at = split_minute(date::ceil<std::chrono::minutes>(wall));
  const date::sys_days limit = at.day + search_span;
  while (at.day < limit) {
    date::year_month_day ymd{at.day};
    const auto month = static_cast<unsigned>(ymd.month());
    if (!months.test(month)) {  // skip the whole month: keeps `0 0 29 2 *` to a few steps a year
      at = {date::sys_days{(ymd.year() / ymd.month() + date::months{1}) / 1}, 0, 0};
      continue;
    }
    const auto weekday = date::weekday{at.day}.c_encoding();
    if (day_matches(static_cast<int>(month), static_cast<int>(static_cast<unsigned>(ymd.day())),
                    static_cast<int>(weekday))) {
      for (std::size_t h = first_at_or_after(hours, at.hour); h < 24; h = first_at_or_after(hours, h + 1)) {
        std::size_t m = first_at_or_after(minutes, h == at.hour ? at.minute : 0);
        if (m < 60) return at_minute(at.day, h, m);
      }
    }
    at = {at.day + date::days{1}, 0, 0};
  }
  return std::nullopt;
}

std::optional<time_point> cron_expr::prev_match(time_point wall) const {
  search_point at = split_minute(date::ceil<std::chrono::minutes>(wall) - std::chrono::minutes{1});
  const date::sys_days limit = at.day - search_span;
  while (at.day > limit) {
    date::year_month_day ymd{at.day};
    const auto month = static_cast<unsigned>(ymd.month());
    if (!months.test(month)) {  // jump to the last day of the previous month
      at = {date::sys_days{ymd.year() / ymd.month() / 1} - date::days{1}, 23, 59};
      continue;
    }
    const auto weekday = date::weekday{at.day}.c_encoding();
    if (day_matches(static_cast<int>(month), static_cast<int>(static_cast<unsigned>(ymd.day())),
                    static_cast<int>(weekday))) {
      for (std::size_t h = last_at_or_before(hours, at.hour); h < 24;
           h = h == 0 ? 24 : last_at_or_before(hours, h - 1)) {
        std::size_t m = last_at_or_before(minutes, h == at.hour ? at.minute : 59);
        if (m < 60) return at_minute(at.day, h, m);
      }
    }
    at = {at.day - date::days{1}, 23, 59};
  }
  return std::nullopt;
}

}  // namespace dag
