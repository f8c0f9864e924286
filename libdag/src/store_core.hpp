#pragma once
/// @file The store core, private to libdag: everything the SQLite and PostgreSQL stores share (the
/// schema, the column lists, the row mapping, the compare-and-set rules and every store method),
/// written once over a few backend hooks, as spdlog's base_sink does for sinks. A backend brings
/// its statement syntax, its types, its transactions and locking, and its batching: SQLite runs a
/// cached statement per row (sqlite_store.cpp); PostgreSQL one set-based statement per batch over
/// array parameters (one row over scalar ones), on a connection that survives restarts
/// (postgres_store.cpp).
///
/// Storage conventions (both backends):
///  - Every instant is an integer of microseconds since the Unix epoch (UTC); logical dates and
///    interval bounds are whole seconds stored the same way. NULL means "not set".
///  - States and run types are text holding their Airflow names, so the tables read well in a SQL
///    shell; a name this build does not know is an error, not a silent default.
///  - Key columns sort bytewise (PostgreSQL: COLLATE "C", as SQLite does), whatever the locale.
///  - Task instances, tries and XComs hang off their run by foreign keys with ON DELETE CASCADE, so
///    deleting a run (`db clean`) deletes everything of it.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <dag/core/error.hpp>
#include <dag/store/store.hpp>

namespace dag::detail {

/// How a column is stored; each backend has its own type for each.
enum class column_type { text, integer, instant, flag };

/// A column a statement writes.
struct column {
  std::string name;  ///< its name
  column_type type;  ///< its type
};

/// A statement parameter or a column of a result row: NULL, an integer (instants in microseconds,
/// flags 0 or 1) or text (a parameter's outlives the statement's execution; a column's lasts while
/// its row is looked at). PostgreSQL gives every column as text.
using value = std::variant<std::monostate, std::int64_t, std::string_view>;

/// A write applied to each row of a list, described once; each backend writes it as its own SQL
/// (a statement per row, or one per batch). In `clause` and `condition`, `{name}` stands for the
/// row's value of a given column and `r` for the table's row being written. An update, remove or
/// copy names each given column somewhere in them (a column given but unused is refused when the
/// statement is made: PostgreSQL could not type its parameter).
struct row_write {
  /// What the write does.
  enum class verb { insert, update, remove, copy };
  verb what = verb::insert;  ///< what it does
  std::string table;         ///< the table written
  std::vector<column> given; ///< what each row gives, in order; the key columns first
  std::size_t key_size = 0;  ///< how many leading columns identify the row written
  std::string clause;        ///< insert: what follows the values (ON CONFLICT …); update: the assignments
  std::string condition;     ///< update, remove: which row is written; copy: which rows are read
  /// copy: the columns of `table` it fills and the SELECT that fills them from the rows read, as
  /// `r` (`(a, b) SELECT r.x, r.y FROM source AS r`); `clause` follows (ON CONFLICT …).
  std::string from;
  /// A remove whose values are no secret: a backend may send it later, with the transaction's
  /// next statement (PostgreSQL: a one-row remove, in the same message, at the latest the
  /// COMMIT's), a round trip less. It still runs before every later statement; an error in it
  /// fails the transaction then. (Its row locks are taken then too: a deadlock it meets is
  /// retried, as any is.)
  bool deferrable = false;

