// Command dispatch: global options may stand before or after the command words.
#include <dag/runner/cli.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <dag/operators/builtin.hpp>
#include <dag/core/json_text.hpp>
#include <dag/core/suggest.hpp>
#include <dag/load/check.hpp>

namespace po = boost::program_options;

namespace dagrun {
namespace {

constexpr const char* log_levels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};

}  // namespace

po::options_description global_options_description(global_options& g) {
  po::options_description d("Global options");
  d.add_options()
      ("dags", po::value(&g.dags_folder)->value_name("DIR"), "DAGs folder (env DAGRUN_DAGS, default ./dags)")
      ("db", po::value(&g.db)->value_name("URL"), "metadata database: sqlite:FILE or postgresql://… (env DAGRUN_DB, default sqlite:dagrun.db)")
      ("log-level", po::value(&g.log_level)->value_name("LEVEL"), "trace, debug, info, warn, error, critical or off (default info)")
      ("json", po::bool_switch(&g.json), "print listings as JSON arrays of objects")
      ("logs", po::value(&g.logs)->value_name("DIR"), "where try logs go (env DAGRUN_LOGS, default ./logs)")
      ("quiet,q", po::bool_switch(&g.quiet), "print only errors on stderr and no progress lines (unless --log-level says otherwise)")
      ("help,h", "show help (for a command: `dagrun COMMAND --help`)");
  return d;
}

const std::vector<std::pair<int, std::string>>& exit_statuses() {
  static const std::vector<std::pair<int, std::string>> table{
      {exit_ok, "success"},
      {exit_failed, "a run or task failed, or what was asked for does not exist (a run that already exists, a variable "
                    "that is not set, a log file that cannot be read)"},
      {exit_usage, "bad usage: unknown command or option, bad value, unknown DAG, task or run; or invalid DAGs (`validate`)"}};
  return table;
}

namespace {

bool takes_value(const std::string& arg) {
  return arg == "--dags" || arg == "--db" || arg == "--log-level" || arg == "--logs";
}

// Positional words of the command line, with their positions, skipping options and their values.
std::vector<std::pair<std::size_t, std::string>> positional_words(const std::vector<std::string>& args) {
  std::vector<std::pair<std::size_t, std::string>> out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (!a.empty() && a[0] == '-') {
      if (takes_value(a)) ++i;
      continue;
    }
    out.emplace_back(i, a);
  }
  return out;
}

std::string joined(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

void print_main_help(std::ostream& out, const std::vector<command>& commands, const po::options_description& globals) {
  out << "dagrun — Airflow's model as one binary: DAGs, schedules, retries, backfills.\n\n"
      << "Usage: dagrun [global options] COMMAND [options]\n\nCommands:\n";
  std::size_t width = 0;
  for (const auto& c : commands) width = std::max(width, c.usage.size());
  for (const auto& c : commands) out << "  " << c.usage << std::string(width - c.usage.size() + 2, ' ') << c.summary << "\n";
  out << "\n" << globals << "\n"
      << "Exit status:\n";
  for (const auto& [status, meaning] : exit_statuses()) out << "  " << status << "  " << meaning << "\n";
  out << "\n"
      << "Times are ISO-8601 (2024-01-01, 2024-01-01T06:00:00+02:00); a time without offset is UTC.\n"
      << "`dagrun COMMAND --help` shows a command's own options.\n";
}

void print_command_help(std::ostream& out, const command& c, const po::options_description& own,
                        const po::options_description& globals) {
  out << "Usage: dagrun " << c.usage << "\n\n" << c.summary << "\n";
  if (!own.options().empty()) out << "\n" << own;
  out << "\n" << globals;
}

int usage_failure(std::ostream& err, const std::string& message, const std::string& hint) {
  err << "dagrun: " << message << "\n";
  if (!hint.empty()) err << hint << "\n";
  return exit_usage;
}

}  // namespace

