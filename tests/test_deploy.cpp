// The shipped deployment files (deploy/) against the program: every metric an alert rule or the
// dashboard names is one dagrun exports, and the service units use only options dagrun accepts.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <dag/engine/engine.hpp>
#include <dag/metrics/registry.hpp>

#include <dag/http/face.hpp>
#include <dag/runner/cli.hpp>

namespace {

const std::filesystem::path deploy = std::filesystem::path(DAG_SOURCE_DIR) / "deploy";

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  REQUIRE_MESSAGE(in.good(), "cannot read " << p);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The metric families a running scheduler declares (the engine's and the HTTP face's).
std::set<std::string> exported_metrics() {
  struct epoch_clock final : dag::clock {
    dag::time_point now() const override { return {}; }
  } clock;
  dag::metrics_registry m;
  dag::declare_engine_metrics(m);
  dag::http_face_options options;
  options.db_url = "sqlite::memory:";
  dag::http_face face(options, m, clock);
  std::set<std::string> out;
  std::istringstream text(m.text());
  for (std::string line; std::getline(text, line);)
    if (line.starts_with("# TYPE ")) out.insert(line.substr(7, line.find(' ', 7) - 7));
  return out;
}

// Metric names in a PromQL expression: our prefixes, without a histogram's series suffixes.
std::set<std::string> metrics_in(const std::string& expr) {
  static const std::regex name(R"(\b((dagrun|http)_[a-z_]+))");
  std::set<std::string> out;
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name); it != std::sregex_iterator(); ++it) {
    std::string n = (*it)[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (n.ends_with(suffix)) n.resize(n.size() - std::string(suffix).size());
    out.insert(n);
  }
  return out;
}

}  // namespace

TEST_CASE("Deploy.AlertRulesNameOnlyExportedMetrics") {
  const auto exported = exported_metrics();
  const YAML::Node rules = YAML::LoadFile((deploy / "prometheus" / "alerts.yml").string());
  int checked = 0;
  for (const auto& group : rules["groups"])
    for (const auto& rule : group["rules"]) {
      const std::string expr = rule["expr"].as<std::string>();
      for (const auto& m : metrics_in(expr)) {
        CHECK_MESSAGE(exported.contains(m), "alert " << rule["alert"].as<std::string>() << " uses unknown metric " << m);
        ++checked;
      }
    }
  CHECK(checked >= 8);
}

TEST_CASE("Deploy.DashboardNamesOnlyExportedMetrics") {
  const auto exported = exported_metrics();
  const auto dashboard = nlohmann::json::parse(read(deploy / "grafana" / "dagrun-dashboard.json"));
  int checked = 0;
  for (const auto& panel : dashboard["panels"])
    for (const auto& target : panel["targets"])
      for (const auto& m : metrics_in(target["expr"].get<std::string>())) {
        CHECK_MESSAGE(exported.contains(m), "panel '" << panel["title"].get<std::string>() << "' uses unknown metric " << m);
        ++checked;
      }
  CHECK(checked >= 10);
}

TEST_CASE("Deploy.ServiceUnitsUseOnlyOptionsTheCommandsAccept") {
  for (const char* unit : {"dagrun-scheduler.service", "dagrun-worker@.service"}) {
    const std::string text = read(deploy / "systemd" / unit);
    const auto at = text.find("ExecStart=/usr/local/bin/dagrun ");
    REQUIRE(at != std::string::npos);
    std::istringstream words(text.substr(at, text.find('\n', at) - at));
    std::string word, command;
    words >> word >> command;  // ExecStart=…/dagrun, then the command
    std::ostringstream out, err;
    struct epoch_clock final : dag::clock {
      dag::time_point now() const override { return {}; }
    } clock;
    REQUIRE(dagrun::run_cli({command, "--help"}, out, err, clock) == 0);
    const std::string help = out.str();
    while (words >> word)
      if (word.starts_with("--")) CHECK_MESSAGE(help.find(word + " ") != std::string::npos, unit << ": " << command << " has no option " << word);
  }
}
