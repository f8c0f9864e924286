/// @file The PostgreSQL client layer (see pg_connection.hpp).

#include "pg_connection.hpp"
#include "file_descriptors.hpp"

#include <dag/core/json_text.hpp>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>
#include <tuple>

#include <poll.h>

#include <libpq-fe.h>

namespace dag::detail {
namespace {

using steady = std::chrono::steady_clock;

/// How long an operation keeps retrying before it fails: long enough to ride out a server
/// restart or a failover, short enough that a scheduler notices a real outage.
constexpr std::chrono::seconds retry_budget{30};

// The commit marks (see pg_connection.hpp): one row per connection object, rewritten by each of
// its write attempts just before COMMIT. Made under an advisory lock, so that processes starting
// together create it once.
constexpr const char* sql_create_marks =
    "CREATE TABLE IF NOT EXISTS dagrun_commit_marks ("
    "client TEXT PRIMARY KEY, attempt BIGINT NOT NULL, at TIMESTAMPTZ NOT NULL)";
// Marks of objects gone, or that changed nothing, for a day (a missing mark reads as "not
// committed", which is right: an attempt's mark is written in its own transaction). A mark
// locked by a lingering transaction is left for another time rather than waited for: every
// process's first write runs this.
constexpr const char* sql_forget_old_marks =
    "DELETE FROM dagrun_commit_marks WHERE client IN (SELECT client FROM dagrun_commit_marks "
    "WHERE at < now() - interval '1 day' FOR UPDATE SKIP LOCKED)";
// Writes the attempt's mark.
constexpr std::string_view sql_mark_attempt =
    "INSERT INTO dagrun_commit_marks (client, attempt, at) VALUES ($1::text, $2::bigint, now()) "
    "ON CONFLICT (client) DO UPDATE SET attempt = excluded.attempt, at = excluded.at";
// Takes the object's own advisory lock until the transaction ends, sent with its BEGIN: while a
// session holds that lock, the transaction is not over. Taken first, not with the mark: a session
// whose COMMIT (and mark, in the same message) never arrived still holds its row locks, and must
// be found and ended.
constexpr std::string_view sql_hold_lock = "SELECT pg_advisory_xact_lock($1::bigint)";
// Whether a transaction of this object still runs (a session other than ours holds the object's
// advisory lock; no other session ever holds it), and ends it: its connection broke and it waits
// for a client that is gone, and its outcome should be settled now rather than when the server
// notices the dead connection. A session waiting for a synchronous standby to confirm its commit
// is not ended (terminating it would cut the wait short, and the commit would count without the
// standby's copy): it is only counted, and asked about again. A server crash or failover drops
// every lock. On a standby (a multi-host URL may land on one) the mark may lag: not asked there.
constexpr std::string_view sql_transaction_still_running =
    "WITH holders AS (SELECT l.pid, a.wait_event FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid = (($1::bigint >> 32) & 4294967295)::oid AND l.objid = ($1::bigint & 4294967295)::oid "
    "AND l.objsubid = 1 AND l.granted AND l.pid <> pg_backend_pid()) "
    "SELECT pg_is_in_recovery() AS standby, (SELECT count(*) FROM holders) AS held, "
    "(SELECT count(pg_terminate_backend(pid)) FROM holders WHERE wait_event IS DISTINCT FROM 'SyncRep') AS ended";
constexpr std::string_view sql_marked_attempt = "SELECT attempt FROM dagrun_commit_marks WHERE client = $1";

/// A random client id for the commit marks: 128 bits, in hex; the first 64 also key its lock.
std::pair<std::string, std::int64_t> random_client() {
  std::random_device random;
  constexpr char digits[] = "0123456789abcdef";
  std::string id;
  std::uint64_t key = 0;
  for (int i = 0; i < 4; ++i) {
    const std::uint32_t word = random();
    if (i < 2) key = key << 32 | word;
    for (std::uint32_t w = word, n = 0; n < 8; ++n, w >>= 4) id += digits[w & 0xf];
  }
  return {id, static_cast<std::int64_t>(key)};
}

/// `text` with every `secret` replaced by `***` (nothing when `secret` is empty).
std::string scrubbed(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (std::size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3))
    text.replace(pos, secret.size(), "***");
  return text;
}

/// `text` without trailing newlines and spaces (libpq ends its messages with a newline).
// Whether a failed connection attempt was refused for who the client is (credentials, pg_hba,
// an unknown role or database) rather than for the server's state: waiting does not change such
// an answer, so it is not retried and its reason is told at once.
bool refused_for_good(std::string_view message) {
  for (std::string_view sign : {"authentication failed", "no pg_hba.conf entry", "no password supplied",
                                "does not exist", "permission denied"})
    if (message.find(sign) != std::string_view::npos) return true;
  return false;
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\t')) text.pop_back();
  return text;
}

}  // namespace

