#pragma once
// The command line of dagrun: global options, command dispatch, exit codes.

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/positional_options.hpp>
#include <boost/program_options/variables_map.hpp>

#include <dag/core/time.hpp>
#include <dag/load/dag_folder.hpp>
#include <dag/load/operator_catalog.hpp>

namespace dagrun {

/// Exit statuses of PRODUCT.md.
enum exit_status : int { exit_ok = 0, exit_failed = 1, exit_usage = 2 };

/// Options every command accepts.
struct global_options {
  std::string dags_folder = "./dags";  ///< --dags / DAGRUN_DAGS
  std::string db = "sqlite:dagrun.db"; ///< --db / DAGRUN_DB
  std::string log_level = "info";      ///< --log-level
  bool json = false;                   ///< --json
  std::string logs = "./logs";         ///< --logs / DAGRUN_LOGS: where try logs go
  bool quiet = false;                  ///< --quiet: errors only on stderr, no progress lines
};

/// Every exit status with its meaning, as `--help`, `dagrun man` and docs/cli.md give them.
const std::vector<std::pair<int, std::string>>& exit_statuses();

/// The global options (bound to `g`), as `--help` lists them.
boost::program_options::options_description global_options_description(global_options& g);

/// The C++ DAGs of a program that embeds the runner, checked once, when a command first asks
/// for them (a command that loads no DAGs does not check them), and shared from then on: a
/// command, and each reload of the daemon, adds the same definitions, never copies.
class program_dags {
public:
  /// The program's DAGs, unchecked.
  explicit program_dags(std::vector<dag::definition> dags = {}) : unchecked_(std::move(dags)) {}
  /// Those that passed dag::check (with `operators`, on the first call), in the program's order,
  /// and the problems of the others.
  const dag::dag_folder& checked(const dag::operator_catalog& operators);

private:
  std::vector<dag::definition> unchecked_;
  std::optional<dag::dag_folder> checked_;
};

/// What a command runs with: its options, streams and clock.
struct invocation {
  global_options global;                       ///< global options
  boost::program_options::variables_map args;  ///< the command's own options and positionals
  std::ostream& out;                           ///< standard output
  std::ostream& err;                           ///< standard error
  const dag::clock& now;                       ///< the clock (injected in tests)
  const dag::operator_catalog& operators;      ///< known operators
  program_dags* extra_dags = nullptr;          ///< DAGs handed in by a program embedding the runner
};

/// One command: its words (`dags next`), summary, options and body.
struct command {
  std::vector<std::string> words;                          ///< e.g. {"dags", "next"}
  std::string usage;                                       ///< e.g. "dags next DAG [-n N] [--after TS]"
  std::string summary;                                     ///< one line for `dagrun --help`
  std::function<void(boost::program_options::options_description&,
                     boost::program_options::positional_options_description&)> declare;  ///< options
  std::function<int(invocation&)> run;                     ///< the body; returns the exit status
};

/// Every command, in the order `dagrun --help` lists them.
std::vector<command> all_commands();

/// The commands of each file.
void add_validate_commands(std::vector<command>& out);
void add_dags_commands(std::vector<command>& out);
void add_version_commands(std::vector<command>& out);
/// What `dagrun version` and `dagrun --version` print: the version, and the allocator in use.
void print_version(std::ostream& out);
void add_runs_commands(std::vector<command>& out);
void add_admin_commands(std::vector<command>& out);
void add_datasets_commands(std::vector<command>& out);
void add_run_commands(std::vector<command>& out);
void add_schedule_commands(std::vector<command>& out);
void add_worker_commands(std::vector<command>& out);
void add_completion_commands(std::vector<command>& out);

/// Runs dagrun with `args` (without the program name); returns the exit status. `extra_dags` are
/// C++ DAGs of a program that embeds the runner; they join the DAGs folder's.
int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, const dag::clock& now,
            std::vector<dag::definition> extra_dags = {});

/// Prints rows as aligned columns under a header.
void print_table(std::ostream& out, const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

/// Loads the DAG folder of the invocation; prints import errors to `err` unless `quiet`.
dag::dag_folder load_dags(const invocation& inv, bool quiet = false);
/// `folder` (the invocation's DAGs folder, loaded) with the C++ DAGs of the program that embeds
/// the runner added; prints import errors to `err` unless `quiet`. load_dags is the folder loaded
/// and passed through it.
dag::dag_folder with_program_dags(const invocation& inv, dag::dag_folder folder, bool quiet = false);

/// The DAG named `dag_id`, or prints a usage error (with a suggestion) and returns nullptr.
const dag::definition* find_dag(const invocation& inv, const dag::dag_folder& folder, const std::string& dag_id);

}  // namespace dagrun
