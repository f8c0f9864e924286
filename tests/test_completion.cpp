// Shell completion and the manual page (`dagrun completion SHELL`, `dagrun man`), each tried in the
// real program that reads it: bash and fish complete real command lines, zsh loads its script,
// groff renders the page without a warning. Also --quiet and the one table of exit statuses.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <unistd.h>

#include <dag/exec/child_process.hpp>
#include <dag/runner/cli.hpp>

namespace {

struct epoch_clock final : dag::clock {
  dag::time_point now() const override { return dag::parse_time("2024-06-01T00:00:00Z"); }
};

std::string cli(const std::vector<std::string>& args, int expect = 0) {
  std::ostringstream out, err;
  epoch_clock clock;
  const int rc = dagrun::run_cli(args, out, err, clock);
  REQUIRE_MESSAGE(rc == expect, out.str() << err.str());
  return out.str() + err.str();
}

// A scratch folder with a DAGs folder holding `nightly`, and the generated scripts.
struct scratch {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("dagrun-completion-" + std::to_string(::getpid()));
  scratch() {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "dags");
    std::ofstream(dir / "dags" / "nightly.yaml")
        << "dag_id: nightly\nschedule: \"@daily\"\nstart_date: 2024-01-01\ntasks:\n"
           "  - task_id: a\n    operator: bash\n    bash_command: echo hi\n";
    for (const char* shell : {"bash", "zsh", "fish"}) std::ofstream(dir / shell) << cli({"completion", shell});
  }
  ~scratch() { std::filesystem::remove_all(dir); }

  // Runs `script` in `shell` with the real dagrun first on PATH and the DAGs folder in DAGRUN_DAGS.
  std::string shell(const std::string& program, const std::string& script) const {
    const std::string binary_dir = std::filesystem::path(DAGRUN_BINARY).parent_path().string();
    const std::string command = "cd '" + dir.string() + "' && PATH='" + binary_dir + "':$PATH DAGRUN_DAGS='" +
                                (dir / "dags").string() + "' " + program + " -c '" + script + "' > out.txt 2>&1";
    const int rc = std::system(command.c_str());
    std::ifstream in(dir / "out.txt");
    std::string out{std::istreambuf_iterator<char>(in), {}};
    REQUIRE_MESSAGE(rc == 0, program << " failed: " << out);
    return out;
  }
};

}  // namespace

TEST_CASE("Completion.BashCompletesCommandsSubcommandsOptionsValuesAndDagIds") {
  scratch s;
  // complete LINE: what bash offers for the last word of LINE (a trailing space: an empty word).
  const std::string prelude =
      "source ./bash; c() { read -ra COMP_WORDS <<< \"$1\"; [[ \"$1\" == *\" \" ]] && COMP_WORDS+=(\"\"); "
      "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _dagrun; echo \"$1=${COMPREPLY[*]}\"; }; ";
  const std::string out = s.shell("bash", prelude +
      "c \"dagrun da\"; c \"dagrun dag\"; c \"dagrun dags \"; c \"dagrun dags next --a\"; c \"dagrun --log-level w\"; "
      "c \"dagrun --dags /tmp ru\"; c \"dagrun trigger ni\"; c \"dagrun dags show \"; c \"dagrun schedule --ex\"; "
      "c \"dagrun schedule --executor \"; c \"dagrun completion \"");
  CHECK(out.find("dagrun da=dags datasets\n") != std::string::npos);
  CHECK(out.find("dagrun dag=dags\n") != std::string::npos);
  CHECK(out.find("dagrun dags =list show next pause unpause") != std::string::npos);
  CHECK(out.find("dagrun dags next --a=--after\n") != std::string::npos);
  CHECK(out.find("dagrun --log-level w=warn\n") != std::string::npos);
  CHECK(out.find("dagrun --dags /tmp ru=run runs\n") != std::string::npos);  // an option's value is not a command word
  CHECK(out.find("dagrun trigger ni=nightly\n") != std::string::npos);       // DAG ids from the real dagrun
  CHECK(out.find("dagrun dags show =nightly\n") != std::string::npos);
  CHECK(out.find("dagrun schedule --ex=--executor\n") != std::string::npos);
  CHECK(out.find("dagrun schedule --executor =local queue\n") != std::string::npos);
}

