#pragma once
// A SQLite store whose writes fail for a while: another connection holds its write lock, as a
// long transaction of another process would. Its reads go on (the store's database is in WAL
// mode); its writes fail once its busy timeout passes.

#include <exception>
#include <filesystem>

#include <SQLiteCpp/SQLiteCpp.h>

#include <dag/engine/engine.hpp>

#include "eventually.hpp"

namespace dag_test {

/// Holds the write lock of the SQLite database at `file` from its making until release().
class held_write_lock {
public:
  // (Waits up to 5 s for a write of the store's that is under way.)
  explicit held_write_lock(const std::filesystem::path& file) : db_(file.string(), SQLite::OPEN_READWRITE, 5000) {
    db_.exec("BEGIN EXCLUSIVE");
  }
  ~held_write_lock() {
    if (held_) db_.tryExec("ROLLBACK");  // never throws (closing the connection rolls back anyway)
  }
  held_write_lock(const held_write_lock&) = delete;
  held_write_lock& operator=(const held_write_lock&) = delete;
  void release() {
    if (!held_) return;
    held_ = false;
    db_.exec("ROLLBACK");
  }

private:
  SQLite::Database db_;
  bool held_ = true;
};

/// Steps `eng` until a pass fails (one with something to write, while the store refuses writes);
/// false when none did within the deadline.
inline bool a_pass_fails(dag::engine& eng) {
  return eventually([&] {
    try {
      eng.step();
      return false;
    } catch (const std::exception&) {
      return true;
    }
  });
}

}  // namespace dag_test
