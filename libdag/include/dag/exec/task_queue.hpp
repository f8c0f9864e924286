#pragma once
/// @file The task queue in PostgreSQL that schedulers fill and workers drain: claims with
/// `FOR UPDATE SKIP LOCKED`, leases with tokens and heartbeats, LISTEN/NOTIFY wake-ups.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <tuple>
#include <string>
#include <vector>

#include <dag/core/operator.hpp>
#include <dag/core/time.hpp>

namespace dag {

/// One try waiting in (or claimed from) the queue: everything a worker needs to run it.
struct queued_try {
  std::int64_t id = 0;                            ///< row id (set by the queue)
  std::string dag_id;                             ///< its DAG
  std::string run_id;                             ///< its run
  std::string task_id;                            ///< its task
  int try_number = 1;                             ///< which try
  int map_index = -1;                             ///< which instance of a mapped task (-1: not mapped)
  std::string queue = "default";                  ///< the named queue it is routed to
  int priority = 1;                               ///< higher is claimed first
  std::string operator_name;                      ///< the operator to run
  std::map<std::string, std::string> fields;      ///< rendered operator fields
  std::map<std::string, std::string> environment; ///< extra variables (the DAGRUN_* ones are made on the worker)
  std::map<std::string, std::string> params;      ///< the run's params
  std::string log_path;                           ///< the try's log file (on the worker's machine)
  std::optional<std::int64_t> timeout_ms;         ///< execution_timeout
  std::int64_t waited_us = 0;                     ///< time since a rescheduled try first started
  timestamp instance_start{};                     ///< its task instance's start date (this poke's); zero: not known
  std::vector<std::string> secrets;               ///< values the worker masks in the try's log
  time_point logical_date{};                      ///< the run's logical date
  time_point data_interval_start{};               ///< the run's interval start
  time_point data_interval_end{};                 ///< the run's interval end
  std::string lease_token;                        ///< set when claimed: proves the claim
  /// Who claimed it; on `enqueue`, the worker to push it to (empty: none): one whose end of a
  /// try of the same named queue the same step records (in a chain, the try before it). It goes
  /// to that worker, claimed for it, if that worker is taking pushes (`accept_pushes`); else it
  /// is queued for anyone.
  std::string worker;
};

/// A worker's report of one try's end, refused unless its lease token is still current.
struct queued_result {
  std::int64_t id = 0;          ///< the queue row
  std::string lease_token;      ///< the claim's token
  operator_result result;       ///< how the try ended
  timestamp started{};          ///< when it started
  timestamp ended{};            ///< when it ended
  int pid = 0;                  ///< its process, if any
  std::string hostname;         ///< where it ran
  timestamp instance_start{};   ///< the claimed try's `instance_start`, handed back (zero: not known)
};

/// A finished (or lost) try as the scheduler collects it.
struct finished_try {
  queued_try item;              ///< which try: its key, queue, priority and claim (not its payload)
  queued_result outcome;        ///< how it ended
};

/// (dag, run, task, map index, try): one try, wherever it is.
using try_key = std::tuple<std::string, std::string, std::string, int, int>;

/// The queue. One object is one database connection; use it from one thread at a time.
class task_queue {
public:
  virtual ~task_queue() = default;

