/// @file Parsing 5-field cron expressions and searching wall-clock minutes that match them.

#include <dag/schedule/cron.hpp>

#include <algorithm>
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

/// What one field selects: values (bit i = value i; day-of-week 7 already folded onto 0) and
/// the day fields' special forms.
struct field_values {
  std::bitset<64> values;
  bool last_day = false;               // day-of-month `L`
  int nearest_weekday = 0;             // day-of-month `15W`
  std::array<std::uint8_t, 7> nth{};   // day-of-week `FRI#2` (bit 2), `L5` (bit 6)
};

/// The bit of `nth_weekdays` that stands for "the last such weekday of the month".
constexpr unsigned last_weekday_bit = 6;

/// Reads one field as croniter does, naming the field and expression in every error.
class field_parser {
public:
  field_parser(const field_def& def, std::string_view expression) : def_(def), expression_(expression) {}

  field_values parse(std::string_view field) const {
    field_values out;
    const std::vector<std::string_view> items = split(field, ',');
    for (std::string_view item : items) {
      if (item.empty()) fail("has an empty list item");
      if (is_weekday_field() && add_nth_weekday(item, out)) continue;
      if (is_day_of_month_field() && add_special_day(item, items.size(), out)) continue;
      add_item(item, out.values);
    }
    if (is_weekday_field() && out.values.test(7)) {  // day-of-week 7 is Sunday, like 0
      out.values.reset(7);
      out.values.set(0);
    }
    if (is_weekday_field()) check_nth_mix(out);
    return out;
  }

private:
  bool is_weekday_field() const { return def_.max == 7; }
  bool is_day_of_month_field() const { return def_.day_field && def_.max == 31; }
  /// The last value of the field's cycle (day-of-week: 6, Saturday; 7 folds onto Sunday).
  int cycle_max() const { return def_.wildcard_max; }
  int fold(int v) const { return is_weekday_field() && v == 7 ? 0 : v; }

  /// `L`, `15W` or `W15` in day-of-month; false for anything else. `W` must stand alone.
  bool add_special_day(std::string_view item, std::size_t item_count, field_values& out) const {
    if (iequals(item, "L")) {
      out.last_day = true;
      return true;
    }
    std::string_view number;
    if (item.size() > 1 && upper(item.back()) == 'W') number = item.substr(0, item.size() - 1);
    else if (item.size() > 1 && upper(item.front()) == 'W') number = item.substr(1);
    if (!all_digits(number)) return false;
    if (item_count > 1) fail("'" + std::string(item) + "': W takes a single day, not a list");
    const int day = read_value(number);
    out.nearest_weekday = day;
    out.values.set(static_cast<std::size_t>(day));
    return true;
  }

  /// `FRI#2`, `5#2`, `MON-FRI#1` (each weekday's n-th), `L5` or `5L` (the last one); false for
  /// anything else.
  bool add_nth_weekday(std::string_view item, field_values& out) const {
    int low = 0;
    int high = 0;
    unsigned bit = 0;
    if (auto hash = item.find('#'); hash != std::string_view::npos) {
      std::string_view n = item.substr(hash + 1);
      if (!all_digits(n) || n.size() > 1 || n[0] < '1' || n[0] > '5')
        fail("'" + std::string(item) + "': the n in #n must be 1-5");
      bit = static_cast<unsigned>(n[0] - '0');
      std::string_view days = item.substr(0, hash);
      if (auto dash = days.find('-'); dash != std::string_view::npos) {
        low = fold(read_value(days.substr(0, dash)));
        high = fold(read_value(days.substr(dash + 1)));
      } else {
        low = high = fold(read_value(days));
      }
    } else if (item.size() > 1 && (upper(item.front()) == 'L' || upper(item.back()) == 'L')) {
      std::string_view day = upper(item.front()) == 'L' ? item.substr(1) : item.substr(0, item.size() - 1);
      if (!all_digits(day)) return false;
      low = high = fold(read_value(day));
      bit = last_weekday_bit;
    } else {
      return false;
    }
    for (int v : expand_range(low, high, 1, false)) {
      out.nth[static_cast<std::size_t>(v)] = static_cast<std::uint8_t>(out.nth[static_cast<std::size_t>(v)] | (1u << bit));
      out.values.set(static_cast<std::size_t>(v));
    }
    return true;
  }

