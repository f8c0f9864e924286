#pragma once
/// @file The operators a loader accepts, by name, with the fields each declares.

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <dag/core/operator.hpp>

namespace dag {

/// Operators known to a loader; each validates its own fields through its spec.
class operator_catalog {
public:
  /// Adds (or replaces) an operator by its spec.
  void add(operator_spec spec) {
    std::string name = spec.name;
    specs_.insert_or_assign(std::move(name), std::move(spec));
    stamp_ = next_stamp();
  }
  /// Adds an operator type.
  template <dag_operator Op>
  void add() { add(Op::spec()); }
  /// The spec of operator `name`, or nullptr.
  const operator_spec* find(std::string_view name) const {
    auto it = specs_.find(std::string(name));
    return it == specs_.end() ? nullptr : &it->second;
  }
  /// Names of the operators usable from YAML, sorted.
  std::vector<std::string> yaml_names() const {
    std::vector<std::string> out;
    for (const auto& [name, spec] : specs_)
      if (spec.yaml) out.push_back(name);
    return out;
  }

  /// Names these operators as they are now: another catalog, or this one after an add(), has
  /// another stamp (a copy keeps it: same operators). A definition remembers the stamp it was
  /// checked with, so checking it against other operators checks it again.
  std::uint64_t stamp() const { return stamp_; }

private:
  static std::uint64_t next_stamp() {
    static std::atomic<std::uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
  }
  std::map<std::string, operator_spec> specs_;
  std::uint64_t stamp_ = next_stamp();
};

}  // namespace dag
