// A folder of YAML DAGs and C++ DAG libraries (`.so`): each file loads on its own, so one broken
// file never hides the others.
#include <dag/load/dag_folder.hpp>

#include <algorithm>
#include <map>

#include <dag/load/cpp_library.hpp>
#include <dag/load/yaml_loader.hpp>

namespace dag {
namespace {
bool is_yaml(const std::filesystem::path& p) {
  const auto ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml";
}
}  // namespace

dag_folder load_dag_folder(const std::filesystem::path& path, const operator_catalog& operators) {
  dag_folder out;
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(path, ec)) {
    // A folder that cannot be read is an error, never an empty folder: the daemon would take its
    // DAGs as deleted.
    std::filesystem::directory_iterator it(path, ec);
    for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      std::error_code type_ec;
      if (it->is_regular_file(type_ec) && (is_yaml(it->path()) || is_dag_library(it->path())))
        files.push_back(it->path());
    }
    if (ec) {
      error_context where;
      where.file = path.string();
      out.problems.emplace_back(where, "cannot read the DAGs folder: " + ec.message());
      return out;
    }
    std::sort(files.begin(), files.end());
  } else if (std::filesystem::exists(path, ec)) {
    files.push_back(path);
  } else {
    error_context where;
    where.file = path.string();
    out.problems.emplace_back(where, "no such file or directory");
    return out;
  }

  std::map<std::string, std::string> defined_in;
  for (const auto& file : files) {
    // A YAML file gives at most one DAG, a C++ DAG library (`.so`) any number.
    std::vector<definition> loaded;
    if (is_dag_library(file)) {
      cpp_library_result r = load_dag_library(file, operators);
      out.problems.insert(out.problems.end(), r.problems.begin(), r.problems.end());
      loaded = std::move(r.dags);
    } else {
      yaml_load_result r = load_yaml_file(file, operators);
      out.problems.insert(out.problems.end(), r.problems.begin(), r.problems.end());
      if (r.dag) loaded.push_back(std::move(*r.dag));
    }
    for (auto& d : loaded) {
      auto [it, fresh] = defined_in.emplace(d.id(), file.string());
      if (!fresh) {
        error_context where;
        where.file = file.string();
        where.line = d.where().line;
        where.dag_id = d.id();
        out.problems.emplace_back(where, "dag_id '" + d.id() + "' is already defined in " + it->second);
        continue;
      }
      out.dags.push_back(std::move(d));
    }
  }
  std::sort(out.dags.begin(), out.dags.end(), [](const definition& a, const definition& b) { return a.id() < b.id(); });
  return out;
}

}  // namespace dag
