// `dagrun completion bash|zsh|fish` and `dagrun man`: shell completion and the manual page, both
// generated from the same command and option tables as `--help`, so neither can drift from it.
#include <dag/runner/cli.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

#include <boost/program_options.hpp>

#include <dag/core/error.hpp>

namespace po = boost::program_options;

namespace dagrun {
namespace {

struct option_info {
  std::string name;         // long name, without dashes
  char short_name = 0;      // e.g. 'n', or 0
  bool takes_value = false;
  std::string value_name;   // e.g. "N"
  std::string description;
};

struct command_info {
  std::vector<std::string> words;
  std::string usage, summary;
  std::vector<option_info> options;  // the command's own
  bool takes_dag = false;            // its first positional is a DAG id
};

std::vector<option_info> options_of(const po::options_description& d) {
  std::vector<option_info> out;
  for (const auto& o : d.options()) {
    option_info i;
    i.name = o->long_name();
    const std::string shown = o->format_name();  // "--name [ -n ]" or "-n [ --name ]"
    if (const auto at = shown.find(" -"); at != std::string::npos && shown.size() > at + 2 && shown[at + 2] != '-')
      i.short_name = shown[at + 2];
    if (shown.starts_with("-") && !shown.starts_with("--")) i.short_name = shown[1];
    i.takes_value = o->semantic()->max_tokens() > 0;
    if (i.takes_value) {
      i.value_name = o->format_parameter();
      if (const auto sp = i.value_name.find(' '); sp != std::string::npos) i.value_name.resize(sp);
    }
    i.description = o->description();
    out.push_back(std::move(i));
  }
  return out;
}

std::string joined(const std::vector<std::string>& words, const char* sep = " ");

struct cli_tables {
  std::vector<command_info> commands;
  std::vector<option_info> globals;
};

cli_tables tables() {
  cli_tables t;
  global_options g;
  t.globals = options_of(global_options_description(g));
  for (const auto& c : all_commands()) {
    command_info i{c.words, c.usage, c.summary, {}, false};
    po::options_description own;
    po::positional_options_description positional;
    if (c.declare) c.declare(own, positional);
    i.options = options_of(own);
    const std::string head = joined(c.words);  // usage lines start with the command words
    i.takes_dag = c.usage.starts_with(head + " DAG");
    t.commands.push_back(std::move(i));
  }
  return t;
}

std::string joined(const std::vector<std::string>& words, const char* sep) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : sep) + w;
  return s;
}

// Words for a shell's word list: names only, so nothing needs quoting.
std::string option_words(const std::vector<option_info>& options) {
  std::vector<std::string> out;
  for (const auto& o : options) out.push_back("--" + o.name);
  return joined(out);
}

std::string valued_options(const cli_tables& t) {
  std::set<std::string> out;
  for (const auto& o : t.globals)
    if (o.takes_value) out.insert("--" + o.name);
  for (const auto& c : t.commands)
    for (const auto& o : c.options)
      if (o.takes_value) out.insert("--" + o.name);
  return joined(std::vector<std::string>(out.begin(), out.end()));
}

// Top-level words, and for each group its subcommands.
std::pair<std::vector<std::string>, std::map<std::string, std::vector<std::string>>> command_words(const cli_tables& t) {
  std::vector<std::string> top;
  std::map<std::string, std::vector<std::string>> sub;
  for (const auto& c : t.commands) {
    if (std::find(top.begin(), top.end(), c.words[0]) == top.end()) top.push_back(c.words[0]);
    if (c.words.size() > 1) sub[c.words[0]].push_back(c.words[1]);
  }
  return {top, sub};
}

