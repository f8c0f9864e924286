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

definition_error problem_of(const std::filesystem::path& path, const std::string& message) {
  error_context where;
  where.file = path.string();
  return {where, message};
}

// The DAG files of `path` (a folder: its YAML files and DAG libraries, not recursive; or one
// file), or the problem that keeps them from being listed. With `others`, the folder's other
// regular files are added to it as name, size and time, one line each (templates a DAG reads).
std::vector<std::filesystem::path> dag_files(const std::filesystem::path& path, std::vector<definition_error>& problems,
                                             std::vector<std::string>* others = nullptr) {
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(path, ec)) {
    // A folder that cannot be read is an error, never an empty folder: the daemon would take its
    // DAGs as deleted.
    std::filesystem::directory_iterator it(path, ec);
    for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      std::error_code type_ec;
      const bool dag_name = is_yaml(it->path()) || is_dag_library(it->path());
      if (!it->is_regular_file(type_ec)) {
        // Named as a DAG file but not one (a link to nothing, a folder): said, never skipped unseen;
        // but for hidden names, such as the dangling link `.#daily.yaml` Emacs keeps while editing.
        if (dag_name && !it->path().filename().string().starts_with('.'))
          problems.push_back(problem_of(it->path(), it->is_symlink(type_ec) && !std::filesystem::exists(it->path(), type_ec)
                                                        ? "a link to nothing (" + std::filesystem::read_symlink(it->path(), type_ec).string() + ")"
                                                        : "not a regular file, so not read as a DAG file"));
        continue;
      }
      if (dag_name) files.push_back(it->path());
      else if (others)
        others->push_back(it->path().filename().string() + '\n' + std::to_string(it->file_size(type_ec)) + '\n' +
                          std::to_string(it->last_write_time(type_ec).time_since_epoch().count()) + '\n');
    }
    if (ec) {
      problems.push_back(problem_of(path, "cannot read the DAGs folder: " + ec.message()));
      return {};
    }
  } else if (std::filesystem::exists(path, ec)) {
    files.push_back(path);
  } else {
    problems.push_back(problem_of(path, "no such file or directory"));
  }
  return files;
}

// One file's DAGs (a YAML file gives at most one, a C++ DAG library any number), checked and
// shared from here on, and problems.
void load_file(const std::filesystem::path& file, const operator_catalog& operators, std::vector<shared_definition>& dags,
               std::vector<definition_error>& problems) {
  if (is_dag_library(file)) {
    cpp_library_result r = load_dag_library(file, operators);
    problems.insert(problems.end(), r.problems.begin(), r.problems.end());
    for (auto& d : r.dags) dags.push_back(std::make_shared<const definition>(std::move(d)));
  } else {
    yaml_load_result r = load_yaml_file(file, operators);
    problems.insert(problems.end(), r.problems.begin(), r.problems.end());
    if (r.dag) dags.push_back(std::make_shared<const definition>(std::move(*r.dag)));
  }
}

// Adds one file's DAGs (shared, not copied) and problems to `out`, in file order: a dag_id an
// earlier file defined is a problem of this one.
void add_file(dag_folder& out, std::map<std::string, std::string>& defined_in, const std::string& file,
              const std::vector<shared_definition>& dags, const std::vector<definition_error>& problems) {
  out.problems.insert(out.problems.end(), problems.begin(), problems.end());
  for (const auto& d : dags) {
    auto [it, fresh] = defined_in.emplace(d->id(), file);
    if (!fresh) {
      error_context where;
      where.file = file;
      where.line = d->where().line;
      where.dag_id = d->id();
      out.problems.emplace_back(where, "dag_id '" + d->id() + "' is already defined in " + it->second);
      continue;
    }
    out.dags.push_back(d);
  }
}

void sort_by_id(dag_folder& out) {
  std::sort(out.dags.begin(), out.dags.end(), [](const shared_definition& a, const shared_definition& b) { return a->id() < b->id(); });
}

}  // namespace

dag_folder load_dag_folder(const std::filesystem::path& path, const operator_catalog& operators) {
  dag_folder out;
  std::vector<std::filesystem::path> files = dag_files(path, out.problems);
  std::sort(files.begin(), files.end());
  std::map<std::string, std::string> defined_in;
  for (const auto& file : files) {
    std::vector<shared_definition> dags;
    std::vector<definition_error> problems;
    load_file(file, operators, dags, problems);
    add_file(out, defined_in, file.string(), dags, problems);
  }
  sort_by_id(out);
  return out;
}

dag_folder_loader::dag_folder_loader(std::filesystem::path path, const operator_catalog& operators)
    : path_(std::move(path)), operators_(operators) {}

std::size_t dag_folder_loader::refresh() {
  std::vector<definition_error> own;
  // The folder's other files (templates a DAG reads when it loads): any change reads every DAG file.
  std::vector<std::string> seen;
  const std::vector<std::filesystem::path> files = dag_files(path_, own, &seen);
  std::sort(seen.begin(), seen.end());  // a directory's listing order is its own
  std::string others;
  for (const auto& line : seen) others += line;
  const bool reread_all = looked_ && others != others_;
  std::map<std::string, file_state> next;
  std::size_t read = 0;
  for (const auto& file : files) {
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(file, ec);
    const auto modified = std::filesystem::last_write_time(file, ec);
    const std::string name = file.string();
    if (auto known = files_.find(name); !reread_all && known != files_.end() &&
                                        known->second.size == size && known->second.modified == modified) {
      next.emplace(name, std::move(known->second));
      continue;
    }
    file_state state{size, modified, {}, {}};
    load_file(file, operators_, state.dags, state.problems);
    next.emplace(name, std::move(state));
    ++read;
  }
  const auto same_problems = [](const std::vector<definition_error>& a, const std::vector<definition_error>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](const definition_error& x, const definition_error& y) { return std::string_view(x.what()) == y.what(); });
  };
  changed_ = !looked_ || read > 0 || next.size() != files_.size() || !same_problems(own, own_problems_);
  looked_ = true;
  files_ = std::move(next);
  others_ = std::move(others);
  own_problems_ = std::move(own);
  return read;
}

dag_folder dag_folder_loader::folder() const {
  dag_folder out;
  out.problems = own_problems_;
  std::map<std::string, std::string> defined_in;
  for (const auto& [name, state] : files_)
    add_file(out, defined_in, name, state.dags, state.problems);
  sort_by_id(out);
  return out;
}

}  // namespace dag
