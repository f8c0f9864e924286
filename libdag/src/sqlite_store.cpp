/// @file The SQLite backend of the store core: one connection per store object, WAL journal, one
/// IMMEDIATE transaction per write, and the hot path's statements prepared once and run row by
/// row, their text bound without copying.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>

#include "sqlite_wal_vfs.hpp"
#include "store_core.hpp"

namespace dag::detail {
namespace {

/// How long a writer waits for another connection's write transaction before giving up. Writes
/// are short (one scheduler step), so 5 s only runs out when something is badly stuck.
constexpr int busy_timeout_ms = 5000;

/// A prepared statement, through SQLite's own API so that text binds by length without a copy.
class statement {
public:
  statement(sqlite3* db, const std::string& sql) : db_(db) {
    check(sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size() + 1), SQLITE_PREPARE_PERSISTENT, &stmt_,
                             nullptr));
  }
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  /// Binds `values` to the parameters ?1, ?2, …; text is not copied, so it must outlive the run.
  void bind(std::span<const value> values) {
    int index = 0;
    for (const value& v : values) {
      ++index;
      if (const auto* number = std::get_if<std::int64_t>(&v)) check(sqlite3_bind_int64(stmt_, index, *number));
      else if (const auto* text = std::get_if<std::string_view>(&v))
        check(sqlite3_bind_text(stmt_, index, text->data(), static_cast<int>(text->size()), SQLITE_STATIC));
      else check(sqlite3_bind_null(stmt_, index));
    }
  }
  /// Steps once: true when a row is ready.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) check(rc);
    return false;
  }
  /// Runs a statement that returns no rows and makes it ready to run again; returns the number
  /// of rows it changed.
  std::size_t run() {
    step();
    sqlite3_reset(stmt_);
    return static_cast<std::size_t>(sqlite3_changes(db_));
  }

  /// The current row's columns; text stays valid until the next step.
  void columns(std::vector<value>& out) const {
    out.clear();
    for (int c = 0; c < sqlite3_column_count(stmt_); ++c) {
      const int type = sqlite3_column_type(stmt_, c);
      if (type == SQLITE_NULL) out.emplace_back();
      else if (type == SQLITE_INTEGER) out.emplace_back(std::int64_t{sqlite3_column_int64(stmt_, c)});
      else out.emplace_back(std::string_view(reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c)),
                                               static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))));
    }
  }

  /// A use of the statement: ends reset, even on error, so that a SELECT stopped mid-way keeps no
  /// read snapshot open (which would stop WAL checkpoints), and with no binding left pointing at
  /// text that is gone.
  class use {
  public:
    explicit use(statement& s) : s_(s) {}
    ~use() {
      sqlite3_reset(s_.stmt_);
      sqlite3_clear_bindings(s_.stmt_);
    }
    use(const use&) = delete;
    use& operator=(const use&) = delete;

  private:
    statement& s_;
  };

