#pragma once
/// @file The PostgreSQL client layer that the store and the task queue share, private to libdag
/// (libpqxx 6.4): reading URLs, connecting with the session settings, retrying on broken
/// connections, settling in-doubt commits, LISTEN. Only .cpp files include it, so libpqxx stays
/// out of every public header.
///
/// Retries (`pg_connection::read` and `write`). An operation that fails because the connection
/// broke is retried on a new connection, with a delay of 50 ms doubling up to 2 s, for up to 30 s;
/// then it fails with dag::error naming the operation and the server. A read is simply run again.
/// A write transaction is retried as a whole, which is only right when it did not commit:
///  - lost before COMMIT was sent: the transaction cannot commit any more (its session, which
///    may linger in it holding its locks, is ended by the next write: see below);
///  - lost once the message holding the COMMIT was sent (the mark's statement and COMMIT go as
///    one message), before its answer came: it may have committed. A blind retry would
///    report as lost what the first attempt did (a compare-and-set update now finds its own write
///    and loses; a claimed queue row is claimed again), and the caller would never act on it. So
///    every write transaction takes, with its BEGIN, the object's own advisory lock (a random
///    key) until it ends, and (but one its caller knows changed nothing: `write_if_changed`,
///    `write_joined`) writes, with its COMMIT, its attempt number into the row of this connection object in
///    `dagrun_commit_marks` (a random client id, one row per object). After reconnecting:
///    if a session still holds that lock, the transaction is still running (only the network
///    broke): that session is terminated and the question asked again once it is gone; then the
///    mark says it: our attempt number → it committed, and the result computed in that attempt is
///    returned; anything else → it did not, and the transaction is retried. (A lock is released
///    after the transaction's outcome is visible, and every lock goes in a crash or failover. A
///    session waiting for a synchronous standby's confirmation is waited for, not ended.)
///    The mark is used rather than the transaction's status (`txid_status`) because a transaction
///    id is only durable once a later commit or checkpoint passes it: after a server crash the
///    lost transaction's id can be given to another transaction, whose outcome `txid_status`
///    would then report (and whose session a search by transaction id would end). The mark row
///    is committed with the transaction or not at all, on the server and on its standbys; a
///    standby is not asked (its copy may lag). If the outcome is still unknown when the budget
///    runs out, it throws rather than guess, and the question stays open: the next write on the
///    object settles it first (the mark would otherwise be overwritten, and a lingering session
///    still holds the lock), and `settle` tells the caller, who may be about to send the same
///    changes again (so a write can take two budgets). Marks untouched for a day are deleted.
///    A `write_relaxed` transaction, whose outcome no one depends on, writes no mark, and its
///    COMMIT is never settled: its result stands either way.
/// Deadlocks and serialization failures (the server rolled the transaction back) are retried the
/// same way. Any other database error fails at once.

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <stop_token>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include <dag/core/error.hpp>

#include "retry_pause.hpp"

namespace dag::detail {

/// Where a PostgreSQL URL points, for connecting and for messages.
struct pg_target {
  std::string conninfo;  ///< what libpq connects with (may hold the password: never shown)
  std::string label;     ///< `host:port/database`, for messages
  std::string password;  ///< the password given in the URL, scrubbed from any message
  /// The server, database, role and session options it connects with (not the password nor the
  /// client's name): two targets with equal identities open equal sessions on one database.
  std::string identity;
};

/// Reads a libpq connection URI (`postgresql://user:password@host:5432/db?sslmode=require`, also
/// `postgres://`, and SQLAlchemy's `postgresql+driver://` read as `postgresql://`) with libpq's own
/// parser, so that every form libpq accepts works. `application` names the client to the server
/// unless the URL or PGAPPNAME does; connecting gives up after 10 s unless the URL or
/// PGCONNECT_TIMEOUT says otherwise. Throws dag::usage_error, never showing the password.
pg_target parse_postgres_url(const std::string& url, std::string_view application);

/// Whether the server of `where` accepts a connection and answers `SELECT 1`, all within
/// `within` (libpq's own connect_timeout counts whole seconds, at least 2): never retries.
bool pg_answers(const pg_target& where, std::chrono::milliseconds within);

/// `text` as PostgreSQL can hold it: a `text` value is UTF-8 without NUL bytes (the server refuses
/// anything else, and libpq ends a parameter at its first NUL), so each NUL byte and each byte
/// that starts no UTF-8 sequence becomes U+FFFD (as in JSON text, json_text.hpp, which keeps a NUL
/// as `\u0000`). A task's output may be Latin-1 or binary: refused, its end would fail every pass
/// that writes it. Names looked up again (pools, queues) are refused before they get here (check).
std::string pg_text(std::string_view text);

/// Appends an element to the text form of a PostgreSQL array (`{"a",2,NULL}`; the first element
/// opens it, `close_array` closes it): how statements take a batch of rows as one parameter per
/// column (`unnest($1::bigint[], $2::text[])`), prepared once whatever the batch's size. Text is
/// quoted, so any content PostgreSQL can hold survives (the rest as `pg_text` says).
void add_array_element(std::string& array, std::string_view text);
void add_array_element(std::string& array, std::int64_t number);
void add_array_null(std::string& array);
/// Closes an array add_array_element opened (`{}` when nothing was added).
void close_array(std::string& array);

/// One PostgreSQL connection, opened on first use and re-opened when it breaks. Not thread-safe
/// (neither are libpqxx connections): use it from one thread at a time.
class pg_connection {
public:
  /// The connection to `where`, opened on first use (or by `connect`).
  explicit pg_connection(pg_target where);
  ~pg_connection();
  pg_connection(const pg_connection&) = delete;
  pg_connection& operator=(const pg_connection&) = delete;