TEST_CASE("Completion.FishCompletesCommandsSubcommandsOptionsAndDagIds") {
  scratch s;
  const std::string out = s.shell("fish",
      "source ./fish; complete -C \"dagrun da\"; complete -C \"dagrun dags l\"; "
      "complete -C \"dagrun dags next --af\"; complete -C \"dagrun trigger ni\"; complete -C \"dagrun --dags /tmp ru\"");
  CHECK(out.find("dags\tcommands on dags") != std::string::npos);
  CHECK(out.find("list\tlist the DAGs") != std::string::npos);
  CHECK(out.find("--after\t") != std::string::npos);
  CHECK(out.find("nightly\tDAG") != std::string::npos);
  CHECK(out.find("runs\t") != std::string::npos);
  CHECK(out.find("run\t") != std::string::npos);
}

TEST_CASE("Completion.ZshLoadsItsScript") {
  scratch s;
  const std::string out = s.shell("zsh",
      "autoload -U compinit && compinit -u -D; source ./zsh; (( $+functions[_dagrun] )) && echo loaded; "
      "print -r -- ${_comps[dagrun]}");
  CHECK(out.find("loaded") != std::string::npos);
  CHECK(out.find("_bash_complete") != std::string::npos);  // registered for dagrun through bashcompinit
}

TEST_CASE("Completion.RefusesAnUnknownShell") {
  const auto out = cli({"completion", "tcsh"}, dagrun::exit_usage);
  CHECK(out.find("SHELL: expected bash, zsh or fish, got 'tcsh'") != std::string::npos);
}

TEST_CASE("Man.PageHasEveryCommandAndOptionAndRendersWithoutWarnings") {
  scratch s;
  const std::string page = cli({"man"});
  for (const auto& c : dagrun::all_commands()) {
    CHECK_MESSAGE(page.find(".SS dagrun " + c.words.front()) != std::string::npos, "no section for " << c.usage);
    std::ostringstream help, err;
    epoch_clock clock;
    std::vector<std::string> args = c.words;
    args.push_back("--help");
    REQUIRE(dagrun::run_cli(args, help, err, clock) == 0);
    // Every option --help lists is in the page (dashes escaped for troff).
    static const std::regex option(R"(  --([a-z][a-z_-]*))");
    const std::string text = help.str();
    for (auto it = std::sregex_iterator(text.begin(), text.end(), option); it != std::sregex_iterator(); ++it) {
      std::string escaped = "\\-\\-";
      for (char ch : (*it)[1].str()) escaped += ch == '-' ? std::string("\\-") : std::string(1, ch);
      CHECK_MESSAGE(page.find("\\fB" + escaped + "\\fR") != std::string::npos, c.usage << ": the page lacks --" << (*it)[1]);
    }
  }
  for (const auto& [status, meaning] : dagrun::exit_statuses())
    CHECK(page.find(".B " + std::to_string(status) + "\n") != std::string::npos);
  std::ofstream(s.dir / "dagrun.1") << page;
  // groff -ww prints every warning (a bad escape, a character it cannot show); -z renders nowhere.
  const std::string out = s.shell("sh", "groff -man -ww -z dagrun.1");
  CHECK_MESSAGE(out.empty(), out);
}

TEST_CASE("Cli.ExitStatusesAreOneTableInHelpAndDocs") {
  const std::string help = cli({"--help"});
  std::ifstream in(std::filesystem::path(DAG_SOURCE_DIR) / "docs" / "cli.md");
  const std::string docs{std::istreambuf_iterator<char>(in), {}};
  for (const auto& [status, meaning] : dagrun::exit_statuses()) {
    CHECK(help.find("  " + std::to_string(status) + "  " + meaning) != std::string::npos);
    CHECK_MESSAGE(docs.find("| `" + std::to_string(status) + "` | " + meaning + " |") != std::string::npos,
                  "docs/cli.md's exit status table lacks: " << meaning);
  }
}
