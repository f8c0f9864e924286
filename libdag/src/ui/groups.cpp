// Task groups on the DAG page: which are open (`?open=`), where each task is shown (its own row
// or box, or its outermost collapsed group's), the order of the grid's rows as a tree, and a
// group's state in a run by Airflow's rule (the most relevant state of its tasks).
#include "ui.hpp"

#include <algorithm>
#include <map>

namespace dag::detail::ui {

open_groups open_groups::parse(const std::string& text) {
  open_groups out;
  if (text == "*") {
    out.all = true;
    return out;
  }
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    if (end > start) out.ids.insert(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string open_groups::text() const {
  if (all) return "*";
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + id;
  return out;
}

group_view::group_view(const definition& d, open_groups open) : d_(d), open_(std::move(open)) {
  for (const auto& g : d.groups()) ids_.insert(g.id);
  if (ids_.empty()) return;
  // Each task's groups: the prefixes of its innermost group's id that end before a '.' and name a
  // group, then the innermost itself.
  chains_.resize(d.all_tasks().size());
  for (std::size_t i = 0; i < chains_.size(); ++i) {
    const std::string& innermost = d.all_tasks()[i].group;
    if (innermost.empty()) continue;
    for (std::size_t dot = innermost.find('.'); dot != std::string::npos; dot = innermost.find('.', dot + 1))
      if (std::string outer = innermost.substr(0, dot); ids_.contains(outer)) chains_[i].push_back(std::move(outer));
    chains_[i].push_back(innermost);
  }
}

const std::vector<std::string>& group_view::groups_of(const task& t) const {
  static const std::vector<std::string> none;
  const auto i = d_.index_of(t.id);
  return i && *i < chains_.size() ? chains_[*i] : none;
}

bool group_view::visible(const std::string& group_id) const {
  const task_group* g = d_.find_group(group_id);
  for (; g && !g->parent.empty(); g = d_.find_group(g->parent))
    if (!open_.is_open(g->parent)) return false;
  return g != nullptr;
}

std::string group_view::toggled(const std::string& group_id, bool open) const {
  open_groups next = open_;
  if (next.all) {
    next.all = false;
    next.ids = ids_;
  }
  if (open) next.ids.insert(group_id);
  else next.ids.erase(group_id);
  return next.text();
}

std::string group_view::shown_as(const task& t) const {
  for (const auto& g : groups_of(t))
    if (!open_.is_open(g)) return g;
  return t.id;
}

std::map<std::string, task_state> group_view::states(const std::vector<task_instance_record>& tis) const {
  std::map<std::string, task_state> out;
  if (ids_.empty()) return out;
  for (const auto& ti : tis) {
    const auto i = d_.index_of(ti.task_id);
    if (!i) continue;
    for (const auto& g : chains_[*i]) {
      auto [it, added] = out.try_emplace(g, ti.state);
      it->second = most_relevant(it->second, ti.state);
    }
  }
  return out;
}

std::size_t group_view::size_of(const std::string& group_id) const { return d_.group_members(group_id).size(); }

std::vector<tree_row> group_view::rows() const {
  // The tree of groups and tasks, each child placed where its first task comes in dependency order.
  struct node {
    std::string id;
    std::optional<std::size_t> task;
    std::vector<std::size_t> children;  // into `nodes`
  };
  std::vector<node> nodes(1);  // the root
  std::map<std::string, std::size_t> group_node;
  for (std::size_t i : task_rows(d_)) {
    const task& t = d_.all_tasks()[i];
    std::size_t parent = 0;
    for (const auto& g : groups_of(t)) {
      auto [it, added] = group_node.try_emplace(g, nodes.size());
      if (added) {
        nodes.push_back({g, std::nullopt, {}});
        nodes[parent].children.push_back(it->second);
      }
      parent = it->second;
    }
    nodes.push_back({t.id, i, {}});
    nodes[parent].children.push_back(nodes.size() - 1);
  }
  std::vector<tree_row> out;
  out.reserve(nodes.size());
  auto walk = [&](auto&& self, std::size_t at, std::size_t depth) -> void {
    for (std::size_t c : nodes[at].children) {
      const node& n = nodes[c];
      const bool is_open = !n.task && open_.is_open(n.id);
      out.push_back({n.id, depth, n.task, is_open});
      if (is_open) self(self, c, depth + 1);
    }
  };
  walk(walk, 0, 0);
  return out;
}

std::string group_view::short_name(const std::string& id) const {
  const task* t = d_.find(id);
  const task_group* g = t ? nullptr : d_.find_group(id);
  const std::string parent = t ? t->group : g ? g->parent : std::string();
  if (parent.empty() || !id.starts_with(parent + ".")) return id;
  return id.substr(parent.size() + 1);
}

}  // namespace dag::detail::ui