  /// Connects now, once, without retrying: a refused first connection is far more often a wrong
  /// URL than an outage, and the person who typed it should hear so at once. Throws dag::error
  /// "LABEL: cannot connect: …".
  void connect();

  /// Runs `body(tx)` outside any transaction (one round trip for one statement), again on a new
  /// connection when it breaks; returns what `body` returns.
  template <class F>
  auto read(const char* what, F&& body) {
    return transact(what, kind::read, body, [](const auto&...) { return false; });
  }
  /// Runs `body(tx)` in one transaction whose outcome is made certain (see the file comment);
  /// returns what `body` returned in the attempt that committed.
  template <class F>
  auto write(const char* what, F&& body) {
    return transact(what, kind::write, body, [](const auto&...) { return false; });
  }
  /// As `write`, for a body that often changes nothing (a claim that finds no queued try): when
  /// `unchanged(result)` says the attempt changed nothing, it commits without its mark, a write
  /// that would make the COMMIT wait for the disk. Committed or not, such an attempt did the same,
  /// so one whose COMMIT was in doubt is simply run again.
  template <class F, class Unchanged>
  auto write_if_changed(const char* what, F&& body, Unchanged&& unchanged) {
    return transact(what, kind::write, body, unchanged);
  }
  /// As `write_if_changed`, for a body whose first statement goes to the server in one message
  /// with the BEGIN: it sends it with `send` (text, with its values written in: `quote`,
  /// `execute`), and any later ones through `send` or through `tx`, after a `send(tx, "")` that
  /// sends what is pending (the BEGIN, `send_later`'s statements), or a `begin(tx)`. A transaction of one statement takes
  /// two round trips (the statement, then the COMMIT with the mark) where it took three, or four
  /// with a mark: each round trip is a wake-up of the server's process and then of ours, and a
  /// queue's hand-off is a chain of such transactions. A body that sends nothing makes no
  /// transaction. Values written into a statement's text show in `pg_stat_activity` and in the
  /// server's log of a failed statement, as protocol parameters do not: never a secret (a try's
  /// payload, a connection's password) this way.
  template <class F, class Unchanged>
  auto write_joined(const char* what, F&& body, Unchanged&& unchanged) {
    return transact(what, kind::joined, body, unchanged);
  }
  /// As `write_joined`, for a transaction whose COMMIT need not wait for the disk because its
  /// caller keeps what it wrote until a later durable commit on the same session (`sessions`) has
  /// made it durable too, and writes it again should the session end first: a worker's results
  /// (pg_task_queue's `complete`; its `confirm` is the durable commit, a `write_joined`). `synchronous_commit` is off for this transaction
  /// alone; it is marked and settled as `write_joined`'s (a mark a server crash undid says: not
  /// committed, run it again).
  template <class F, class Unchanged>
  auto write_unflushed(const char* what, F&& body, Unchanged&& unchanged) {
    return transact(what, kind::unflushed, body, unchanged);
  }
  /// As `write_joined`, for a transaction that only spares work, whose outcome no one depends on
  /// once its body has returned: a scheduler's take of finished tries, whose ends are handed on as
  /// soon as they are read; a take that did not commit leaves them to be taken again, and an end
  /// handed on twice is recognised. So it commits without a mark and without waiting for the disk
  /// (`synchronous_commit` off for this transaction alone: a server crash may undo it, as if it
  /// had not happened; any later durable commit on the server makes it durable too), and a
  /// failure once the body has returned (the COMMIT refused or lost with the server) returns the
  /// body's result all the same; the session, which may linger holding the rows' locks, is ended
  /// by the object's next write. A failure before that is retried as `write_joined`'s is.
  template <class F>
  auto write_relaxed(const char* what, F&& body) {
    return transact(what, kind::relaxed, body, [](const auto&...) { return false; });
  }