  /// `text` with every `{name}` of a given column replaced by `ref(its index)`.
  std::string expand(std::string_view text, const std::function<std::string(std::size_t)>& ref) const;
  /// The first `count` given columns' names, comma-separated.
  std::string names(std::size_t count = std::string::npos) const;
  /// `ref(i)` for every given column, comma-separated.
  std::string refs(const std::function<std::string(std::size_t)>& ref) const;
};

/// The rows of a write, produced one at a time (a batch is never built as a whole): `rows(i, out)`
/// puts row i's values into `out`, replacing what it held.
using row_source = std::function<void(std::size_t i, std::vector<value>& out)>;

/// What happens to the rows of an update that lose: those for which `applies(i)` holds get
/// `insert` (of the row's first columns) and then the update again, right after their first try
/// and before any later row with the same key.
struct on_lost {
  const row_write& insert;                    ///< the insert
  std::function<bool(std::size_t)> applies;  ///< which rows
};

/// The statements of one transaction (or, for reads, of one connection), as a backend runs them.
class session {
public:
  /// Runs a statement whose parameters are `$1`, `$2`, …, calling `each` (if any) with every row
  /// it returns; returns how many rows it changed.
  virtual std::size_t exec(std::string_view sql, std::span<const value> params = {},
                           const std::function<void(std::span<const value>)>& each = {}) = 0;
  /// As `exec`, for a statement whose values are no secret: a backend may write them into the
  /// statement's text (PostgreSQL, where they then show in the server's activity view and in its
  /// log of a failed statement), so that the statement can share a message with others (the
  /// BEGIN, for a transaction's first). The pools a change set claims slots in are locked so.
  virtual std::size_t exec_inline(std::string_view sql, std::span<const value> params = {},
                                  const std::function<void(std::span<const value>)>& each = {}) {
    return exec(sql, params, each);
  }
  /// Runs statements that take no parameters (the schema's migrations).
  virtual void script(std::string_view sql) = 0;
  /// Applies `w` to rows 0 to `count` - 1 of `rows` as if one by one, in order; for updates, per
  /// row whether it won, after `lost` where given.
  virtual std::vector<bool> write(const row_write& w, std::size_t count, const row_source& rows,
                                  const on_lost* lost = nullptr) = 0;
  /// Writes `a` in this transaction when the backend knows its kind and its database is this one,
  /// telling it the task instance records of the claims that won (`started`); false (the
  /// default) when it does not, and the attachment is left to its owner.
  virtual bool attach(write_attachment& a, std::span<const task_instance_record* const> started) {
    (void)a;
    (void)started;
    return false;
  }
  /// Called at the start of each attempt, before its first statement, for a change set with an
  /// attachment: a backend that will write it (`attach`) lets it hold statements back for the
  /// transaction's first message. The default does nothing.
  virtual void open_attachment(write_attachment& a) { (void)a; }

protected:
  ~session() = default;
};

/// What the core needs to know of a backend's SQL.
struct dialect {
  /// The schema's types: `key` (text ordered bytewise), `instant` (64-bit integer), `flag` (with
  /// its default, false) and `row_id` (an integer primary key the database draws); and the
  /// table option `without_rowid` (rows kept in the primary key's B-tree, where the backend can).
  std::map<std::string, std::string, std::less<>> types;
  std::string has_schema_version;  ///< a query giving 1 when table schema_version exists, else 0
  std::string migration_lock;      ///< run first when migrating, to serialize migrations ("" if not needed)
  /// Appended to a SELECT of one row to lock it until the transaction ends (PostgreSQL's
  /// `FOR UPDATE`); "" where write transactions are serialized anyway (SQLite's BEGIN IMMEDIATE),
  /// which also lets a claim's pool be read with its count, unlocked (store_core::admitted_claims).
  std::string row_lock = {};
};

/// A dag::error about the database `label` (its path, `host:port/database`): `LABEL: message`.
error database_error(const std::string& label, const std::string& message);

/// What a transaction does: a read, or a write applied wholly or not at all.
enum class access { read, write };

/// The store every backend is: every method written once over the backend's `run`.
class store_core : public store {
public:
  void migrate() final;
  int schema_version() final;

  void set_paused(const std::string& dag_id, bool paused) final;
  std::set<std::string> paused_dags() final;
  void set_import_errors(const std::vector<import_error_record>& errors) final;
  std::vector<import_error_record> import_errors() final;

  change_result apply(const change_set& changes) final;

  std::vector<run_record> runs(const run_filter& filter) final;
  std::size_t count_runs(const run_filter& filter) final;
  std::vector<listed_task_instance> list_task_instances(const task_instance_filter& filter) final;
  std::size_t count_task_instances(const task_instance_filter& filter) final;
  std::optional<run_record> find_run(const std::string& dag_id, const std::string& run_id) final;
  std::vector<task_instance_record> task_instances(const std::string& dag_id, const std::string& run_id) final;
  std::vector<task_instance_record> task_instances_in(const std::set<task_state>& states) final;
  std::vector<try_record> tries(const std::string& dag_id, const std::string& run_id, const std::string& task_id,
                                int map_index = -1) final;
  std::optional<std::string> xcom(const std::string& dag_id, const std::string& run_id, const std::string& task_id,
                                  const std::string& key) final;

  std::vector<xcom_record> xcoms(const std::string& dag_id, const std::string& run_id, const std::string& task_id) final;
  std::vector<xcom_record> xcoms(const xcom_filter& filter) final;
  std::size_t count_xcoms(const xcom_filter& filter) final;
  bool set_note(const std::string& dag_id, const std::string& run_id, const std::string& task_id,
                const std::string& note, int map_index = -1) final;
  bool delete_run(const std::string& dag_id, const std::string& run_id) final;
  std::size_t delete_dag(const std::string& dag_id) final;
  std::vector<event_record> events(const event_filter& filter) final;
  std::size_t count_events(const event_filter& filter) final;
  std::optional<event_record> find_event(std::int64_t id) final;