namespace {
// Appends `text` as pg_text says, each `"` and `\` escaped when `in_array` (an array's element).
void append_pg_text(std::string& out, std::string_view text, bool in_array) {
  // Runs of ASCII that need no escape (most text: a payload's JSON) are appended whole; appending
  // them byte by byte was 8 % of a queue scheduler's CPU in a run of 20,000 tries.
  const auto plain = [in_array](char c) {
    return static_cast<unsigned char>(c) < 0x80 && c != '\0' && !(in_array && (c == '"' || c == '\\'));
  };
  for (std::size_t i = 0; i < text.size();) {
    std::size_t run = i;
    while (run < text.size() && plain(text[run])) ++run;
    if (run > i) {
      out.append(text.data() + i, run - i);
      i = run;
      continue;
    }
    const char c = text[i];
    if (static_cast<unsigned char>(c) < 0x80 && c != '\0') {  // `"` or `\` of an array's element
      out += '\\';
      out += c;
      ++i;
      continue;
    }
    const std::size_t length = c == '\0' ? 0 : utf8_sequence_length(text.substr(i));
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
}
}  // namespace

std::string pg_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  append_pg_text(out, text, false);
  return out;
}

void add_array_element(std::string& array, std::string_view text) {
  array += array.empty() ? '{' : ',';
  array += '"';
  append_pg_text(array, text, true);
  array += '"';
}

void add_array_element(std::string& array, std::int64_t number) {
  array += array.empty() ? '{' : ',';
  array += std::to_string(number);
}

void add_array_null(std::string& array) {
  array += array.empty() ? "{NULL" : ",NULL";
}

void close_array(std::string& array) { array += array.empty() ? "{}" : "}"; }

pg_target parse_postgres_url(const std::string& url, std::string_view application) {
  std::string uri = url;
  if (url.starts_with("postgresql+")) {  // SQLAlchemy's `postgresql+psycopg2://`: the driver is ours
    const std::size_t scheme_end = url.find("://");
    if (scheme_end != std::string::npos) uri = "postgresql" + url.substr(scheme_end);
  }
  char* message = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), &message);
  if (options == nullptr) {
    std::string why = message != nullptr ? trimmed(message) : "out of memory";
    PQfreemem(message);
    // libpq may quote the offending part, which may be the user:password part: never show it.
    const std::size_t start = uri.find("://");
    const std::size_t at = uri.find('@');
    if (start != std::string::npos && at != std::string::npos && at > start + 3)
      why = scrubbed(why, uri.substr(start + 3, at - start - 3));
    throw usage_error("database URL is not a valid PostgreSQL URL: " + why);
  }
  std::map<std::string, std::string> given;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o)
    if (o->val != nullptr && *o->val != '\0') given.emplace(o->keyword, o->val);
  PQconninfoFree(options);

  const auto from_environment = [](const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::optional<std::string>(v) : std::nullopt;
  };
  if (!from_environment("PGCONNECT_TIMEOUT")) given.try_emplace("connect_timeout", "10");
  given.try_emplace("fallback_application_name", application);
  pg_target t;
  for (const auto& [keyword, v] : given) {  // libpq's keyword=value form, values quoted
    std::string setting = keyword + "='";
    for (char c : v) setting += c == '\'' || c == '\\' ? std::string{'\\', c} : std::string{c};
    setting += "' ";
    t.conninfo += setting;
    if (keyword != "password" && keyword != "application_name" && keyword != "fallback_application_name" &&
        keyword != "connect_timeout")
      t.identity += setting;
  }
  const auto value = [&](const char* keyword, const char* env, const std::string& fallback) {
    if (auto it = given.find(keyword); it != given.end()) return it->second;
    return from_environment(env).value_or(fallback);
  };
  const std::string user = value("user", "PGUSER", "");
  t.label = value("host", "PGHOST", "localhost") + ':' + value("port", "PGPORT", "5432") + '/' +
            value("dbname", "PGDATABASE", user.empty() ? "(default database)" : user);
  if (auto it = given.find("password"); it != given.end()) t.password = it->second;
  return t;
}