std::string shell_single_quoted(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// The bash function; zsh runs the same one through bashcompinit.
void print_bash_function(std::ostream& out, const cli_tables& t) {
  const auto [top, sub] = command_words(t);
  out << "_dagrun() {\n"
      << "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
      << "  local valued=' " << valued_options(t) << " '\n"
      << "  case \"$prev\" in\n"
      << "    --dags|--logs) COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n"
      << "    --log-level) COMPREPLY=($(compgen -W 'trace debug info warn error critical off' -- \"$cur\")); return ;;\n"
      << "    --executor) COMPREPLY=($(compgen -W 'local queue' -- \"$cur\")); return ;;\n"
      << "  esac\n"
      << "  if [[ \"$valued\" == *\" $prev \"* ]]; then COMPREPLY=($(compgen -f -- \"$cur\")); return; fi\n"
      << "  # The positional words before the cursor: the command, then its arguments.\n"
      << "  local words=() i w\n"
      << "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      << "    w=${COMP_WORDS[i]}\n"
      << "    case \"$w\" in\n"
      << "      -*) [[ \"$valued\" == *\" $w \"* ]] && ((i++)) ;;\n"
      << "      *) words+=(\"$w\") ;;\n"
      << "    esac\n"
      << "  done\n"
      << "  local globals='" << option_words(t.globals) << "'\n"
      << "  if ((${#words[@]} == 0)); then\n"
      << "    if [[ \"$cur\" == -* ]]; then COMPREPLY=($(compgen -W \"$globals --version\" -- \"$cur\"));\n"
      << "    else COMPREPLY=($(compgen -W '" << joined(top) << "' -- \"$cur\")); fi\n"
      << "    return\n"
      << "  fi\n"
      << "  if ((${#words[@]} == 1)); then\n"
      << "    case \"${words[0]}\" in\n";
  for (const auto& [group, words] : sub)
    out << "      " << group << ") COMPREPLY=($(compgen -W '" << joined(words) << "' -- \"$cur\")); return ;;\n";
  out << "    esac\n"
      << "  fi\n"
      << "  local command=\"${words[0]}\" own='' dag=0 given=1\n"
      << "  case \"${words[0]} ${words[1]}\" in\n";
  for (const auto& c : t.commands) {
    if (c.words.size() < 2) continue;
    out << "    '" << joined(c.words) << "') own='" << option_words(c.options) << "' dag=" << c.takes_dag << " given=2 ;;\n";
  }
  out << "    *)\n"
      << "      case \"${words[0]}\" in\n";
  for (const auto& c : t.commands) {
    if (c.words.size() != 1) continue;
    out << "        " << c.words[0] << ") own='" << option_words(c.options) << "' dag=" << c.takes_dag << " ;;\n";
  }
  out << "      esac ;;\n"
      << "  esac\n"
      << "  if [[ \"$cur\" == -* ]]; then COMPREPLY=($(compgen -W \"$own $globals\" -- \"$cur\")); return; fi\n"
      << "  # The first argument of a command that takes a DAG: the DAG ids of the DAGs folder.\n"
      << "  if ((dag == 1 && ${#words[@]} == given)); then\n"
      << "    COMPREPLY=($(compgen -W \"$(dagrun dags list 2>/dev/null | tail -n +2 | cut -d' ' -f1)\" -- \"$cur\"))\n"
      << "    return\n"
      << "  fi\n"
      << "  COMPREPLY=($(compgen -f -- \"$cur\"))\n"
      << "}\n";
}

void print_bash(std::ostream& out, const cli_tables& t) {
  out << "# bash completion for dagrun (made by `dagrun completion bash`).\n"
      << "# Install: dagrun completion bash > /usr/share/bash-completion/completions/dagrun\n";
  print_bash_function(out, t);
  out << "complete -F _dagrun dagrun\n";
}

void print_zsh(std::ostream& out, const cli_tables& t) {
  out << "#compdef dagrun\n"
      << "# zsh completion for dagrun (made by `dagrun completion zsh`): the bash function, through zsh's\n"
      << "# bashcompinit. Install: dagrun completion zsh > \"${fpath[1]}/_dagrun\"\n"
      << "autoload -U +X bashcompinit && bashcompinit\n";
  print_bash_function(out, t);
  out << "complete -F _dagrun dagrun\n";
}

void print_fish(std::ostream& out, const cli_tables& t) {
  const auto [top, sub] = command_words(t);
  out << "# fish completion for dagrun (made by `dagrun completion fish`).\n"
      << "# Install: dagrun completion fish > ~/.config/fish/completions/dagrun.fish\n"
      << "complete -c dagrun -e\n"
      << "# The command words typed so far (`dags list`), options and their values skipped.\n"
      << "function __dagrun_command\n"
      << "    set -l valued " << valued_options(t) << "\n"
      << "    set -l words\n"
      << "    set -l skip 0\n"
      << "    for w in (commandline -opc)[2..-1]\n"
      << "        if test $skip = 1\n"
      << "            set skip 0\n"
      << "        else if string match -q -- '-*' $w\n"
      << "            contains -- $w $valued; and set skip 1\n"
      << "        else\n"
      << "            set -a words $w\n"
      << "        end\n"
      << "    end\n"
      << "    echo $words\n"
      << "end\n"
      << "function __dagrun_is\n"
      << "    set -l typed (__dagrun_command)\n"
      << "    test \"$typed\" = \"$argv\"\n"
      << "end\n"
      << "complete -c dagrun -f\n";
  std::map<std::string, std::string> summary_of;
  for (const auto& c : t.commands) summary_of[joined(c.words)] = c.summary;
  for (const auto& word : top) {
    const std::string summary = sub.count(word) ? "commands on " + word : summary_of[word];
    out << "complete -c dagrun -n '__dagrun_is ''' -a " << word << " -d " << shell_single_quoted(summary) << "\n";
  }
  for (const auto& [group, words] : sub)
    for (const auto& w : words)
      out << "complete -c dagrun -n '__dagrun_is " << group << "' -a " << w << " -d "
          << shell_single_quoted(summary_of[group + " " + w]) << "\n";
  auto option_line = [&](const std::string& condition, const option_info& o) {
    out << "complete -c dagrun" << condition << " -l " << o.name;
    if (o.short_name) out << " -s " << o.short_name;
    if (o.takes_value) out << (o.name == "dags" || o.name == "logs" ? " -x -a '(__fish_complete_directories)'" : " -r");
    out << " -d " << shell_single_quoted(o.description) << "\n";
  };
  for (const auto& o : t.globals) option_line("", o);
  for (const auto& c : t.commands)
    for (const auto& o : c.options) option_line(" -n '__dagrun_is " + joined(c.words) + "'", o);
  for (const auto& c : t.commands)
    if (c.takes_dag)
      out << "complete -c dagrun -n '__dagrun_is " << joined(c.words)
          << "' -a '(dagrun dags list 2>/dev/null | tail -n +2 | string split -f1 \" \")' -d DAG\n";
}

// roff text: a backslash, a dash and a leading dot or quote mean something to troff, and troff
// reads bytes, so a character beyond ASCII (an ellipsis, a dash) goes as its \[uXXXX] name.
std::string roff(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto ch = static_cast<unsigned char>(s[i]);
    if (ch == '\\') out += "\\e";
    else if (ch == '-') out += "\\-";
    else if (ch < 0x80) out += static_cast<char>(ch);
    else {
      const std::size_t extra = ch >= 0xF0 ? 3 : ch >= 0xE0 ? 2 : ch >= 0xC0 ? 1 : 0;
      unsigned code = ch & (0x3Fu >> extra);
      std::size_t j = 0;
      for (; j < extra && i + 1 + j < s.size() && (static_cast<unsigned char>(s[i + 1 + j]) & 0xC0) == 0x80; ++j)
        code = (code << 6) | (static_cast<unsigned char>(s[i + 1 + j]) & 0x3Fu);
      i += j;
      if (extra == 0 || j < extra) code = 0xFFFD;  // not UTF-8: the replacement character
      char name[16];
      std::snprintf(name, sizeof name, "\\[u%04X]", code);
      out += name;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

void print_option_list(std::ostream& out, const std::vector<option_info>& options) {
  for (const auto& o : options) {
    out << ".TP\n\\fB\\-\\-" << roff(o.name) << "\\fR";
    if (o.short_name) out << ", \\fB\\-" << o.short_name << "\\fR";
    if (o.takes_value) out << " \\fI" << roff(o.value_name) << "\\fR";
    out << "\n" << roff(o.description) << "\n";
  }
}

void print_man(std::ostream& out, const cli_tables& t) {
  out << ".\\\" The dagrun manual page, made by `dagrun man` from the tables behind `dagrun --help`.\n"
      << ".TH DAGRUN 1 \"\" \"dagrun " << DAGRUN_VERSION << "\" \"User Commands\"\n"
      << ".SH NAME\ndagrun \\- Airflow's model as one binary: DAGs, schedules, retries, backfills\n"
      << ".SH SYNOPSIS\n.B dagrun\n[\\fIglobal options\\fR] \\fICOMMAND\\fR [\\fIoptions\\fR]\n"
      << ".SH DESCRIPTION\n"
      << "dagrun loads DAGs (YAML files and C++ DAG libraries) from a folder, schedules their runs, runs "
      << "their tasks with retries and trigger rules, and records every state in SQLite or PostgreSQL. "
      << "It serves /health, /metrics, a REST API and a web UI while it schedules.\n"
      << ".SH COMMANDS\n";
  for (const auto& c : t.commands) {
    out << ".SS dagrun " << roff(c.usage) << "\n" << roff(c.summary) << "\n";
    if (!c.options.empty()) {
      out << ".RS\n";
      print_option_list(out, c.options);
      out << ".RE\n";
    }
  }
  out << ".SH GLOBAL OPTIONS\n";
  print_option_list(out, t.globals);
  out << ".SH ENVIRONMENT\n";
  for (const auto& [name, what] : std::vector<std::pair<std::string, std::string>>{
           {"DAGRUN_DAGS", "the DAGs folder (--dags)"},
           {"DAGRUN_DB", "the metadata database URL (--db)"},
           {"DAGRUN_LOGS", "where try logs go (--logs)"},
           {"DAGRUN_API_TOKEN", "the bearer token the HTTP face requires; needed to listen beyond loopback"},
           {"DAGRUN_CONN_ID", "a connection for tasks, as a URL (masked in logs)"},
           {"DAGRUN_VAR_NAME", "a variable for tasks"},
           {"NO_COLOR", "when set and not empty, log lines carry no colour"}})
    out << ".TP\n.B " << name << "\n" << roff(what) << "\n";
  out << ".SH EXIT STATUS\n";
  for (const auto& [status, meaning] : exit_statuses()) out << ".TP\n.B " << status << "\n" << roff(meaning) << "\n";
  out << ".SH SEE ALSO\n"
      << "The guides installed with dagrun in /usr/share/doc/dagrun/docs: cli.md, yaml.md, concepts.md, http.md, "
         "reliability.md.\n";
}

}  // namespace

void add_completion_commands(std::vector<command>& out) {
  out.push_back({{"completion"}, "completion SHELL", "print shell completion for bash, zsh or fish",
                 [](po::options_description& d, po::positional_options_description& p) {
                   d.add_options()("shell", po::value<std::string>()->required()->value_name("SHELL"), "bash, zsh or fish");
                   p.add("shell", 1);
                 },
                 [](invocation& inv) {
                   const auto shell = inv.args["shell"].as<std::string>();
                   const auto t = tables();
                   if (shell == "bash") print_bash(inv.out, t);
                   else if (shell == "zsh") print_zsh(inv.out, t);
                   else if (shell == "fish") print_fish(inv.out, t);
                   else throw dag::usage_error("SHELL: expected bash, zsh or fish, got '" + shell + "'");
                   return exit_ok;
                 }});
  out.push_back({{"man"}, "man", "print dagrun's manual page (roff; `dagrun man | man -l -`)", nullptr, [](invocation& inv) {
                   print_man(inv.out, tables());
                   return exit_ok;
                 }});
}

}  // namespace dagrun
