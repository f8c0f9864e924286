#pragma once
/// @file The kind of write_attachment a PostgreSQL store writes in its own transaction (the task
/// queue's acknowledgements and tries, pg_task_queue.cpp): private to libdag, as
/// pg_connection.hpp is.

#include <span>
#include <string>

#include <dag/store/store.hpp>

#include "pg_connection.hpp"

namespace dag::detail {

/// Rows a PostgreSQL store writes in a change set's transaction when they belong in its database.
class pg_write_attachment : public write_attachment {
public:
  /// Where its rows belong, as pg_target::identity names it (server, database, role, session
  /// options): a store whose sessions differ in any of these (or name the same ones otherwise)
  /// leaves them to the attachment's owner, since its role or search path may not reach them.
  virtual const std::string& database() const = 0;
  /// Called at the start of each attempt of the transaction, before the store's first statement:
  /// what it holds back on `conn` (pg_connection::send_later) goes with the transaction's BEGIN.
  virtual void open(pg_connection& conn) = 0;
  /// Writes its rows in `tx` on `conn` (the store's), for the tries whose claims won (`started`).
  /// Called at every attempt of the transaction; only the one that commits counts.
  virtual void write(pg_connection& conn, pqxx::transaction_base& tx,
                     std::span<const task_instance_record* const> started) = 0;
};

}  // namespace dag::detail