private:
  void check(int rc) const {
    if (rc != SQLITE_OK) throw SQLite::Exception(db_, rc);
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

/// Checkpoints a database's WAL from a thread and a connection of its own, so that a
/// checkpoint's two fsyncs (the WAL's, then the database file's: 2-20 ms each on a real disk)
/// do not stop the writer. SQLite's own automatic checkpoint runs them inline after the commit
/// that crosses 1,000 WAL pages: on ext4 that was most of the difference between a 10,000-task
/// chain on disk and on tmpfs. Durability is unchanged: commits never sync (synchronous=NORMAL,
/// as before), a checkpoint syncs the WAL before it copies it into the database, as before.
///
/// The writer's WAL hook (`committed`, after each commit) asks for a passive checkpoint once
/// `background_pages` pages were written since the last one. A passive checkpoint copies only the
/// frames present when it starts, and SQLite starts the WAL over only when a write begins with
/// every frame copied: a writer that never pauses would grow the WAL for ever. So the writer still
/// checkpoints itself at `writer_pages` (that one copies what the background left: little), and
/// at `background_pages` when the thread cannot be had.
class wal_checkpointer {
public:
  static constexpr int background_pages = 1000;  // SQLite's default wal_autocheckpoint
  static constexpr int writer_pages = 4 * background_pages;

  /// `path`: the database file's own path, as SQLite resolved it (sqlite3_db_filename), opened as a
  /// plain path: never a URI, nor relative to a working directory that may change.
  explicit wal_checkpointer(std::string path) : path_(std::move(path)) {}
  ~wal_checkpointer() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
    if (db_) sqlite3_close_v2(db_);
  }
  wal_checkpointer(const wal_checkpointer&) = delete;
  wal_checkpointer& operator=(const wal_checkpointer&) = delete;

  /// Called by the writer after each commit, with the WAL's size in frames. Inside sqlite3_step:
  /// nothing may unwind through SQLite's frames, so a failure here only turns the thread off.
  void committed(sqlite3* writer, const char* schema, int pages) noexcept {
    int copied = copied_.load(std::memory_order_relaxed);
    if (pages < copied || pages < asked_at_) {  // the WAL started over since the last background checkpoint
      copied = 0;
      asked_at_ = 0;
      copied_.store(0, std::memory_order_relaxed);
    }
    // While the thread has no connection (it could not open one yet), the writer checkpoints as
    // SQLite would, and still asks the thread, which tries to open it again at each ask.
    const bool unopened = unopened_.load(std::memory_order_relaxed);
    if (pages >= writer_pages || ((broken_ || unopened) && pages >= background_pages)) {
      sqlite3_wal_checkpoint_v2(writer, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);  // busy: next commit
      if (!unopened) return;
    }
    // Asked again only background_pages after the last ask too: a checkpoint that cannot advance
    // (a reader holding an old snapshot, another process checkpointing) is not asked for at
    // every commit; nor is an open that failed tried again sooner.
    if (pages - std::max(copied, asked_at_) < background_pages || broken_) return;
    asked_at_ = pages;
    try {
      std::lock_guard lock(mutex_);
      if (wanted_) return;
      wanted_ = true;
      if (!thread_.joinable()) thread_ = std::jthread([this](std::stop_token stop) { work(stop); });
      wake_.notify_one();
    } catch (...) {
      broken_ = true;  // no thread (or lock) to be had: the writer checkpoints, as SQLite would
    }
  }

private:
  void work(std::stop_token stop) {
    std::unique_lock lock(mutex_);
    while (wake_.wait(lock, stop, [&] { return wanted_; })) {
      lock.unlock();
      // A connection learns that the database is in WAL mode on its first read: until then a
      // checkpoint does nothing.
      // An open that fails (no file descriptor to be had, say) is tried again at the next ask.
      if (!db_ && (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK ||
                   sqlite3_busy_timeout(db_, 5000) != SQLITE_OK ||
                   sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) != SQLITE_OK)) {
        sqlite3_close_v2(db_);
        db_ = nullptr;
      }
      unopened_.store(db_ == nullptr, std::memory_order_relaxed);
      int frames = 0, done = 0;
      if (db_ && sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames, &done) == SQLITE_OK && done >= 0)
        copied_.store(done, std::memory_order_relaxed);
      lock.lock();
      wanted_ = false;
    }
  }

  std::string path_;
  sqlite3* db_ = nullptr;        // the thread's connection, opened on its first checkpoint
  std::atomic<int> copied_ = 0;  // WAL frames the latest background checkpoint left copied
  int asked_at_ = 0;             // the WAL's frames when a checkpoint was last asked for (the writer's)
  std::atomic<bool> broken_ = false;    // no thread to be had: the writer checkpoints for good
  std::atomic<bool> unopened_ = false;  // the thread's last open failed: the writer checkpoints until one succeeds
  std::mutex mutex_;
  std::condition_variable_any wake_;
  bool wanted_ = false;  // a checkpoint is asked for or running
  std::jthread thread_;  // last: stopped and joined first
};

/// The SQL of `w`: one statement per row, the row's values its parameters.
std::string sql_of(const row_write& w) {
  const auto parameter = [](std::size_t i) { return "?" + std::to_string(i + 1); };
  if (w.what == row_write::verb::insert)
    return "INSERT INTO " + w.table + " (" + w.names() + ") VALUES (" + w.refs(parameter) + ") " + w.clause;
  const std::string where = " WHERE " + w.expand(w.condition, parameter);
  if (w.what == row_write::verb::copy) return "INSERT INTO " + w.table + " " + w.from + where + " " + w.clause;
  if (w.what == row_write::verb::remove) return "DELETE FROM " + w.table + " AS r" + where;
  return "UPDATE " + w.table + " AS r SET " + w.expand(w.clause, parameter) + where;
}

/// The SQLite store. One object is one SQLite connection, opened without SQLite's own mutex, so it
/// must be used from one thread at a time (open one store per thread); SQLite's file locks, the WAL
/// and the busy timeout arbitrate between store objects and processes sharing a file. No global
/// state but SQLite's memory statistics turned off (sqlite_memory_statistics_off) and the WAL's VFS
/// registered: everything else, the statement cache included, lives in the object.
class sqlite_store final : public store_core, private session {
public:
  /// Opens (creating if missing) and migrates the database at `path`.
  explicit sqlite_store(const std::string& path);
  ~sqlite_store() override {
    if (checkpointer_) sqlite3_wal_hook(db_.getHandle(), nullptr, nullptr);  // the hook's object goes first
  }
  sqlite_store(const sqlite_store&) = delete;
  sqlite_store& operator=(const sqlite_store&) = delete;

private:
  void run(const char* what, access mode, const std::function<void(session&)>& body) override;