/// A channel's LISTEN on the current connection, and whether a notification came.
class pg_connection::listener : public pqxx::notification_receiver {
public:
  listener(pqxx::connection_base& c, const std::string& channel, bool keep)
      : pqxx::notification_receiver(c, channel), keep_payloads(keep) {}
  void operator()(const std::string& payload, int) override {
    fired = true;
    if (!keep_payloads) return;
    if (payloads.size() < max_payloads)
      payloads.push_back(payload);
    else
      all = false;
  }
  static constexpr std::size_t max_payloads = 1000;  ///< kept until taken; later ones are only counted
  const bool keep_payloads;
  bool fired = false;  ///< a notification came since the last wait
  std::vector<std::string> payloads;  ///< theirs, if kept, until taken
  bool all = true;  ///< no payload was left out since the last take
};

pg_connection::pg_connection(pg_target where) : target_(std::move(where)) {
  std::tie(client_, lock_key_) = random_client();
}

pg_connection::~pg_connection() { drop(); }

void pg_connection::connect() {
  try {
    open();
  } catch (const pqxx::pqxx_exception& e) {
    throw failure("connect", e.base().what());
  }
}

void pg_connection::open() {
  auto c = std::make_unique<pqxx::connection>(target_.conninfo);
  // Every session is opened here, never by libpqxx on its own (which 6.4 does for a transaction
  // begun on a connection it found closed): `sessions` counts them, and a session that ended
  // unseen would have taken the unflushed commits it made with it (write_unflushed). A connection
  // found closed throws broken_connection instead, which `attempts` answers with a new one.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  c->inhibit_reactivation(true);  // deprecated in libpqxx 6 (7 never reactivates), and what 7 does
#pragma GCC diagnostic pop
  // Session settings go through set_variable. Warnings only: CREATE … IF NOT EXISTS notices are noise. A session left
  // idle inside a transaction (its client vanished without the server noticing) keeps its row
  // locks until the server gives up on it, and our retries would wait for them; unless the
  // administrator chose a limit, one minute is it: our own transactions never idle that long.
  c->set_variable("client_min_messages", "warning");
  c->set_variable("client_encoding", "UTF8");  // what pg_text writes, whatever PGCLIENTENCODING says
  if (c->get_variable("idle_in_transaction_session_timeout") == "0")
    c->set_variable("idle_in_transaction_session_timeout", "60000");
  for (const auto& [name, sql] : statements_) c->prepare(name, sql);
  conn_ = std::move(c);
  ++sessions_;
}

void pg_connection::prepare_marks() {
  if (marks_ready_) return;
  pqxx::work tx(*conn_);
  if (tx.exec1("SELECT to_regclass('dagrun_commit_marks') IS NULL")[0].as<bool>()) {
    tx.exec("SELECT pg_advisory_xact_lock(727278)");
    tx.exec(sql_create_marks);
  }
  tx.exec(sql_forget_old_marks);
  try {
    tx.commit();
  } catch (const pqxx::in_doubt_error& e) {
    throw pqxx::broken_connection(e.what());  // the next attempt does it all again, harmlessly
  }
  marks_ready_ = true;
}

void pg_connection::drop() noexcept {
  listeners_.clear();  // before their connection
  conn_.reset();
  marks_ready_ = false;  // the next connection may reach another server (a failover, a restore)
}

const std::string& pg_connection::prepared(std::string_view sql) {
  const std::string text(sql);
  if (auto it = names_.find(text); it != names_.end()) return it->second;
  std::string name = "dagrun_" + std::to_string(statements_.size());
  if (conn_) conn_->prepare(name, text);
  statements_.emplace_back(name, text);
  return names_.emplace(text, std::move(name)).first->second;
}

