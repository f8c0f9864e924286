// `dagrun schedule`: the daemon. Creates due runs, runs their tasks, reloads changed DAG files.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <ostream>
#include <thread>
#include <utility>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <dag/exec/queue_executor.hpp>
#include <dag/http/serve.hpp>
#include "session.hpp"

namespace po = boost::program_options;

namespace dagrun {
namespace {

// Tells the daemon when its DAGs folder changes (inotify on the folder, or on the folder of a
// single DAG file), from a thread of its own that calls `on_change`: an edit is reloaded at once
// instead of at the next look. A folder that does not exist yet is waited for in its parent and
// watched itself once it appears. Where inotify cannot watch (no inotify, too many watches, the
// parent missing too: retried every second) active() is false and the daemon looks every second.
class folder_watch {
public:
  folder_watch(const std::string& path, std::function<void()> on_change) : path_(path), on_change_(std::move(on_change)) {
    if (path_.empty()) path_ = ".";
    std::error_code ec;
    // A path that is not a folder (yet) is a single DAG file or a folder still to be made: its
    // parent tells of both.
    is_file_ = std::filesystem::exists(path_, ec) && !std::filesystem::is_directory(path_, ec);
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd_ < 0 || stop_fd_ < 0) return;
    add_watch();
    thread_ = std::thread([this] { watch(); });
  }
  ~folder_watch() {
    if (thread_.joinable()) {
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto n = ::write(stop_fd_, &one, sizeof one);
      thread_.join();
    }
    if (fd_ >= 0) ::close(fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
  }
  folder_watch(const folder_watch&) = delete;
  folder_watch& operator=(const folder_watch&) = delete;

  // True while the folder is watched: a change is told at once.
  bool active() const { return watching_.load(); }
  // Whether the folder changed since the last call.
  bool take_change() { return changed_.exchange(false); }

private:
  // Watches the folder itself when it is one, else its parent (the folder made later shows there).
  void add_watch() {
    constexpr std::uint32_t mask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
                                   IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
    if (wd_ >= 0) ::inotify_rm_watch(fd_, wd_);
    std::error_code ec;
    in_parent_ = is_file_ || !std::filesystem::is_directory(path_, ec);
    auto target = in_parent_ ? path_.parent_path() : path_;
    if (target.empty()) target = ".";
    wd_ = ::inotify_add_watch(fd_, target.c_str(), mask);
    watching_ = wd_ >= 0;
    if (watching_ && !in_parent_) spdlog::info("watching DAGs folder {}", path_.string());
  }
  // Reads every event queued now; false when there was none.
  bool drain() {
    alignas(struct inotify_event) char buffer[16384];
    bool any = false;
    for (;;) {
      const ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n <= 0) return any;
      for (ssize_t at = 0; at < n;) {
        const auto* e = reinterpret_cast<const struct inotify_event*>(buffer + at);
        if (e->wd == wd_ && (e->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))) watching_ = false;  // it left
        at += static_cast<ssize_t>(sizeof(struct inotify_event) + e->len);
      }
      any = true;
    }
  }
  void watch() {
    for (;;) {
      pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      // While nothing is watched (the folder and its parent missing), try again every second.
      if (::poll(fds, 2, watching_ ? -1 : 1000) < 0 && errno != EINTR) return;
      if (fds[1].revents) return;
      bool any = drain();
      // An editor or a copy writes a file in several steps: tell once the writes have paused for
      // settle_ (at most max_settle_ after the first), so the reload reads the finished file and
      // a rewrite of the same size is not hidden in the same timestamp tick as the read before it.
      if (any) {
        const auto until = std::chrono::steady_clock::now() + max_settle_;
        while (std::chrono::steady_clock::now() < until) {
          pollfd again[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
          const int ready = ::poll(again, 2, static_cast<int>(settle_.count()));
          if (ready < 0 && errno != EINTR) return;
          if (again[1].revents) return;
          if (ready == 0) break;
          drain();
        }
      }
      std::error_code ec;
      // Gone (watch it again, or its parent), or made at last (watch it, not its parent).
      if (!watching_ || (in_parent_ && !is_file_ && std::filesystem::is_directory(path_, ec))) {
        add_watch();
        if (watching_) any = true;  // back (or a new folder): whatever it holds now counts
      }
      if (any) {
        changed_ = true;
        on_change_();
      }
    }
  }

  static constexpr std::chrono::milliseconds settle_{50};
  static constexpr std::chrono::milliseconds max_settle_{1000};
  std::filesystem::path path_;
  std::function<void()> on_change_;
  int fd_ = -1, stop_fd_ = -1, wd_ = -1;
  bool is_file_ = false;    // the path named a single DAG file at start
  bool in_parent_ = false;  // the parent is watched (the path is a file, or no folder yet); the watcher thread's
  std::atomic<bool> watching_{false};
  std::atomic<bool> changed_{false};
  std::thread thread_;
};

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
  dag::dag_folder_loader loader(inv.global.dags_folder, inv.operators);
  loader.refresh();
  auto folder = with_program_dags(inv, loader.folder(), true);
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
  // The engine keeps the DAGs; `folder` keeps its problems (the import errors) only.
  const std::size_t loaded = folder.dags.size();
  eng.set_dags(std::exchange(folder.dags, {}));
  if (auto lost = eng.recover_lost_tries())
    spdlog::warn("{} tries were left running by a previous scheduler; recorded as failed (executor lost)", lost);
  spdlog::info("scheduling {} DAGs from {} with {} slots", loaded, inv.global.dags_folder, parallelism);

  // The folder is looked at when the watch says it changed; besides, every 10 s (a DAG file that
  // is a link to a file elsewhere changes without an event here), or every second unwatched.
  folder_watch watch(inv.global.dags_folder, [&eng] { eng.wake(); });
  auto last_look = std::chrono::steady_clock::now(), last_check = last_look;
  auto waiting = eng.waiting_dags();
  std::optional<std::size_t> reloaded;  // DAGs loaded by a reload whose import errors are not yet recorded
  std::size_t read_again = 0;           // files read since the last reload said so
  auto reload_if_changed = [&] {
    const auto now = std::chrono::steady_clock::now();
    const bool look = watch.take_change() || now - last_look >= std::chrono::seconds(watch.active() ? 10 : 1);
    const bool check_waiting = now - last_check >= std::chrono::seconds(1);
    if (!look && !check_waiting) return false;
    if (check_waiting) last_check = now;
    if (look) {
      last_look = now;
      read_again += loader.refresh();
    }
    if (look && loader.changed()) {
      // Only the files that changed were read again; the others' DAGs are kept as they were.
      folder = with_program_dags(inv, loader.folder(), true);
      reloaded = folder.dags.size();
      eng.set_dags(std::exchange(folder.dags, {}));
    }
    auto now_waiting = eng.waiting_dags();
    if (!reloaded && now_waiting == waiting) return false;
    // A DAG file gone while its DAG has unfinished runs is an import error until it is back or
    // the runs end; one gone without any simply leaves the loaded DAGs. Should the store fail
    // here, the next look records them again (`reloaded` and `waiting` move on only once they are in).
    record_import_errors(*db, folder, now_waiting, inv.global.dags_folder);
    waiting = std::move(now_waiting);
    // Said once the import errors are in the store, so whoever reads the line finds them there.
    if (reloaded) {
      const std::size_t loaded_now = *std::exchange(reloaded, std::nullopt), read = std::exchange(read_again, 0);
      spdlog::info("reloaded DAGs: {} loaded, {} import errors ({} {} read again)", loaded_now, folder.problems.size(), read,
                   read == 1 ? "file" : "files");
    }
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