std::vector<command> all_commands() {
  std::vector<command> out;
  add_schedule_commands(out);
  add_worker_commands(out);
  add_run_commands(out);
  add_validate_commands(out);
  add_dags_commands(out);
  add_runs_commands(out);
  add_admin_commands(out);
  add_datasets_commands(out);
  add_version_commands(out);
  add_completion_commands(out);
  return out;
}

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, const dag::clock& now,
            std::vector<dag::definition> extra_dags) {
  const std::vector<command> commands = all_commands();
  global_options global;
  if (const char* v = std::getenv("DAGRUN_DAGS"); v && *v) global.dags_folder = v;
  if (const char* v = std::getenv("DAGRUN_DB"); v && *v) global.db = v;
  if (const char* v = std::getenv("DAGRUN_LOGS"); v && *v) global.logs = v;
  po::options_description globals = global_options_description(global);

  // The longest command whose words start the positional words.
  const auto words = positional_words(args);
  const command* chosen = nullptr;
  for (const auto& c : commands) {
    if (c.words.size() > words.size()) continue;
    bool match = true;
    for (std::size_t i = 0; i < c.words.size(); ++i) match = match && words[i].second == c.words[i];
    if (match && (!chosen || c.words.size() > chosen->words.size())) chosen = &c;
  }
  const bool wants_help = std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; });
  if (!chosen) {
    if (words.empty()) {
      if (wants_help) {
        print_main_help(out, commands, globals);
        return exit_ok;
      }
      if (std::find(args.begin(), args.end(), "--version") != args.end()) {
        print_version(out);
        return exit_ok;
      }
      print_main_help(err, commands, globals);
      return exit_usage;
    }
    // A known group with a wrong or missing subcommand, or an unknown command.
    std::vector<std::string> names, subcommands;
    for (const auto& c : commands) {
      names.push_back(c.words.front());
      if (c.words.size() > 1 && c.words.front() == words[0].second) subcommands.push_back(c.words[1]);
    }
    if (!subcommands.empty()) {
      const std::string given = words.size() > 1 ? "'" + words[1].second + "'" : "nothing";
      return usage_failure(err, words[0].second + ": expected one of " + joined(subcommands) + ", got " + given +
                                    (words.size() > 1 ? dag::did_you_mean(words[1].second, subcommands) : ""),
                           "See `dagrun --help`.");
    }
    return usage_failure(err, "unknown command '" + words[0].second + "'" + dag::did_you_mean(words[0].second, names),
                         "See `dagrun --help`.");
  }

  // Everything but the command words is parsed against the global and the command's options.
  std::vector<std::string> rest;
  for (std::size_t i = 0, w = 0; i < args.size(); ++i) {
    if (w < chosen->words.size() && words[w].first == i) {
      ++w;
      continue;
    }
    rest.push_back(args[i]);
  }
  po::options_description own("Options of `" + joined(chosen->words) + "`");
  po::positional_options_description positional;
  if (chosen->declare) chosen->declare(own, positional);
  po::options_description all;
  all.add(globals).add(own);

  static const dag::operator_catalog operators = dag::builtin_operators();
  program_dags program(std::move(extra_dags));
  invocation inv{global, {}, out, err, now, operators, &program};
  try {
    po::store(po::command_line_parser(rest).options(all).positional(positional).run(), inv.args);
    if (inv.args.count("help")) {
      print_command_help(out, *chosen, own, globals);
      return exit_ok;
    }
    po::notify(inv.args);
  } catch (const po::required_option& e) {
    // A positional argument is an option to program_options, which would name it as one
    // ("the option '--run_id' is required"): it is named as the usage line shows it (RUN_ID).
    std::string name = e.get_option_name();
    while (name.starts_with('-')) name.erase(0, 1);
    bool is_positional = false;
    for (unsigned i = 0; i < positional.max_total_count() && i < 16; ++i)
      is_positional = is_positional || positional.name_for_position(i) == name;
    if (!is_positional) return usage_failure(err, joined(chosen->words) + ": " + e.what(), "Usage: dagrun " + chosen->usage);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return usage_failure(err, joined(chosen->words) + ": missing " + name, "Usage: dagrun " + chosen->usage);
  } catch (const po::error& e) {
    return usage_failure(err, joined(chosen->words) + ": " + e.what(), "Usage: dagrun " + chosen->usage);
  }
  inv.global = global;
  if (std::find(std::begin(log_levels), std::end(log_levels), inv.global.log_level) == std::end(log_levels))
    return usage_failure(err, "--log-level: unknown level '" + inv.global.log_level + "'" +
                                  dag::did_you_mean(inv.global.log_level, log_levels),
                         "Levels: trace, debug, info, warn, error, critical, off.");
  // Each try's log path is stored and looked up again: PostgreSQL would hold one that is not UTF-8
  // converted (each bad byte U+FFFD), and the log would no longer be found.
  if (!dag::is_utf8_text(inv.global.logs))
    return usage_failure(err, "--logs: the folder's path must be UTF-8 text (from --logs or DAGRUN_LOGS)",
                         "Use a folder whose path is UTF-8.");
  // Logs go to stderr, line by line, so a supervisor (or a test) sees them as they happen.
  static const auto logger = [] {
    // NO_COLOR (no-color.org): any non-empty value turns colours off; otherwise only on a terminal.
    const char* no_color = std::getenv("NO_COLOR");
    auto l = spdlog::stderr_color_mt("dagrun", no_color && *no_color ? spdlog::color_mode::never : spdlog::color_mode::automatic);
    spdlog::set_default_logger(l);
    spdlog::flush_on(spdlog::level::trace);
    return l;
  }();
  const bool level_given = std::any_of(args.begin(), args.end(), [](const std::string& a) {
    return a == "--log-level" || a.starts_with("--log-level=");
  });
  if (inv.global.quiet && !level_given) inv.global.log_level = "error";
  spdlog::set_level(spdlog::level::from_str(inv.global.log_level));

  try {
    return chosen->run(inv);
  } catch (const dag::usage_error& e) {
    return usage_failure(err, joined(chosen->words) + ": " + e.what(), "Usage: dagrun " + chosen->usage);
  } catch (const dag::error& e) {
    err << "dagrun: " << e.what() << "\n";
    return exit_failed;
  }
}