namespace {

/// `EXECUTE name(v1, v2)` for literals `values`.
template <class Values>
std::string execute_text(const std::string& name, const Values& values) {
  std::string text = "EXECUTE " + name;
  for (const auto& value : values) (text += text.size() == 8 + name.size() ? "(" : ", ") += value;
  if (std::size(values) != 0) text += ')';
  return text;
}

/// `first` and `then`, statements, in one text: either may be empty.
std::string joined(std::string first, std::string_view then) {
  if (!first.empty() && !then.empty()) first += "; ";
  return first += then;
}

}  // namespace

std::string pg_connection::execute(std::string_view sql, std::initializer_list<std::string_view> values) {
  const std::string& name = prepared(sql);
  conn_->prepare_now(name);  // does nothing once this connection has it
  return execute_text(name, values);
}

std::string pg_connection::execute(std::string_view sql, const std::vector<std::string>& values) {
  const std::string& name = prepared(sql);
  conn_->prepare_now(name);
  return execute_text(name, values);
}

void pg_connection::send_later(const std::string& text) { later_ = joined(std::move(later_), text); }

void pg_connection::begin(pqxx::transaction_base& tx) {
  if (begin_pending_) send(tx, "");
}

std::string pg_connection::quote(std::string_view text) const { return conn_->quote(pg_text(text)); }

pqxx::result pg_connection::send(pqxx::transaction_base& tx, const std::string& text) {
  std::string message = joined(std::exchange(later_, {}), text);
  // Marked sent before it is: should the message fail, its BEGIN may have run (block_guard).
  if (std::exchange(begin_pending_, false)) {
    begun_ = true;
    message = joined(begin_, message);
  }
  if (message.empty()) return {};
  return tx.exec(message);
}

error pg_connection::failure(const char* what, const std::string& message) const {
  // libpq never echoes a password, but a message is cheap to check and a leak is not. (A password
  // of one or two characters would mangle every message and is no secret anyway.)
  const std::string& secret = target_.password;
  const std::string text = secret.size() >= 3 ? scrubbed(trimmed(message), secret) : trimmed(message);
  error_context where;
  where.file = target_.label;
  return error(where, "cannot " + std::string(what) + ": " + text);
}

bool pg_connection::lost(const pqxx::sql_error& e) const {
  // Class 08 (connection exception), the server shutting down or terminating the session
  // (57P01-57P03), or any error on a connection that is no longer open (a server restart).
  const std::string& state = e.sqlstate();
  return state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03" || !conn_ ||
         !conn_->is_open();
}

