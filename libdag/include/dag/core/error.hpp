#pragma once
/// @file The one root error type of libdag, carrying where a problem was found.

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace dag {

/// Where an error belongs: any part may be empty.
struct error_context {
  std::string file;           ///< source file (YAML or C++ DAG library), if any
  int line = 0;               ///< 1-based line in `file`, 0 when unknown
  std::string dag_id;         ///< DAG the error concerns, if any
  std::string task_id;        ///< task the error concerns, if any
  int try_number = 0;         ///< try the error concerns, 0 when none
};

/// Formats a context and message as `file:line: message` (file and line only when known).
inline std::string format_error(const error_context& where, const std::string& message) {
  std::string out;
  if (!where.file.empty()) {
    out += where.file;
    if (where.line > 0) out += ':' + std::to_string(where.line);
    out += ": ";
  }
  out += message;
  return out;
}

/// The root of every exception libdag throws; `what()` is the formatted message.
class error : public std::runtime_error {
public:
  /// An error with a message and no location.
  explicit error(const std::string& message) : std::runtime_error(message), message_(message) {}
  /// An error with a location; `what()` reads `file:line: message`.
  error(error_context where, const std::string& message)
      : std::runtime_error(format_error(where, message)), where_(std::move(where)), message_(message) {}

  /// Where the error was found.
  const error_context& where() const noexcept { return where_; }
  /// The message without its location prefix.
  const std::string& message() const noexcept { return message_; }

private:
  error_context where_;
  std::string message_;
};

/// A bad DAG definition (YAML or C++): reported by `dagrun validate`, exit status 2.
class definition_error : public error {
public:
  using error::error;
};

/// Bad user input on the command line or an API (a date, a duration, a flag).
class usage_error : public error {
public:
  using error::error;
};

/// A change that lost a race it may win if tried again (a scheduler moved the same run on
/// meanwhile): the API answers 409.
class conflict_error : public error {
public:
  using error::error;
};

}  // namespace dag