  /// croniter refuses plain weekdays next to `#`/`L` forms unless together they name all seven.
  void check_nth_mix(const field_values& out) const {
    bool any_nth = false;
    bool plain_only = false;
    for (std::size_t d = 0; d < 7; ++d) {
      any_nth = any_nth || out.nth[d] != 0;
      plain_only = plain_only || (out.values.test(d) && out.nth[d] == 0);
    }
    if (any_nth && plain_only && out.values.count() != 7)
      fail("mixes plain weekdays with #/L forms (croniter refuses this)");
  }

  void add_item(std::string_view item, std::bitset<64>& values) const {
    std::string_view base = item;
    int step = 1;
    bool stepped = false;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      base = item.substr(0, slash);
      step = read_step(item.substr(slash + 1));
      stepped = true;
    }
    std::vector<int> selected;
    if (base == "*" || (base == "?" && def_.day_field)) {
      selected = expand_range(def_.min, cycle_max(), step, false);
    } else if (auto dash = base.find('-'); dash != std::string_view::npos) {
      const int low = fold(read_value(base.substr(0, dash)));
      std::string_view high_text = base.substr(dash + 1);
      // `10-L` in day-of-month runs to the 31st (croniter).
      const int high = is_day_of_month_field() && iequals(high_text, "L") ? 31 : fold(read_value(high_text));
      selected = expand_range(low, high, step, true);
    } else {
      const int low = fold(read_value(base));
      // `5/15` means 5, 20, 35, 50: a start with a step runs to the field's end (croniter).
      selected = stepped ? expand_range(low, cycle_max(), step, false) : std::vector<int>{low};
    }
    for (int v : selected) values.set(static_cast<std::size_t>(v));
  }

  /// The values of `low-high/step` as croniter expands them: a range whose end comes before its
  /// start wraps around the field's end (`NOV-FEB`, `22-2`), continuing the step past the end as
  /// croniter computes it; with `equal_is_cycle`, a range with equal ends (`JAN-JAN`) is the
  /// whole cycle.
  std::vector<int> expand_range(int low, int high, int step, bool equal_is_cycle) const {
    std::vector<int> out;
    const int lo = def_.min;
    const int hi = cycle_max();
    if (low == high && equal_is_cycle) {
      low = lo;
      high = hi;
    }
    if (low <= high) {
      for (int v = low; v <= high; v += step) out.push_back(v);
      return out;
    }
    for (int v = low; v <= hi; v += step) out.push_back(v);
    // croniter's rule for where the step resumes after the wrap (its arithmetic, kept as is:
    // `50-10/15` gives 50, 6 — not 5 — as in Airflow).
    int skip = 0;
    const int last = out.back();
    const int left_before_end = hi - last;
    if ((last - lo) + step > hi - lo + 1 && left_before_end < step) skip = step - left_before_end;
    for (int v = lo + skip; v <= high; v += step) out.push_back(v);
    return out;
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

/// The number of days of `month` in `year`.
unsigned last_day_of(int year, unsigned month) {
  return static_cast<unsigned>(date::year_month_day_last{date::year{year} / date::month{month} / date::last}.day());
}

/// Day of week, 0 = Sunday.
unsigned weekday_of(int year, unsigned month, unsigned day) {
  return date::weekday{date::sys_days{date::year{year} / date::month{month} / date::day{day}}}.c_encoding();
}

/// croniter's `15W`: the weekday (Monday to Friday) nearest that day of the month, never leaving
/// the month; a day beyond the month's end counts as its last day.
unsigned nearest_weekday_in(int year, unsigned month, unsigned day) {
  const unsigned last = last_day_of(year, month);
  day = std::min(day, last);
  const unsigned weekday = weekday_of(year, month, day);
  if (weekday == 6) return day > 1 ? day - 1 : day + 2;      // Saturday: Friday, or Monday the 3rd
  if (weekday == 0) return day < last ? day + 1 : day - 2;   // Sunday: Monday, or Friday before
  return day;
}

/// A day field selects every day as croniter counts it (`1-31`, without `L` or `W`).
bool sets_all_days(const cron_expr& c) { return c.days.count() == 31 && !c.last_day && c.nearest_weekday == 0; }

/// Where the parser's "does it ever fire" probe starts: 50 years from here cover every
/// combination of leap year and weekday.
const time_point never_fires_probe = time_point{date::sys_days{date::year{2000} / 1 / 1}};

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

  std::array<field_values, 5> fields;
  for (std::size_t i = 0; i < 5; ++i) fields[i] = field_parser(field_defs[i], text).parse(words[i]);
  out.minutes = narrow<60>(fields[0].values);
  out.hours = narrow<24>(fields[1].values);
  out.days = narrow<32>(fields[2].values);
  out.months = narrow<13>(fields[3].values);
  out.weekdays = narrow<7>(fields[4].values);
  out.last_day = fields[2].last_day;
  out.nearest_weekday = fields[2].nearest_weekday;
  out.nth_weekdays = fields[4].nth;
  const bool all_days = sets_all_days(out);
  out.day_restricted = !day_field_is_star(words[2], all_days, words[4]);
  out.weekday_restricted = !day_field_is_star(words[4], out.weekdays.all() && !out.has_nth(), words[2]);
  out.hour_wildcard_ = out.hours.all();  // `*`, `*/1` and `0-23` alike, as Airflow's croniter sees it

  // Refuse what never fires, so that searches always end (`0 0 30 2 *`). croniter also refuses
  // an expression one of whose two day sides never fires when `#` or `W` is involved (those
  // sides are intersections there, `0 0 15 * FRI#2`), so each side is tried on its own.
  auto never_fires = [](const cron_expr& c) { return !c.next_match(never_fires_probe); };
  if (out.day_restricted && out.weekday_restricted && (out.has_nth() || out.nearest_weekday != 0)) {
    cron_expr by_day = out;
    by_day.weekday_restricted = false;
    cron_expr by_weekday = out;
    by_weekday.day_restricted = false;
    if (never_fires(by_day) || never_fires(by_weekday))
      throw usage_error("cron expression '" + out.text_ +
                        "' never fires: its day-of-month and its day-of-week #/L/W days never coincide");
  }
  if (never_fires(out))
    throw usage_error("cron expression '" + out.text_ +
                      "' never fires: no selected month has the selected day of month");
  return out;
}