void pg_connection::attempts(const char* what, kind how, const attempt_body& body) {
  const auto deadline = steady::now() + retry_budget;
  auto delay = first_retry_delay;
  for (int attempt = 1;; ++attempt) {
    std::string problem;  // why this attempt did not finish
    bool broken = false;  // the connection is gone
    bool in_doubt = false;  // this attempt's COMMIT may or may not have happened
    std::int64_t marked = 0;  // the number this attempt writes into the mark
    begun_ = false;
    bool opening = !conn_;  // a failure now is the connection's, not a transaction's
    try {
      if (opening) open();
      opening = false;
      if (how == kind::read) {
        pqxx::nontransaction tx(*conn_);
        body(tx);
        return;
      }
      if (unsettled_ != 0) {
        // An earlier write's outcome first: this attempt's mark would overwrite its mark. Kept
        // for `settle`; only the last few, should no one ever ask.
        settled_[unsettled_] = committed("settle an earlier write whose COMMIT was in doubt", unsettled_, deadline, delay, problem);
        unsettled_ = 0;
        if (settled_.size() > 16) settled_.erase(settled_.begin());
      }
      if (leftover_) {
        // An earlier attempt broke inside its transaction: its session may linger in it, holding
        // the lock this attempt is about to take (and row locks). It cannot commit any more; end
        // it rather than wait for the server to notice.
        pqxx::nontransaction tx(*conn_);
        tx.exec_prepared(prepared(sql_transaction_still_running), lock_key_);
        leftover_ = false;
      }
      prepare_marks();
      // The transaction is ours to begin and end (BEGIN and COMMIT as statements), so that each
      // may share a message with another statement. Should anything throw inside it, the session
      // is rolled back before the connection is used again, or dropped when it cannot be.
      struct block_guard {
        pg_connection& c;
        bool open = true;
        ~block_guard() {
          c.later_.clear();  // for this transaction only (sent or not): never for a later attempt's or read's `send`
          if (std::exchange(c.begin_pending_, false)) return;  // never begun
          if (!open || !c.conn_) return;
          if (c.conn_->is_open()) {
            try {
              pqxx::nontransaction end(*c.conn_);
              end.exec("ROLLBACK");
              return;
            } catch (...) {
            }
          }
          c.drop();
          c.leftover_ = c.leftover_ || c.begun_;  // its session may linger, holding the lock
        }
      } block{*this};
      pqxx::nontransaction tx(*conn_);
      begin_ = "BEGIN; " + execute(sql_hold_lock, {std::to_string(lock_key_)});
      if (how == kind::relaxed || how == kind::unflushed) begin_ += "; SET LOCAL synchronous_commit TO off";
      if (how == kind::joined || how == kind::unflushed || how == kind::relaxed) {
        begin_pending_ = true;
      } else {
        begun_ = true;
        tx.exec(begin_);
      }
      bool changed = body(tx);
      if (begin_pending_ && later_.empty()) {  // a joined or relaxed body that sent nothing: no transaction to end
        block.open = false;
        return;
      }
      // What the body left for later goes with the COMMIT (and the BEGIN, should the body have
      // sent nothing else); on its own before a relaxed COMMIT, which must not swallow its error.
      if (how == kind::relaxed) send(tx, "");
      std::string deferred = std::exchange(later_, {});
      // A transaction that ran deferred statements changed something: it is marked, so that its
      // COMMIT, if in doubt, is settled rather than run again.
      changed = changed || !deferred.empty();
      if (std::exchange(begin_pending_, false)) {
        begun_ = true;
        deferred = joined(begin_, deferred);
      }
      std::string end = joined(deferred, "COMMIT");
      if (how == kind::relaxed) {
        // Its result stands whatever becomes of the COMMIT (write_relaxed). One that failed left
        // the session rolled back or lost: the guard ends it, or drops the connection and leaves
        // the lingering session to the next write.
        try {
          tx.exec(end);
          block.open = false;
        } catch (const pqxx::broken_connection&) {
        } catch (const pqxx::sql_error&) {
        }
        return;
      }
      if (changed) {
        marked = ++attempts_;
        end = joined(deferred, execute(sql_mark_attempt, {quote(client_), std::to_string(marked)}) + "; COMMIT");
      }
      try {
        tx.exec(end);
        block.open = false;
        return;
      } catch (const pqxx::broken_connection& e) {
        in_doubt = marked != 0;  // one that changed nothing did the same either way: run again
        problem = e.what();
        broken = true;
      } catch (const pqxx::sql_error& e) {
        if (!lost(e)) throw;  // refused before COMMIT (the mark's table, a constraint): rolled back
        in_doubt = marked != 0;  // the server went away with COMMIT sent
        problem = e.what();
        broken = true;
      }
    } catch (const error&) {
      throw;  // ours (an unknown state name, a newer schema): not a connection problem
    } catch (const pqxx::broken_connection& e) {
      if (opening && refused_for_good(e.what())) throw failure("connect", e.what());
      problem = e.what();
      broken = true;
    } catch (const pqxx::transaction_rollback& e) {
      problem = e.what();  // deadlock or serialization failure: rolled back, safe to run again
    } catch (const pqxx::sql_error& e) {
      // (libpqxx 6.4 leaves sqlstate() empty for some errors: the class says it.)
      if (dynamic_cast<const pqxx::insufficient_privilege*>(&e) != nullptr &&
          std::string_view(e.what()).find("dagrun_commit_marks") != std::string_view::npos)
        throw failure(what, std::string(e.what()) + " (every role that writes to a dagrun database needs SELECT, "
                                                    "INSERT, UPDATE and DELETE on dagrun_commit_marks)");
      if (!lost(e)) throw failure(what, e.what());
      problem = e.what();
      broken = true;
    } catch (const pqxx::pqxx_exception& e) {
      throw failure(what, e.base().what());
    }
    if (broken) drop();
    if (broken && begun_ && !in_doubt) leftover_ = true;
    if (in_doubt) {
      unsettled_ = marked;  // until committed() answers: it throws if it cannot
      const bool made = committed(what, marked, deadline, delay, problem);
      unsettled_ = 0;
      if (made) return;
      continue;  // it rolled back: run the whole transaction again (committed() already waited)
    }
    back_off(what, deadline, delay, problem, attempt);
  }
}