  std::size_t exec(std::string_view sql, std::span<const value> params,
                   const std::function<void(std::span<const value>)>& each) override;
  void script(std::string_view sql) override { db_.exec(std::string(sql)); }
  std::vector<bool> write(const row_write& w, std::size_t count, const row_source& rows, const on_lost* lost) override;

  /// The cached statement for `sql`, prepared on first use; `$N` parameters become SQLite's `?N`.
  statement& prepared(std::string_view sql);

  bool read_only_;  // opened for reading only (see read_only_database): every write fails
  SQLite::Database db_;
  // Declared after db_ so that its connection closes (and its thread stops) before the writer's,
  // whose close then checkpoints and removes the WAL as the last connection of this process.
  std::unique_ptr<wal_checkpointer> checkpointer_;
  // Declared after db_ so that every statement is finalized before the connection closes.
  std::map<std::string, std::unique_ptr<statement>, std::less<>> statements_;
  std::unordered_map<const row_write*, statement*> writes_;
};

dialect sqlite_dialect() {
  return {{{"key", "TEXT"}, {"instant", "INTEGER"}, {"flag", "INTEGER NOT NULL DEFAULT 0"}, {"row_id", "INTEGER PRIMARY KEY"},
           {"without_rowid", " WITHOUT ROWID"}},
          "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
          ""};  // BEGIN IMMEDIATE already serializes writers
}

// Whether this process may not write the existing database at `path`: the file, or the folder
// where SQLite keeps its WAL and shared-memory files beside it, is read-only (mode 0444,
// read-only media), for the effective user.
bool read_only_database(const std::string& path) {
  if (path.empty() || path == ":memory:" || ::faccessat(AT_FDCWD, path.c_str(), F_OK, AT_EACCESS) != 0) return false;
  const auto folder = std::filesystem::path(path).parent_path();
  return ::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) != 0 ||
         ::faccessat(AT_FDCWD, folder.empty() ? "." : folder.c_str(), W_OK, AT_EACCESS) != 0;
}

// A read-only database opens as a read-only URI, which still takes SQLite's locks and reads its
// WAL, so a daemon may go on writing it (another user's file). Where SQLite could not even make
// the shared-memory file that needs (a read-only folder without one: read-only media), it opens
// as immutable: no locks, no WAL (nothing can write it there; a WAL left unmerged is not read).
std::string read_only_uri(const std::string& path) {
  const auto folder = std::filesystem::path(path).parent_path();
  std::error_code ec;
  const bool immutable = ::faccessat(AT_FDCWD, folder.empty() ? "." : folder.c_str(), W_OK, AT_EACCESS) != 0 &&
                         !std::filesystem::exists(path + "-shm", ec);
  std::string out = "file:";
  for (const char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      constexpr char hex[] = "0123456789ABCDEF";
      const auto byte = static_cast<unsigned char>(c);
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 15];
    } else {
      out += c;
    }
  }
  return out + (immutable ? "?immutable=1" : "?mode=ro");
}

// SQLite counts the memory it allocates (SQLITE_CONFIG_MEMSTATUS, on by default), under a mutex
// of the whole process taken around every malloc and free it makes: with the text binds and
// record buffers of a scheduler step, about 8 % of the instructions of a store's writer. Nothing
// in dagrun reads those counts (sqlite3_memory_used), so they are turned off, once, before SQLite
// first initializes in this process; a program that used SQLite before keeps them (sqlite3_config
// then refuses, and nothing changes). Besides its VFS (sqlite_wal_vfs.hpp), this is the only
// process-wide SQLite setting dagrun makes. sqlite3_config must not run while another thread
// initializes SQLite: the first store opens before any try (a SQL task's own connection) runs.
bool sqlite_memory_statistics_off() {
  static const bool off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  return off;
}

