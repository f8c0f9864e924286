// The shipped deployment files (deploy/) against the program: every metric an alert rule or the
// dashboard names is one dagrun exports, and the service units use only options dagrun accepts.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <unistd.h>

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

namespace {

struct epoch_clock final : dag::clock {
  dag::time_point now() const override { return {}; }
};

// A dagrun command line from a deployment file (its arguments after the binary): the command must
// exist and every --option must be one its --help lists.
void check_command_line(const std::string& where, const std::vector<std::string>& args) {
  REQUIRE_MESSAGE(!args.empty(), where << ": no dagrun command");
  std::ostringstream out, err;
  epoch_clock clock;
  REQUIRE_MESSAGE(dagrun::run_cli({args.front(), "--help"}, out, err, clock) == 0, where << ": no command " << args.front());
  const std::string help = out.str();
  for (const auto& word : args)
    if (word.starts_with("--"))
      CHECK_MESSAGE(help.find(word + " ") != std::string::npos, where << ": " << args.front() << " has no option " << word);
}

std::vector<std::string> strings_of(const YAML::Node& list) {
  std::vector<std::string> out;
  for (const auto& n : list) out.push_back(n.as<std::string>());
  return out;
}

// Every YAML document of a file (manifests hold several, separated by ---).
std::vector<YAML::Node> documents(const std::filesystem::path& p) { return YAML::LoadAllFromFile(p.string()); }

// `labels` has every key/value of `wanted`.
bool has_labels(const YAML::Node& labels, const YAML::Node& wanted) {
  for (const auto& kv : wanted) {
    const auto key = kv.first.as<std::string>();
    if (!labels[key] || labels[key].as<std::string>() != kv.second.as<std::string>()) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("Deploy.ServiceUnitsUseOnlyOptionsTheCommandsAccept") {
  for (const char* unit : {"dagrun-scheduler.service", "dagrun-worker@.service"}) {
    const std::string text = read(deploy / "systemd" / unit);
    const auto at = text.find("ExecStart=/usr/local/bin/dagrun ");
    REQUIRE(at != std::string::npos);
    std::istringstream words(text.substr(at, text.find('\n', at) - at));
    std::vector<std::string> args;
    std::string word;
    words >> word;  // ExecStart=…/dagrun
    while (words >> word) args.push_back(word);
    check_command_line(unit, args);
  }
}

TEST_CASE("Deploy.KubernetesManifestsFitTogether") {
  const auto dir = deploy / "kubernetes";
  const YAML::Node kustomization = YAML::LoadFile((dir / "kustomization.yaml").string());
  std::set<std::string> listed;
  for (const auto& r : kustomization["resources"]) listed.insert(r.as<std::string>());
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    if (name != "kustomization.yaml") CHECK_MESSAGE(listed.contains(name), name << " is not in kustomization.yaml");
  }
  std::map<std::string, std::vector<YAML::Node>> by_kind;
  for (const auto& file : listed) {
    REQUIRE_MESSAGE(std::filesystem::exists(dir / file), "kustomization.yaml lists missing " << file);
    for (const auto& doc : documents(dir / file)) {
      REQUIRE_MESSAGE(doc["apiVersion"], file << ": no apiVersion");
      REQUIRE_MESSAGE(doc["metadata"]["name"], file << ": no metadata.name");
      by_kind[doc["kind"].as<std::string>()].push_back(doc);
    }
  }
  auto named = [&](const std::string& kind, const std::string& name) -> YAML::Node {
    for (const auto& d : by_kind[kind])
      if (d["metadata"]["name"].as<std::string>() == name) return d;
    return YAML::Node();
  };
  const auto exported = exported_metrics();

  REQUIRE(by_kind["Deployment"].size() == 2);
  for (const auto& d : by_kind["Deployment"]) {
    const auto name = d["metadata"]["name"].as<std::string>();
    const auto pod = d["spec"]["template"];
    CHECK_MESSAGE(has_labels(pod["metadata"]["labels"], d["spec"]["selector"]["matchLabels"]), name << ": selector does not match its pods");
    CHECK(pod["spec"]["securityContext"]["runAsNonRoot"].as<bool>());
    const auto container = pod["spec"]["containers"][0];
    check_command_line(name, strings_of(container["args"]));
    CHECK(container["envFrom"][0]["secretRef"]["name"].as<std::string>() == "dagrun");
    CHECK(named("Secret", "dagrun"));
    for (const auto& v : pod["spec"]["volumes"]) {
      if (v["configMap"]) CHECK_MESSAGE(named("ConfigMap", v["configMap"]["name"].as<std::string>()), name << ": no such ConfigMap");
      if (v["persistentVolumeClaim"])
        CHECK_MESSAGE(named("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"].as<std::string>()), name << ": no such claim");
    }
    // A drain (--grace) must end before Kubernetes kills the pod.
    const auto args = strings_of(container["args"]);
    const auto grace = std::find(args.begin(), args.end(), "--grace");
    REQUIRE(grace != args.end());
    CHECK(pod["spec"]["terminationGracePeriodSeconds"].as<int>() > std::stoi(*(grace + 1)));
  }

  const auto scheduler = named("Deployment", "dagrun-scheduler");
  REQUIRE(scheduler);
  CHECK(scheduler["spec"]["replicas"].as<int>() == 2);
  const auto container = scheduler["spec"]["template"]["spec"]["containers"][0];
  for (const char* probe : {"livenessProbe", "readinessProbe"}) {
    CHECK(container[probe]["httpGet"]["path"].as<std::string>() == "/health");
    CHECK(container[probe]["httpGet"]["port"].as<std::string>() == container["ports"][0]["name"].as<std::string>());
  }
  const auto args = strings_of(container["args"]);
  const auto listen = std::find(args.begin(), args.end(), "--listen");
  REQUIRE(listen != args.end());
  CHECK((listen + 1)->ends_with(":" + container["ports"][0]["containerPort"].as<std::string>()));

  const auto service = named("Service", "dagrun");
  REQUIRE(service);
  CHECK(has_labels(scheduler["spec"]["template"]["metadata"]["labels"], service["spec"]["selector"]));
  const auto monitor = by_kind["ServiceMonitor"].at(0);
  CHECK(has_labels(service["metadata"]["labels"], monitor["spec"]["selector"]["matchLabels"]));
  CHECK(monitor["spec"]["endpoints"][0]["port"].as<std::string>() == service["spec"]["ports"][0]["name"].as<std::string>());
  CHECK(monitor["spec"]["endpoints"][0]["path"].as<std::string>() == "/metrics");

  const auto scaled = by_kind["ScaledObject"].at(0);
  CHECK(named("Deployment", scaled["spec"]["scaleTargetRef"]["name"].as<std::string>()));
  const auto query = scaled["spec"]["triggers"][0]["metadata"]["query"].as<std::string>();
  const auto metrics = metrics_in(query);
  CHECK(!metrics.empty());
  for (const auto& m : metrics) CHECK_MESSAGE(exported.contains(m), "the ScaledObject's query uses unknown metric " << m);
}

TEST_CASE("Deploy.KubernetesExampleDagValidates") {
  const auto dags = YAML::LoadFile((deploy / "kubernetes" / "dags-configmap.yaml").string())["data"];
  const auto folder = std::filesystem::temp_directory_path() / ("dagrun-k8s-dags-" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  for (const auto& kv : dags) std::ofstream(folder / kv.first.as<std::string>()) << kv.second.as<std::string>();
  std::ostringstream out, err;
  epoch_clock clock;
  const int rc = dagrun::run_cli({"validate", folder.string()}, out, err, clock);
  std::filesystem::remove_all(folder);
  CHECK_MESSAGE(rc == 0, out.str() << err.str());
  CHECK(out.str().find("1 DAG valid") != std::string::npos);
}

TEST_CASE("Deploy.ContainerImageBuildsWithTheTestedScripts") {
  const std::filesystem::path root(DAG_SOURCE_DIR);
  const std::string text = read(root / "Dockerfile");
  std::vector<std::string> from, run, user, expose, healthcheck, entrypoint, cmd;
  std::istringstream lines(text);
  std::string line, logical;
  // Instructions, with `\` continuations joined.
  std::vector<std::string> instructions;
  while (std::getline(lines, line)) {
    if (line.starts_with("#") || line.empty()) continue;
    if (line.ends_with("\\")) {
      logical += line.substr(0, line.size() - 1);
      continue;
    }
    instructions.push_back(logical + line);
    logical.clear();
  }
  std::map<std::string, std::vector<std::string>> by_word;
  for (const auto& i : instructions) by_word[i.substr(0, i.find(' '))].push_back(i.substr(i.find(' ') + 1));
  REQUIRE(by_word["FROM"].size() == 2);  // build stage, then the image
  for (const auto& f : by_word["FROM"]) CHECK(f.starts_with("debian:12"));
  // The build stage runs the scripts the tests run (install-deps in CI, package.sh in the
  // Package.Debian test).
  bool installs = false, packages = false;
  for (const auto& r : by_word["RUN"]) {
    installs |= r.find("./scripts/install-deps.sh") != std::string::npos;
    packages |= r.find("./scripts/package.sh") != std::string::npos;
  }
  CHECK(installs);
  CHECK(packages);
  for (const char* script : {"scripts/install-deps.sh", "scripts/package.sh"}) {
    const auto perms = std::filesystem::status(root / script).permissions();
    CHECK_MESSAGE((perms & std::filesystem::perms::owner_exec) != std::filesystem::perms::none, script << " is not executable");
  }
  REQUIRE(by_word["USER"].size() == 1);
  CHECK(by_word["USER"][0] == "dagrun");
  CHECK(by_word["EXPOSE"] == std::vector<std::string>{"8080"});
  REQUIRE(by_word["HEALTHCHECK"].size() == 1);
  CHECK(by_word["HEALTHCHECK"][0].find("/health") != std::string::npos);
  CHECK(by_word["ENTRYPOINT"] == std::vector<std::string>{R"(["dagrun"])"});
  REQUIRE(by_word["CMD"].size() == 1);
  check_command_line("Dockerfile CMD", strings_of(YAML::Load(by_word["CMD"][0])));  // a JSON array is YAML
}

TEST_CASE("Deploy.ComposeRunsTwoSchedulersTwoWorkersAndPrometheus") {
  const YAML::Node compose = YAML::LoadFile((deploy / "compose.yaml").string());
  int schedulers = 0, workers = 0;
  std::vector<std::string> scheduler_names;
  for (const auto& kv : compose["services"]) {
    const auto name = kv.first.as<std::string>();
    const auto service = kv.second;
    if (!service["command"] || name == "prometheus") continue;
    const auto args = strings_of(service["command"]);
    check_command_line("compose " + name, args);
    // yaml-cpp keeps the `<<` merge key as a key: the image comes from the shared block.
    CHECK(service["<<"]["build"]["dockerfile"].as<std::string>() == "Dockerfile");
    if (args.front() == "schedule") ++schedulers, scheduler_names.push_back(name);
    if (args.front() == "worker") ++workers;
  }
  CHECK(schedulers == 2);
  CHECK(workers == 2);
  CHECK(compose["services"]["postgres"]);
  const auto prometheus = compose["services"]["prometheus"];
  REQUIRE(prometheus);
  const auto mount = prometheus["volumes"][0].as<std::string>();
  const auto config = deploy / mount.substr(2, mount.find(':') - 2);
  const YAML::Node scrape = YAML::LoadFile(config.string());
  std::set<std::string> targets;
  for (const auto& t : scrape["scrape_configs"][0]["static_configs"][0]["targets"]) targets.insert(t.as<std::string>());
  for (const auto& s : scheduler_names) CHECK_MESSAGE(targets.contains(s + ":8080"), "Prometheus does not scrape " << s);
}