void pg_connection::back_off(const char* what, steady::time_point deadline, std::chrono::milliseconds& delay,
                             const std::string& problem, int attempts) {
  if (steady::now() + delay > deadline)
    throw failure(what, "still failing after " + std::to_string(attempts) + " attempts over " +
                            std::to_string(retry_budget.count()) + " s: " + trimmed(problem));
  std::this_thread::sleep_for(delay);  // backoff before reconnecting, not synchronisation
  delay = std::min(delay * 2, max_retry_delay);
}

std::optional<bool> pg_connection::settle(const char* what, std::int64_t attempt) {
  if (attempt != 0 && attempt == unsettled_) {
    auto delay = first_retry_delay;
    std::string problem;
    const bool made = committed(what, attempt, steady::now() + retry_budget, delay, problem);
    unsettled_ = 0;
    return made;
  }
  const auto known = settled_.find(attempt);
  if (known == settled_.end()) return std::nullopt;
  const bool made = known->second;
  settled_.erase(known);
  return made;
}

bool pg_connection::committed(const char* what, std::int64_t attempt, steady::time_point deadline,
                              std::chrono::milliseconds& delay, std::string& problem) {
  for (;;) {
    if (steady::now() + delay > deadline)
      throw failure(what, "the connection was lost while committing, and whether the transaction committed is still "
                          "unknown after " + std::to_string(retry_budget.count()) + " s: " + trimmed(problem));
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, max_retry_delay);
    try {
      if (!conn_) open();
      bool standby = false;
      bool running = false;
      std::optional<bool> outcome;
      {
        pqxx::nontransaction tx(*conn_);
        const pqxx::row state = tx.exec_prepared1(prepared(sql_transaction_still_running), lock_key_);
        standby = state["standby"].as<bool>();
        running = !standby && state["held"].as<std::int64_t>() > 0;
        if (!standby && !running) {
          // The transaction is over, committed or not: its mark, written in it, says which.
          const pqxx::result mark = tx.exec_prepared(prepared(sql_marked_attempt), client_);
          outcome = !mark.empty() && mark[0][0].as<std::int64_t>() == attempt;
        }
      }  // the statement's transaction object is gone before the connection may be dropped
      if (standby) {
        problem = "the server is a standby, whose copy of the outcome may lag";
        drop();
        continue;
      }
      if (running) {
        problem = "the transaction was still in progress";
        continue;  // ask again once its session is gone
      }
      return *outcome;
    } catch (const error&) {
      throw;
    } catch (const pqxx::broken_connection& e) {
      problem = e.what();
      drop();
    } catch (const pqxx::sql_error& e) {
      // No marks table on this server (a restored or promoted copy made before it): the
      // transaction, which wrote a mark, is not in this database.
      if (dynamic_cast<const pqxx::undefined_table*>(&e) != nullptr) return false;
      if (!lost(e)) throw failure(what, e.what());
      problem = e.what();
      drop();
    } catch (const pqxx::pqxx_exception& e) {
      throw failure(what, e.base().what());
    }
  }
}

