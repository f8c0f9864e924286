/// @file Run-type names, Airflow run ids, and `open_store`: from a `--db` URL to a store.
///
/// Accepted `--db` URLs (PRODUCT.md's default is `sqlite:dagrun.db`):
///  - `sqlite:PATH`: PATH as written, relative to the working directory unless it starts with
///    `/` (`sqlite:dagrun.db`, `sqlite:/var/lib/dagrun/dagrun.db`). `sqlite::memory:` is a
///    private in-memory database that is gone when the store is destroyed.
///  - `sqlite:///PATH`: SQLAlchemy's form, as in Airflow's `sql_alchemy_conn`, so that a URL
///    copied from `airflow.cfg` means the same file: the three slashes are the scheme's `//` and an
///    empty host, so `sqlite:///dagrun.db` is relative and `sqlite:////var/lib/dagrun.db` is
///    absolute. A host (`sqlite://dagrun.db`) is refused rather than guessed at, because SQLAlchemy
///    refuses it too and the two readings (file or host) differ.
///  - `postgresql://…` (also `postgres://…`, `postgresql+driver://…` as in SQLAlchemy): a libpq
///    connection URI (`postgresql://user:password@host:5432/dagrun?sslmode=require`); errors name
///    the host and database, never the password.
/// A bare path (`dagrun.db`) is refused with a hint: without a scheme a mistyped Postgres URL
/// would silently become a new, empty SQLite file. Errors about other schemes name the scheme,
/// never the URL, because a database URL may carry a password.

#include <dag/store/store.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include <algorithm>

#include <nlohmann/json.hpp>

#include <dag/core/error.hpp>
#include <dag/core/json_text.hpp>

#include "store_core.hpp"

namespace dag {
namespace {

constexpr std::array<std::string_view, 4> run_type_names{"scheduled", "manual", "backfill", "dataset_triggered"};

/// The SQLite file named by what follows `sqlite:` in a URL.
std::string sqlite_path(std::string_view rest) {
  if (rest.starts_with("//")) {
    std::string_view after_slashes = rest.substr(2);
    if (!after_slashes.starts_with('/'))
      throw usage_error(after_slashes.empty()
                            ? "database URL 'sqlite://' names no file; use sqlite:PATH (e.g. sqlite:dagrun.db)"
                            : "database URL 'sqlite://" + std::string(after_slashes) +
                                  "' names a host; use sqlite:PATH (e.g. sqlite:" + std::string(after_slashes) +
                                  ") or sqlite:///PATH as in Airflow");
    rest = after_slashes.substr(1);  // the empty host's closing slash
  }
  if (rest.empty()) throw usage_error("database URL 'sqlite:' names no file; use sqlite:PATH (e.g. sqlite:dagrun.db)");
  return std::string(rest);
}

}  // namespace

std::string_view to_string(run_type t) { return run_type_names[static_cast<std::size_t>(t)]; }

std::optional<run_type> parse_run_type(std::string_view name) {
  for (std::size_t i = 0; i < run_type_names.size(); ++i)
    if (run_type_names[i] == name) return static_cast<run_type>(i);
  return std::nullopt;
}

std::string make_run_id(run_type t, time_point logical_date) {
  return std::string(to_string(t)) + "__" + format_iso(logical_date);
}

std::string mapped_xcom_list(std::vector<xcom_record> rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const xcom_record& a, const xcom_record& b) { return a.map_index < b.map_index; });
  auto list = nlohmann::json::array();
  for (const auto& r : rows) {
    auto parsed = nlohmann::json::parse(r.value, nullptr, false);
    list.push_back(parsed.is_discarded() ? nlohmann::json(r.value) : std::move(parsed));
  }
  return json_dump(list);  // an instance's text that is not UTF-8 (a task's output) must not throw
}

std::unique_ptr<store> open_store(const std::string& url) {
  const std::string_view text{url};
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos)  // no `user:password` either, so the text is safe to show
    throw usage_error("database URL '" + url + "' has no scheme; use sqlite:" + (url.empty() ? "dagrun.db" : url) +
                      " for a SQLite file or postgresql://… for PostgreSQL");
  if (colon == 0) throw usage_error("database URL has no scheme; use sqlite:PATH (e.g. sqlite:dagrun.db) or postgresql://…");
  const std::string_view scheme = text.substr(0, colon);
  if (scheme == "sqlite") return detail::open_sqlite_store(sqlite_path(text.substr(colon + 1)));
  if (scheme == "postgresql" || scheme == "postgres" || scheme.starts_with("postgresql+"))
    return detail::open_postgres_store(url);
  throw usage_error("unsupported database URL scheme '" + std::string(scheme) +
                    "'; use sqlite:PATH (e.g. sqlite:dagrun.db) or postgresql://…");
}

bool database_answers(const std::string& url, std::chrono::milliseconds within) {
  try {
    const std::string_view text{url};
    if (text.starts_with("sqlite:")) return detail::sqlite_answers(sqlite_path(text.substr(7)), within);
    return detail::postgres_answers(url, within);
  } catch (const std::exception&) {
    return false;
  }
}

std::string pool_json(const pool_record& p) {
  std::string out = "{\"name\": ";
  append_json_string(out, p.name);
  out += ", \"slots\": " + std::to_string(p.slots) + ", \"occupied_slots\": " + std::to_string(p.occupied_slots()) +
         ", \"running_slots\": " + std::to_string(p.running_slots) + ", \"queued_slots\": " + std::to_string(p.queued_slots) +
         ", \"open_slots\": " + std::to_string(p.open_slots()) + ", \"description\": ";
  if (p.description.empty()) out += "null";
  else append_json_string(out, p.description);
  return out + "}";
}

}  // namespace dag