  void register_datasets(const std::vector<std::string>& uris,
                         const std::map<std::string, std::vector<std::string>>& consumers) final;
  std::vector<dataset_record> datasets() final;
  std::optional<dataset_record> find_dataset(const std::string& uri) final;
  std::optional<dataset_event_record> add_dataset_event(const dataset_event_record& e) final;
  std::vector<dataset_event_record> dataset_events(const dataset_event_filter& filter) final;
  std::size_t count_dataset_events(const dataset_event_filter& filter) final;
  std::map<std::string, std::set<std::string>> queued_datasets() final;
  bool create_dataset_run(const run_record& run, const std::vector<std::string>& task_ids,
                          const std::set<std::string>& uris) final;
  std::vector<run_record> runs_triggered_by(std::int64_t event_id) final;
  std::vector<dataset_event_record> triggering_dataset_events(const std::string& dag_id,
                                                              const std::string& run_id) final;

  void set_variable(const std::string& name, const std::string& value) final;
  std::optional<std::string> variable(const std::string& name) final;
  std::map<std::string, std::string> variables() final;
  bool delete_variable(const std::string& name) final;

  void set_connection(const connection& c) final;
  std::optional<connection> find_connection(const std::string& conn_id) final;
  std::vector<connection> connections() final;
  bool delete_connection(const std::string& conn_id) final;

  void set_pool(const pool_record& p) final;
  std::optional<pool_record> find_pool(const std::string& name) final;
  std::vector<pool_record> pools() final;
  bool delete_pool(const std::string& name) final;

  std::size_t clean(timestamp cutoff) final;

protected:
  /// A store on the database named `label` in errors (its path, `host:port/database`).
  store_core(dialect sql, std::string label);

  /// Runs `body` once as a read or one write transaction (a backend may run it again after a
  /// failure it recovers from); turns database errors into dag::error "LABEL: cannot WHAT: …".
  virtual void run(const char* what, access mode, const std::function<void(session&)>& body) = 0;

  /// The database in errors.
  const std::string& label() const { return label_; }

private:
  /// apply's transaction; throws (and so rolls back) when an all-or-nothing change set lost.
  change_result apply_once(const change_set& changes);
  /// `run` for a body with a result: the result of the run that counted.
  template <class F>
  auto transact(const char* what, access mode, F&& body);
  /// Writes one row of `w` in a transaction of its own.
  void write_row(const char* what, const row_write& w, const std::vector<value>& values);
  /// Runs one statement in a write transaction; returns how many rows it changed.
  std::size_t execute(const char* what, std::string_view sql, std::span<const value> params);
  /// How many rows a `SELECT COUNT(*)` statement counted.
  std::size_t count(const char* what, const std::string& sql, std::span<const value> params);
  /// The rows of a read, each an R (a record, or the text of one or two columns).
  template <class R>
  std::vector<R> list(const char* what, const std::string& sql, std::span<const value> params = {});
  /// Of the task instance updates `claims` (indexes into `updates`, each starting a try), those
  /// whose pool has the slots, in order; a pool missing admits nothing. Where writers are
  /// serialized (no row lock) each pool is read here; elsewhere the pools are locked already and
  /// `slots` holds what their locking read found (see apply_once).
  std::vector<std::size_t> admitted_claims(session& s, const std::vector<task_instance_update>& updates,
                                           const std::vector<std::size_t>& claims,
                                           const std::map<std::string, std::int64_t>& slots);
  /// The version recorded in schema_version; 0 when the table does not exist yet.
  int recorded_version(session& s);

  dialect sql_;
  std::string label_;
};

/// Opens (creating if missing) the SQLite database at `path` and migrates it; throws dag::error
/// naming the path when it cannot be opened or its schema is newer than this build knows.
std::unique_ptr<store> open_sqlite_store(const std::string& path);

/// Connects to the PostgreSQL database named by `url` (see parse_postgres_url) and migrates it. The
/// first connection is tried once, so that a wrong URL fails at once; a connection lost later is
/// re-established. Throws dag::error naming the host and database, never the password, when it
/// cannot connect or the schema is newer than this build.
std::unique_ptr<store> open_postgres_store(const std::string& url);

/// database_answers for each backend: the file opened read-only (SQLite), a connection made and a
/// query answered under one deadline (PostgreSQL).
bool sqlite_answers(const std::string& path, std::chrono::milliseconds within);
bool postgres_answers(const std::string& url, std::chrono::milliseconds within);

}  // namespace dag::detail
