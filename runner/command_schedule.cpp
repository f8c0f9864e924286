// `dagrun schedule`: the daemon. Creates due runs, runs their tasks, reloads changed DAG files.
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <ostream>

#include <cstdlib>

#include <spdlog/spdlog.h>

#include <dag/exec/queue_executor.hpp>
#include <dag/http/serve.hpp>
#include "session.hpp"

namespace po = boost::program_options;

namespace dagrun {
namespace {

// What the DAGs folder looks like now: a change in any file's name, size or time means reload.
std::vector<std::tuple<std::string, std::uintmax_t, std::filesystem::file_time_type>> folder_signature(
    const std::string& path) {
  std::vector<std::tuple<std::string, std::uintmax_t, std::filesystem::file_time_type>> out;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    for (const auto& e : std::filesystem::directory_iterator(path, ec))
      if (e.is_regular_file(ec)) out.emplace_back(e.path().string(), e.file_size(ec), e.last_write_time(ec));
  } else if (std::filesystem::exists(path, ec)) {
    out.emplace_back(path, std::filesystem::file_size(path, ec), std::filesystem::last_write_time(path, ec));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The folder's problems and the DAGs whose runs wait for their file, as the API and the UI show them.
void record_import_errors(dag::store& db, const dag::dag_folder& folder, const std::vector<dag::waiting_dag>& waiting,
                          const std::string& dags_folder) {
  const auto errors = dag::import_errors_of(folder, waiting, dags_folder);
  db.set_import_errors(errors);
  for (const auto& e : errors) spdlog::error("import error: {}", e.message);
}

int schedule_command(invocation& inv) {
  const std::string executor = inv.args["executor"].as<std::string>();
  if (executor != "local" && executor != "queue")
    throw dag::usage_error("--executor: expected local or queue, got '" + executor + "'");
  if (executor == "queue" && !inv.global.db.starts_with("postgres"))
    throw dag::usage_error("--executor queue: the queue lives in PostgreSQL; give --db postgresql://…");
  // The HTTP face: on by default on loopback; beyond it only with a token (http_service checks).
  const std::string listen = inv.args["listen"].as<std::string>();
  dag::serve_options serving;
  serving.listen = listen;
  serving.listen_name = "--listen";
  if (const char* t = std::getenv("DAGRUN_API_TOKEN"); t && *t) serving.token = t;
  if (const char* u = std::getenv("DAGRUN_API_USERS"); u && *u) serving.users = dag::parse_api_users(u, "DAGRUN_API_USERS");
  if (const char* m = std::getenv("DAGRUN_API_MAX_PAGE_SIZE"); m && *m) serving.max_page_size = dag::parse_page_size(m, "DAGRUN_API_MAX_PAGE_SIZE");
  // With the queue executor the slots are rows in the queue, not threads of this process.
  const int parallelism = inv.args.count("parallelism")
                              ? bounded_flag(inv, "parallelism", 1, executor == "queue" ? max_queued_parallelism : max_threads)
                              : (executor == "queue" ? default_queued_parallelism : default_local_parallelism);
  const auto grace = std::chrono::seconds(bounded_flag(inv, "grace", 0, max_grace_seconds));
  const auto lease = std::chrono::milliseconds(bounded_flag(inv, "lease-ms", min_lease_ms, max_lease_ms));

  stop_on_signals signals;
  auto db = open_db(inv);
  auto folder = load_dags(inv, true);
  record_import_errors(*db, folder, dag::waiting_dags(*db, folder.dags), inv.global.dags_folder);
  dag::engine_options options;
  set_alert_options(options);
  if (options.base_url.empty() && listen != "none") options.base_url = "http://" + listen;
  options.parallelism = parallelism;
  options.log_folder = inv.global.logs;
  std::unique_ptr<dag::executor> runs_tries;
  std::string queue_url;
  if (executor == "queue") {
    queue_url = inv.global.db;
    runs_tries = std::make_unique<dag::queue_executor>(queue_url, lease);
  } else {
    options.spool_unrecorded_ends = true;  // the engine makes its local executor, with the spool
  }
  dag::engine eng(*db, inv.operators, inv.now, options, std::move(runs_tries));
  // The face follows the engine's DAGs, metrics and clock; it reads the store on a connection of its own.
  std::optional<dag::http_service> http;
  if (listen != "none") {
    serving.store_url = inv.global.db;
    serving.queue_url = queue_url;
    http.emplace(eng, serving);
    spdlog::info("serving HTTP on {}:{}", listen.substr(0, listen.rfind(':')), http->port());
  }
  eng.set_dags(engine_dags(folder));
  if (auto lost = eng.recover_lost_tries())
    spdlog::warn("{} tries were left running by a previous scheduler; recorded as failed (executor lost)", lost);
  spdlog::info("scheduling {} DAGs from {} with {} slots", folder.dags.size(), inv.global.dags_folder, parallelism);

  auto signature = folder_signature(inv.global.dags_folder);
  auto last_check = std::chrono::steady_clock::now();
  auto waiting = eng.waiting_dags();
  auto reload_if_changed = [&] {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_check < std::chrono::seconds(1)) return false;
    last_check = now;
    auto current = folder_signature(inv.global.dags_folder);
    if (current != signature) {
      signature = std::move(current);
      folder = load_dags(inv, true);
      eng.set_dags(engine_dags(folder));
      spdlog::info("reloaded DAGs: {} loaded, {} import errors", folder.dags.size(), folder.problems.size());
    } else if (eng.waiting_dags() == waiting) {
      return false;
    }
    // A DAG file gone while its DAG has unfinished runs is an import error until it is back or
    // the runs end; one gone without any simply leaves the loaded DAGs.
    waiting = eng.waiting_dags();
    record_import_errors(*db, folder, waiting, inv.global.dags_folder);
    return false;
  };
  // The store's own retries cover a restart or a failover; a longer outage makes a pass throw,
  // and the engine keeps what that pass took (ends of tries) for the next one: wait and go on.
  while (!signals.token().stop_requested()) {
    try {
      eng.run_until(reload_if_changed, signals.token());
    } catch (const dag::error& e) {
      spdlog::error("scheduler pass failed: {}; trying again", e.what());
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      cv.wait_for(lock, signals.token(), std::chrono::seconds(1), [] { return false; });
    }
  }
  spdlog::info("signal {}: no new tries; waiting up to {}s for {} running", signals.signal(), grace.count(), eng.running());
  try {
    eng.shutdown(grace);
  } catch (const dag::error& e) {
    // The store is still out of reach: the ends not recorded stay in the spool (local executor) or
    // the queue, and the next start records them.
    spdlog::error("scheduler stopped with ends not recorded: {}", e.what());
    return exit_failed;
  }
  spdlog::info("scheduler stopped");
  return exit_ok;
}

}  // namespace

void add_schedule_commands(std::vector<command>& out) {
  out.push_back({{"schedule"},
                 "schedule [--executor local|queue] [--parallelism N] [--grace S] [--lease-ms MS] [--listen HOST:PORT]",
                 "the daemon: creates due runs and runs their tasks; SIGTERM drains running tasks (--grace)",
                 [](po::options_description& d, po::positional_options_description&) {
                   d.add_options()("executor", po::value<std::string>()->default_value("local")->value_name("KIND"),
                                   "local (this process) or queue (`dagrun worker`s through PostgreSQL)")(
                       "parallelism", po::value<int>()->value_name("N"),
                       ("tries running at once (default " + std::to_string(default_local_parallelism) + " with the local executor, " +
                        std::to_string(default_queued_parallelism) + " with the queue: its workers' --concurrency bounds what runs)").c_str())(
                       "listen", po::value<std::string>()->default_value("127.0.0.1:8080")->value_name("HOST:PORT"),
                       "HTTP address of /health, /metrics and /api/v1 (port 0: any free one; `none`: no HTTP); "
                       "beyond loopback only with DAGRUN_API_TOKEN set")(
                       "grace", po::value<int>()->default_value(30)->value_name("SECONDS"),
                       "on SIGTERM, how long running tries may finish before they are killed")(
                       "lease-ms", po::value<int>()->default_value(30000)->value_name("MS"),
                       "queue: a worker that does not renew its lease this long has lost its tries");
                 },
                 schedule_command});
}

}  // namespace dagrun