  /// Forgets the taken ends `acknowledged` (row ids: the store has recorded them, or found them
  /// settled already), then adds `tries`, in one transaction, and wakes listening workers when
  /// there are tries. Ends are forgotten first: a rescheduled sensor's next poke has its key. A
  /// try already in the queue (another scheduler's) is kept as it is; one named twice is added
  /// once, as first named.
  virtual void enqueue(const std::vector<queued_try>& tries, const std::vector<std::int64_t>& acknowledged) = 0;
  /// Adds tries (one transaction) and wakes listening workers.
  void enqueue(const std::vector<queued_try>& tries) { enqueue(tries, {}); }
  /// Claims up to `max` queued tries of `queues` (highest priority first) for `worker`, each with
  /// a fresh lease token; `FOR UPDATE SKIP LOCKED` inside a CTE, so concurrent workers never
  /// claim the same row and never more than `max`.
  virtual std::vector<queued_try> claim(const std::vector<std::string>& queues, int max, const std::string& worker) = 0;
  /// Renews the leases of `tokens`; returns the tokens that are no longer valid (lost or done).
  virtual std::vector<std::string> heartbeat(const std::vector<std::string>& tokens) = 0;
  /// From now on, a step that records the end of a try `worker` ran may push a try it starts (of
  /// the same named queue; in a chain, the next one) to this worker: the try is written claimed by
  /// `worker`, with a lease, in the step's own commit, and its notice, which carries it, wakes
  /// this object's `wait` (and no other worker's). `pushed` hands such tries out. `worker` names
  /// one worker process, unique to it (a claim's `worker` too); its session holds a lock while it
  /// takes pushes, so that a worker whose session ended is pushed nothing.
  virtual void accept_pushes(const std::string& worker) = 0;
  /// Up to `max` tries pushed to this worker that no call of this object handed out before (by
  /// `claim` or `pushed`), highest priority first, as their notices carried them (`wait` reads
  /// them); it asks the server when a notice came without its try (too long), after the session
  /// changed, and every few seconds. The others wait, claimed: a worker with no free slot puts
  /// them back (`put_back_pushes`), or they are lost when their lease runs out.
  virtual std::vector<queued_try> pushed(int max) = 0;
  /// Puts back in the queue, for anyone, the tries pushed to this worker that this object has not
  /// handed out, if their notices came (or may have: the session changed), and keeps taking
  /// pushes: for a worker with no free slot. Returns how many it put back.
  virtual int put_back_pushes() = 0;
  /// Whether tries pushed to this worker may be waiting for `pushed`: a notice came, or the
  /// session changed, since `pushed` last looked.
  virtual bool pushes_waiting() const = 0;
  /// Stops taking pushes: lets go of the session's lock, waits for every step that found this
  /// worker taking pushes to commit, then puts back in the queue, for anyone, the tries pushed to
  /// it that this object never handed out and those of `unstarted` (lease tokens of tries handed
  /// out that the worker did not start). Returns how many it put back.
  virtual int refuse_pushes(const std::vector<std::string>& unstarted) = 0;
  /// Records results in one transaction; per result, false when refused (its token is not the
  /// try's current lease: lost, or a stale copy of a result the batch also carries current). A
  /// batch carrying one try's current token twice records one of the two and accepts both.
  ///
  /// Its COMMIT does not wait for the disk (a chain's next step waits for it): a crash of the
  /// server may undo it. So this object keeps the results until `confirm` has made a durable
  /// commit after them on the same session, and writes them again as soon as it finds that session
  /// ended first (its next call; a crash or restart of the server ends every session). A result written
  /// again that had not been undone is refused, changing nothing. Meanwhile the results are
  /// visible at once, and the scheduler builds nothing on them before a durable commit of its own
  /// on the same server (the store's step or the ends' acknowledgement), which makes them durable.
  virtual std::vector<bool> complete(const std::vector<queued_result>& results) = 0;
  /// Results given to `complete` that no durable commit has confirmed yet: refused ones too (one
  /// may have been refused for a copy an earlier call wrote, whose commit was in doubt).
  virtual std::size_t unflushed() const = 0;
  /// Makes every result given to `complete` durable: one durable commit on the session they were
  /// written in (after writing again those of a session that ended). Throws, keeping them, when
  /// the server cannot be reached; a worker calls it now and then, and before it exits.
  virtual void confirm() = 0;
  /// Takes up to `max` finished tries (the scheduler's input), marking them taken but keeping them
  /// until `acknowledge`: an end is in the queue until the store holds it. Tries taken more than
  /// `stale_after` ago and never acknowledged (their scheduler died) are taken again. `read`, when
  /// given and ends were found, is called with them as soon as they are read, before the take is
  /// known to hold: a take only spares other schedulers the work of the same ends, and one that
  /// does not hold (not committed, or undone by a crash of the database) leaves them to be taken
  /// again, repeats the engine recognises. The ends are returned too.
  virtual std::vector<finished_try> take_finished(
      int max, std::chrono::milliseconds stale_after,
      const std::function<void(const std::vector<finished_try>&)>& read) = 0;
  /// Ends whose notices `wait("finished")` has read since the last call (a worker's completion
  /// notice carries its end), as a take returns them, without asking the server and without taking
  /// them: a collector hands them on at once and takes only now and then, and when
  /// `ends_unnoticed` says so. The same end may still come from a take (not taken, not yet
  /// acknowledged) or from another scheduler's notice.
  virtual std::vector<finished_try> noticed_ends() = 0;
  /// Whether, since the last take, an end's notice came without its end (too long for a notice)
  /// or more came than are kept: a take finds them.
  virtual bool ends_unnoticed() const = 0;
  /// As above, with no one to hand the ends to before the take commits.
  std::vector<finished_try> take_finished(int max, std::chrono::milliseconds stale_after) {
    return take_finished(max, stale_after, {});
  }
  /// Forgets taken ends by row id (enqueue with no tries). By id, not by key: a later try of the
  /// same key (a sensor's next poke) may be in the queue meanwhile, taken by another scheduler
  /// and not yet recorded.
  void acknowledge(const std::vector<std::int64_t>& ids) { enqueue({}, ids); }
  /// Claimed tries whose lease was not renewed for `lease` become lost: they are returned (and
  /// kept, taken, until acknowledged) as failed tries ("worker lost"); a late result for them is
  /// refused. Nothing expires while the server has been up for less than `lease` plus a client's
  /// longest pause between attempts to reach it (2 s): after a crash or restart, workers get a
  /// whole lease to reconnect and renew.
  virtual std::vector<finished_try> expire_leases(std::chrono::milliseconds lease) = 0;
  /// Waits up to `max` for a notification on `channel` (`queued` for workers, `finished` for
  /// schedulers); true when one came. Returns at once, false, when `stop` is requested, before or
  /// during the wait: a worker told to stop does not sit out its wait first. A worker taking
  /// pushes is woken by a push too (false, unless `channel`'s came as well; `pushes_waiting`).
  virtual bool wait(const std::string& channel, std::chrono::milliseconds max, std::stop_token stop) = 0;
  bool wait(const std::string& channel, std::chrono::milliseconds max) { return wait(channel, max, {}); }
  /// (dag, run, task, map index, try) of every try in the queue, whatever its state: after a scheduler
  /// restart, a try the store says is running but the queue does not hold was lost.
  virtual std::set<try_key> pending_keys() = 0;
  /// Tries in the queue (queued, claimed or finished but not yet collected), per DAG.
  virtual std::map<std::string, int> counts_by_dag() = 0;
  /// Numbers of queued and claimed tries (metrics, tests).
  virtual std::pair<std::int64_t, std::int64_t> counts() = 0;
};

/// Opens the queue in the PostgreSQL database at `url` (creating its table if needed).
std::unique_ptr<task_queue> open_task_queue(const std::string& url);

class write_attachment;  // dag/store/store.hpp

namespace detail {

/// Where the queue at `url` is, as a PostgreSQL store compares it with its own: the server, the
/// database, the role and the session options (the password and the client's name aside).
std::string queue_database(const std::string& url);
/// The tries of `tries` whose starts a store's change set records, queued in that change set's
/// transaction when the store is a PostgreSQL store on `database` with the same role and options
/// (change_set::attachment), after the ends `acknowledged` (row ids: the ends the change set
/// records) are forgotten in it, as `task_queue::enqueue` orders them; any other store leaves
/// both out. Once that transaction is known to have committed, `committed` is told the keys it
/// queued and the ends it forgot (from the thread that applied the change set); when its outcome
/// stays unknown (the store's apply threw) it is told nothing, though the tries may be queued and
/// run, and the ends forgotten: the tries' ends are recorded as any other, and forgetting an end
/// again deletes nothing.
std::shared_ptr<write_attachment> queue_with_store(
    std::string database, std::vector<queued_try> tries, std::vector<std::int64_t> acknowledged,
    std::function<void(std::set<try_key>&&, std::vector<std::int64_t>&&)> committed);

}  // namespace detail

}  // namespace dag