// The handler of a constructor's function-try-block may use parameters but not members.
sqlite_store::sqlite_store(const std::string& path) try
    : store_core(sqlite_dialect(), path),
      read_only_((sqlite_memory_statistics_off(), read_only_database(path))),
      db_((read_only_ ? read_only_uri(path) : path).c_str(),
          read_only_ ? SQLite::OPEN_READONLY | SQLite::OPEN_URI | SQLite::OPEN_NOMUTEX
                     : SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX,
          busy_timeout_ms,
          // The WAL's writes of a commit in one system call (sqlite_wal_vfs.hpp); the default VFS
          // where it could not be registered.
          read_only_ ? nullptr : sqlite_wal_vfs_name()) {
  // Opening is lazy: a directory or unreadable file first fails here, still inside the try.
  db_.exec("PRAGMA foreign_keys = ON");  // per connection; the cascades of clean() need it
  if (!read_only_) {
    db_.exec("PRAGMA journal_mode = WAL");  // readers never block the writer, nor it them
    // No fsync per commit (the hot path needs that): a power cut may lose the latest commits but
    // never corrupts the file.
    db_.exec("PRAGMA synchronous = NORMAL");
    // Checkpoints off the writer's thread (see wal_checkpointer); this hook replaces SQLite's
    // automatic checkpoint. The thread opens the file the writer has open, by the absolute path
    // SQLite resolved: the same file whatever the working directory is then, and whether `path`
    // was a plain path or a `file:` URI (which this SQLite build reads as one). An in-memory or
    // temporary database has no file name here, and no WAL.
    const char* file = sqlite3_db_filename(db_.getHandle(), "main");
    if (file && *file) {
      checkpointer_ = std::make_unique<wal_checkpointer>(file);
      sqlite3_wal_hook(
          db_.getHandle(),
          [](void* self, sqlite3* db, const char* schema, int pages) {
            static_cast<wal_checkpointer*>(self)->committed(db, schema, pages);
            return SQLITE_OK;
          },
          checkpointer_.get());
    }
  }
  migrate();  // only reads when the schema is current; a read-only database that is not fails
} catch (const SQLite::Exception& e) {
  throw database_error(path, std::string("cannot open the database: ") + e.what());
}

void sqlite_store::run(const char* what, access mode, const std::function<void(session&)>& body) {
  try {
    if (mode == access::read) return body(*this);
    if (read_only_)
      throw database_error(label(), "cannot " + std::string(what) +
                                        ": the database is read-only here (the file or its folder cannot be written)");
    // BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy timeout), because a
    // deferred transaction that reads first and writes later can fail with SQLITE_BUSY_SNAPSHOT in
    // WAL mode without waiting.
    prepared("BEGIN IMMEDIATE").run();
    try {
      body(*this);
      prepared("COMMIT").run();
    } catch (...) {
      db_.tryExec("ROLLBACK");  // fails harmlessly when SQLite already rolled back
      throw;
    }
  } catch (const SQLite::Exception& e) {
    throw database_error(label(), "cannot " + std::string(what) + ": " + e.what());
  }
}

statement& sqlite_store::prepared(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    std::string text(sql);
    for (std::size_t i = 0; i + 1 < text.size(); ++i)
      if (text[i] == '$' && text[i + 1] >= '0' && text[i + 1] <= '9') text[i] = '?';
    it = statements_.emplace(std::string(sql), std::make_unique<statement>(db_.getHandle(), text)).first;
  }
  return *it->second;
}

std::size_t sqlite_store::exec(std::string_view sql, std::span<const value> params,
                               const std::function<void(std::span<const value>)>& each) {
  statement& s = prepared(sql);
  const statement::use in_use(s);
  s.bind(params);
  std::vector<value> row;
  while (s.step()) {
    s.columns(row);
    if (each) each(row);
  }
  return static_cast<std::size_t>(sqlite3_changes(db_.getHandle()));
}

std::vector<bool> sqlite_store::write(const row_write& w, std::size_t count, const row_source& rows,
                                      const on_lost* lost) {
  if (count == 0) return {};
  const auto prepared_write = [&](const row_write& of) -> statement& {
    auto it = writes_.find(&of);
    return it != writes_.end() ? *it->second : *writes_.emplace(&of, &prepared(sql_of(of))).first->second;
  };
  statement& s = prepared_write(w);
  statement& insert = lost != nullptr ? prepared_write(lost->insert) : s;
  const statement::use in_use(s), insert_in_use(insert);
  std::vector<value> row;
  std::vector<bool> won(count);
  for (std::size_t i = 0; i < count; ++i) {
    rows(i, row);
    s.bind(row);
    won[i] = s.run() == 1;
    if (won[i] || lost == nullptr || !lost->applies(i)) continue;
    insert.bind(std::span(row).first(lost->insert.given.size()));
    insert.run();
    won[i] = s.run() == 1;  // still bound
  }
  return won;
}

}  // namespace

std::unique_ptr<store> open_sqlite_store(const std::string& path) { return std::make_unique<sqlite_store>(path); }

bool sqlite_answers(const std::string& path, std::chrono::milliseconds within) {
  sqlite_memory_statistics_off();
  SQLite::Database db(path, SQLite::OPEN_READONLY, static_cast<int>(within.count()));
  db.exec("SELECT count(*) FROM sqlite_master");
  return true;
}

}  // namespace dag::detail