bool cron_expr::has_nth() const {
  return std::any_of(nth_weekdays.begin(), nth_weekdays.end(), [](std::uint8_t bits) { return bits != 0; });
}

bool cron_expr::day_of_month_matches(int year, unsigned month, unsigned day) const {
  const unsigned last = last_day_of(year, month);
  if (nearest_weekday != 0) return day == nearest_weekday_in(year, month, static_cast<unsigned>(nearest_weekday));
  return days.test(day) || (last_day && day == last);
}

bool cron_expr::day_of_week_matches(int year, unsigned month, unsigned day) const {
  const unsigned weekday = weekday_of(year, month, day);
  if (!has_nth()) return weekdays.test(weekday);
  const unsigned bits = nth_weekdays[weekday];
  const unsigned nth = (day - 1) / 7 + 1;
  const bool last = day + 7 > last_day_of(year, month);
  return (bits & (1u << nth)) != 0 || (last && (bits & (1u << last_weekday_bit)) != 0);
}

bool cron_expr::day_matches(int year, int month, int day) const {
  if (month < 1 || month > 12 || day < 1 || day > 31) return false;
  const auto m = static_cast<unsigned>(month);
  const auto d = static_cast<unsigned>(day);
  if (!months.test(m) || d > last_day_of(year, m)) return false;
  // Vixie cron: when both day fields are restricted a day matching either one fires. As in
  // croniter, `#`/`L` weekdays still narrow the day-of-month side.
  if (day_restricted && weekday_restricted)
    return (day_of_month_matches(year, m, d) && (!has_nth() || day_of_week_matches(year, m, d))) ||
           day_of_week_matches(year, m, d);
  return (!day_restricted || day_of_month_matches(year, m, d)) &&
         ((!weekday_restricted && !has_nth()) || day_of_week_matches(year, m, d));
}

bool cron_expr::matches(int year, int month, int day, int hour, int minute) const {
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59) return false;
  return day_matches(year, month, day) && hours.test(static_cast<std::size_t>(hour)) &&
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
    if (day_matches(static_cast<int>(ymd.year()), static_cast<int>(month),
                    static_cast<int>(static_cast<unsigned>(ymd.day())))) {
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
    if (day_matches(static_cast<int>(ymd.year()), static_cast<int>(month),
                    static_cast<int>(static_cast<unsigned>(ymd.day())))) {
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