  /// Sends `text` (one statement or several, separated by `;`) in the write transaction `tx` of a
  /// `write_joined`, `write_unflushed` or `write_relaxed` body (with its BEGIN if none was sent yet), after what
  /// `send_later` holds; the last statement's result.
  /// `text` empty: sends the BEGIN and what `send_later` holds, if anything: a body that runs a
  /// statement through `tx` itself (with its values as protocol parameters) calls this first, or
  /// `begin(tx)`.
  pqxx::result send(pqxx::transaction_base& tx, const std::string& text);
  /// Holds `text` (statements whose results no one reads) for the write transaction's next
  /// `send`, or else its COMMIT, which it goes before in the same message: a round trip less. An
  /// error in it fails the transaction as it would have then.
  void send_later(const std::string& text);
  /// Sends the write transaction's BEGIN if it has not gone yet (with what `send_later` holds),
  /// and nothing else: for a body about to run a statement through `tx` itself that touches no row
  /// a held-back statement does, so that what is held back may still wait for a later message
  /// (the COMMIT's at the latest) instead of taking a round trip of its own first. A statement whose
  /// order against the held-back ones matters calls `send(tx, "")` instead.
  void begin(pqxx::transaction_base& tx);
  /// The text that runs the prepared statement for `sql` (`prepared`) with `values`, each already an
  /// SQL literal (`quote`, a number, NULL): `EXECUTE name(v1, v2)`, the plan the server keeps for
  /// it. Prepares it on the server now if it is not yet.
  std::string execute(std::string_view sql, std::initializer_list<std::string_view> values = {});
  std::string execute(std::string_view sql, const std::vector<std::string>& values);
  /// `text` as a quoted SQL literal, as PostgreSQL holds it (pg_text). Needs a connection (the
  /// quoting follows its settings): use it inside a body.
  std::string quote(std::string_view text) const;

  /// The write attempt that threw with its COMMIT's outcome still unknown and is not settled
  /// yet, by number; 0 when there is none.
  std::int64_t unsettled() const { return unsettled_; }
  /// Whether write attempt `attempt` (a number `unsettled` gave) committed: asked now if no write
  /// has settled it since, told once. std::nullopt when nothing is known of it (told already, or
  /// one of many never asked for). Throws while its outcome is still unknown. A caller that sends
  /// the same changes again after such a throw asks first, and leaves out what that write made.
  std::optional<bool> settle(const char* what, std::int64_t attempt);

  /// How many sessions this object has opened: a session that ended (a server crash or restart
  /// ends every session) may have taken with it what its unflushed commits wrote.
  std::uint64_t sessions() const { return sessions_; }

  /// The name of the prepared statement for `sql`, registered on first use (and on every new
  /// connection from then on).
  const std::string& prepared(std::string_view sql);

  /// Waits up to `max` for a notification on `channel` (LISTENing from the first call on) or on
  /// any channel `listen` named; whether one came on `channel`: false when none came, the
  /// connection broke (the next call reconnects) or `stop` was requested (which ends the wait at
  /// once). A notification on another channel ends the wait too, and stays for `notified`.
  bool wait(const std::string& channel, std::chrono::milliseconds max, std::stop_token stop = {});
  /// LISTENs to `channel` too from the next `wait` or `take_notices` on, on this session and
  /// every later one; with `keep_payloads`, the notifications' payloads are kept for `take_notices`.
  void listen(const std::string& channel, bool keep_payloads);
  /// What came on a channel since it was last taken.
  struct notices {
    bool came = false;                  ///< a notification came
    std::vector<std::string> payloads;  ///< their payloads, if the channel keeps them
    bool all = true;                    ///< false: more came than are kept (a thousand), only counted
  };
  /// The notifications that came on `channel` (one `listen` named) since the last take, reading
  /// what the connection received without waiting. Those that came on a session that has ended
  /// since are not known: a caller asks `sessions` too.
  notices take_notices(const std::string& channel);