// Prints rows as aligned columns under a header.
void print_table(std::ostream& out, const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      s += cells[c];
      if (c + 1 < cells.size()) s += std::string(width[c] - cells[c].size() + 2, ' ');
    }
    out << s << "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
}

dag::dag_folder load_dags(const invocation& inv, bool quiet) {
  return with_program_dags(inv, dag::load_dag_folder(inv.global.dags_folder, inv.operators), quiet);
}

const dag::dag_folder& program_dags::checked(const dag::operator_catalog& operators) {
  if (!checked_) {
    checked_.emplace();
    for (auto& d : unchecked_) {
      auto problems = dag::check(d, operators);  // in place: the program handed them over
      if (problems.empty()) checked_->dags.push_back(std::make_shared<const dag::definition>(std::move(d)));
      else checked_->problems.insert(checked_->problems.end(), problems.begin(), problems.end());
    }
    unchecked_.clear();
  }
  return *checked_;
}

dag::dag_folder with_program_dags(const invocation& inv, dag::dag_folder folder, bool quiet) {
  if (inv.extra_dags) {
    const dag::dag_folder& program = inv.extra_dags->checked(inv.operators);
    folder.problems.insert(folder.problems.end(), program.problems.begin(), program.problems.end());
    for (const auto& d : program.dags) {
      if (const auto* other = folder.find(d->id())) {
        folder.problems.emplace_back(dag::error_context{}, "dag_id '" + d->id() + "' is defined both in C++ and in " +
                                                                  other->where().file);
        continue;
      }
      folder.dags.push_back(d);
    }
  }
  if (!quiet)
    for (const auto& p : folder.problems) inv.err << "import error: " << p.what() << "\n";
  return folder;
}

const dag::definition* find_dag(const invocation& inv, const dag::dag_folder& folder, const std::string& dag_id) {
  if (const auto* d = folder.find(dag_id)) return d;
  std::vector<std::string> ids;
  for (const auto& d : folder.dags) ids.push_back(d->id());
  inv.err << "dagrun: unknown DAG '" << dag_id << "'" << dag::did_you_mean(dag_id, ids) << " in "
          << inv.global.dags_folder << "\n";
  return nullptr;
}

}  // namespace dagrun