bool pg_connection::wait(const std::string& channel, std::chrono::milliseconds max, std::stop_token stop) {
  if (stop.stop_requested()) return false;
  try {
    if (!conn_) open();
    listen(channel, false);
    listen_all();
    listener& l = *listeners_.at(channel);
    const auto any_fired = [&] {
      return std::any_of(listeners_.begin(), listeners_.end(), [](const auto& e) { return e.second->fired; });
    };
    conn_->get_notifs();  // what came during the last statements
    if (any_fired()) return std::exchange(l.fired, false);
    // A connection that broke (libpqxx lets a LISTEN that failed so pass) reads as nothing: it is
    // dropped here, as a wait on it would find nothing but the end of `max`.
    if (!conn_->is_open() || conn_->sock() < 0) throw pqxx::broken_connection("the connection is closed");
    // The connection's socket and, where the wait may be stopped, the stop's eventfd. Should no
    // eventfd be had, the wait goes in slices of 100 ms that look at `stop`.
    const stop_wakeup woken(stop);
    const bool sliced = stop.stop_possible() && woken.fd() < 0;
    const auto deadline = steady::now() + max;
    pollfd fds[2] = {{conn_->sock(), POLLIN, 0}, {woken.fd(), POLLIN, 0}};
    while (!stop.stop_requested()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now()).count();
      if (left <= 0) break;
      const int ready = ::poll(fds, woken.fd() >= 0 ? 2 : 1,
                               static_cast<int>(std::clamp<std::int64_t>(left, 0, sliced ? 100 : 24 * 3600 * 1000)));
      if (ready < 0 && errno != EINTR) break;
      if (ready > 0 && (fds[0].revents & POLLNVAL) != 0) throw pqxx::broken_connection("the connection is closed");
      if (ready > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
        conn_->get_notifs();  // throws broken_connection when the server hung up
        break;
      }
      if (ready > 0) break;  // the stop's eventfd
    }
    return std::exchange(l.fired, false);
  } catch (const pqxx::broken_connection&) {
    drop();
    return false;
  } catch (const pqxx::pqxx_exception& e) {  // a LISTEN the server refused (a standby's, in recovery)
    throw failure("wait for a notice", e.base().what());
  }
}

void pg_connection::listen(const std::string& channel, bool keep_payloads) {
  if (!listened_.contains(channel)) listened_.emplace(channel, keep_payloads);
}

void pg_connection::listen_all() {
  for (const auto& [name, keep] : listened_)
    if (!listeners_.contains(name)) listeners_.emplace(name, std::make_unique<listener>(*conn_, name, keep));
}

pg_connection::notices pg_connection::take_notices(const std::string& channel) {
  notices out;
  if (!conn_) return out;
  try {
    listen_all();  // from now on, on a session that began since
    conn_->get_notifs();
  } catch (const pqxx::broken_connection&) {
    drop();  // its notifications went with it; the next call reconnects
    return out;
  } catch (const pqxx::pqxx_exception& e) {
    throw failure("wait for a notice", e.base().what());
  }
  const auto it = listeners_.find(channel);
  if (it == listeners_.end()) return out;
  listener& l = *it->second;
  out.came = std::exchange(l.fired, false);
  out.payloads = std::exchange(l.payloads, {});
  out.all = std::exchange(l.all, true);
  return out;
}

bool pg_answers(const pg_target& where, std::chrono::milliseconds within) {
  const auto deadline = steady::now() + within;
  // Waits until the connection's socket is ready for `events`, or the deadline passes.
  const auto ready = [&](PGconn* c, short events) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
    if (left <= 0) return false;
    pollfd p{PQsocket(c), events, 0};
    return ::poll(&p, 1, static_cast<int>(left)) > 0;
  };
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectStart(where.conninfo.c_str()), &PQfinish);
  PGconn* c = conn.get();
  if (c == nullptr || PQstatus(c) == CONNECTION_BAD) return false;
  for (auto step = PGRES_POLLING_WRITING; step != PGRES_POLLING_OK;) {
    if (step == PGRES_POLLING_FAILED) return false;
    if (!ready(c, step == PGRES_POLLING_READING ? POLLIN : POLLOUT)) return false;
    step = PQconnectPoll(c);
  }
  if (PQsendQuery(c, "SELECT 1") == 0) return false;
  while (PQisBusy(c) != 0)
    if (!ready(c, POLLIN) || PQconsumeInput(c) == 0) return false;
  bool answered = false;
  while (PGresult* r = PQgetResult(c)) {
    answered = answered || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
  }
  return answered;
}

}  // namespace dag::detail
