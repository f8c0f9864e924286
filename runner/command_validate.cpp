// `dagrun validate [PATH]`: load every DAG, print each problem as `file:line: message`.
#include <dag/runner/cli.hpp>

#include <ostream>

#include <nlohmann/json.hpp>

#include <dag/core/json_text.hpp>

namespace po = boost::program_options;

namespace dagrun {

void add_validate_commands(std::vector<command>& out) {
  out.push_back(
      {{"validate"},
       "validate [PATH]",
       "load every DAG of PATH (a file or folder; default the DAGs folder), print each error as "
       "file:line: message; exit 2 on any",
       [](po::options_description& d, po::positional_options_description& p) {
         d.add_options()("path", po::value<std::string>()->value_name("PATH"), "YAML file or folder to validate");
         p.add("path", 1);
       },
       [](invocation& inv) {
         const std::string path = inv.args.count("path") ? inv.args["path"].as<std::string>() : inv.global.dags_folder;
         dag::dag_folder folder = dag::load_dag_folder(path, inv.operators);
         if (inv.global.json) {
           nlohmann::json result = nlohmann::json::array();
           for (const auto& p : folder.problems)
             result.push_back({{"file", p.where().file}, {"line", p.where().line}, {"message", p.message()}});
           inv.out << dag::json_dump(result, 2) << "\n";
         } else {
           for (const auto& p : folder.problems) inv.out << p.what() << "\n";
           inv.out << folder.dags.size() << " DAG" << (folder.dags.size() == 1 ? "" : "s") << " valid, "
                   << folder.problems.size() << " error" << (folder.problems.size() == 1 ? "" : "s") << "\n";
         }
         return folder.problems.empty() ? exit_ok : exit_usage;
       }});
}

}  // namespace dagrun