  /// dag::error "LABEL: cannot WHAT: MESSAGE", with the password scrubbed from MESSAGE.
  error failure(const char* what, const std::string& message) const;

private:
  class listener;
  /// LISTENs on conn_ (open) to every channel `listen` named that it does not listen to yet.
  void listen_all();
  /// An attempt's body: true when it changed something (and so must leave its mark, unless relaxed).
  using attempt_body = std::function<bool(pqxx::transaction_base&)>;
  /// A read (no transaction), a write (BEGIN sent before the body runs), a write whose BEGIN goes
  /// with the body's first `send` (and one whose COMMIT does not wait for the disk: write_unflushed),
  /// or one of those whose outcome does not matter (write_relaxed).
  enum class kind { read, write, joined, unflushed, relaxed };

  template <class F, class Unchanged>
  auto transact(const char* what, kind how, F& body, const Unchanged& unchanged) {
    using result = std::invoke_result_t<F&, pqxx::transaction_base&>;
    if constexpr (std::is_void_v<result>) {
      attempts(what, how, [&](pqxx::transaction_base& tx) {
        body(tx);
        return true;
      });
    } else {
      std::optional<result> out;  // from the attempt that counted
      attempts(what, how, [&](pqxx::transaction_base& tx) {
        out = body(tx);
        return !unchanged(*out);
      });
      return std::move(*out);
    }
  }
  /// Runs `body` until one attempt counts, as the file comment describes.
  void attempts(const char* what, kind how, const attempt_body& body);
  /// Whether write attempt number `attempt`, whose COMMIT was in doubt, committed; reconnects as
  /// needed. Throws once the outcome is still unknown at `deadline`.
  bool committed(const char* what, std::int64_t attempt, std::chrono::steady_clock::time_point deadline,
                 std::chrono::milliseconds& delay, std::string& problem);
  /// Creates the commit marks' table if it is missing, and deletes marks untouched for a day;
  /// once per connection (the next one may reach another server).
  void prepare_marks();
  /// Sleeps `delay` and doubles it (up to the cap), or throws when that would pass `deadline`.
  void back_off(const char* what, std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds& delay,
                const std::string& problem, int attempts);
  /// Whether `e` means the connection is gone rather than the statement wrong.
  bool lost(const pqxx::sql_error& e) const;
  /// Opens a new connection with the session settings and every prepared statement.
  void open();
  /// Forgets a broken connection (and what listened on it); the next attempt opens a new one.
  void drop() noexcept;

  pg_target target_;
  std::unique_ptr<pqxx::connection> conn_;  ///< null after a break, until the next attempt
  std::unordered_map<std::string, std::string> names_;  ///< SQL text → prepared statement name
  std::vector<std::pair<std::string, std::string>> statements_;  ///< (name, SQL) to prepare on each connection
  std::map<std::string, std::unique_ptr<listener>> listeners_;  ///< by channel, on conn_
  std::map<std::string, bool> listened_;  ///< channels `listen` named (and whether payloads are kept): on every session
  std::string client_;  ///< this object's row in dagrun_commit_marks: random, never reused
  std::int64_t attempts_ = 0;  ///< write attempts made, the last one's number in the mark
  bool marks_ready_ = false;  ///< the marks' table is known to exist on conn_'s server
  bool begin_pending_ = false;  ///< a joined write's BEGIN is not sent yet: it goes with the first `send`
  std::string begin_;  ///< what begins a write: BEGIN and the lock (statements for this connection)
  std::string later_;  ///< statements for the current write attempt's next message (send_later)
  bool begun_ = false;  ///< the current attempt sent its BEGIN: broken from then on, its session may linger
  bool leftover_ = false;  ///< a broken attempt's session may still hold the object's lock
  std::int64_t unsettled_ = 0;  ///< a write attempt whose COMMIT's outcome stayed unknown (0: none)
  std::map<std::int64_t, bool> settled_;  ///< outcomes of such attempts a later write settled, until `settle` tells them
  std::int64_t lock_key_ = 0;  ///< the advisory lock each write attempt holds until it ends: random
  std::uint64_t sessions_ = 0;  ///< sessions opened (`sessions`)
};

}  // namespace dag::detail
