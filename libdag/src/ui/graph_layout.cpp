// The Graph tab's drawing: a layered (Sugiyama-style) layout computed here, left to right.
// Layers are the longest path from a root; an edge spanning several layers gets a waypoint in
// each one, so it is ordered (and routed) like a node; a few barycentre sweeps order each layer
// to cross few edges; boxes are as wide as their labels. Nothing is cut or hand-placed. A box is a
// task or a collapsed task group; collapsing can close a cycle (a task between two of a group's
// tasks), whose edge against the order is drawn straight back and sets no layer.
#include "ui.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace dag::detail::ui {
namespace {

constexpr double box_height = 34;
constexpr double row_gap = 18;
constexpr double column_gap = 70;
constexpr double char_width = 7.4;  // the UI font at 13px, a little generous

struct vertex {
  std::size_t layer = 0;
  double width = 0;  // 0: an edge's waypoint
  double x = 0, y = 0;
  double order = 0;
};

// The nodes in dependency order (Kahn's, the earliest given first); in a cycle, the earliest
// given node still waiting goes next.
std::vector<std::size_t> dependency_order(const std::vector<std::vector<std::size_t>>& upstream) {
  const std::size_t n = upstream.size();
  std::vector<std::size_t> waiting(n, 0);
  std::vector<std::vector<std::size_t>> downstream(n);
  for (std::size_t w = 0; w < n; ++w)
    for (std::size_t u : upstream[w]) {
      ++waiting[w];
      downstream[u].push_back(w);
    }
  std::vector<bool> done(n, false);
  std::vector<std::size_t> out;
  std::set<std::size_t> ready;
  for (std::size_t i = 0; i < n; ++i)
    if (!waiting[i]) ready.insert(i);
  while (out.size() < n) {
    if (ready.empty())
      for (std::size_t i = 0; i < n; ++i)
        if (!done[i]) {
          ready.insert(i);
          break;
        }
    const std::size_t i = *ready.begin();
    ready.erase(ready.begin());
    done[i] = true;
    out.push_back(i);
    for (std::size_t w : downstream[i])
      if (!done[w] && --waiting[w] == 0) ready.insert(w);
  }
  return out;
}

}  // namespace

std::string graph_svg(const std::vector<graph_node>& nodes, const std::vector<std::vector<std::size_t>>& upstream) {
  const std::size_t n = nodes.size();
  if (n == 0) return "<p class=\"dim\">This DAG has no tasks.</p>";
  const auto order = dependency_order(upstream);
  std::vector<std::size_t> position(n);
  for (std::size_t k = 0; k < n; ++k) position[order[k]] = k;
  auto forward = [&](std::size_t u, std::size_t w) { return position[u] < position[w]; };

  std::vector<vertex> v(n);
  for (std::size_t i : order)
    for (std::size_t u : upstream[i])
      if (forward(u, i)) v[i].layer = std::max(v[i].layer, v[u].layer + 1);
  for (std::size_t i = 0; i < n; ++i)
    v[i].width = std::max(90.0, static_cast<double>(nodes[i].label.size()) * char_width + 28);

  // Edges become chains through one waypoint per layer they cross.
  std::vector<std::vector<std::size_t>> chains;  // each: u, waypoints…, w
  std::vector<std::pair<std::size_t, std::size_t>> links;  // consecutive pairs, for ordering
  for (std::size_t w = 0; w < n; ++w)
    for (std::size_t u : upstream[w]) {
      std::vector<std::size_t> chain{u};
      if (!forward(u, w)) {  // against the order: drawn straight back, not ordered with the layers
        chain.push_back(w);
        chains.push_back(std::move(chain));
        continue;
      }
      for (std::size_t layer = v[u].layer + 1; layer < v[w].layer; ++layer) {
        vertex p;
        p.layer = layer;
        v.push_back(p);
        chain.push_back(v.size() - 1);
      }
      chain.push_back(w);
      for (std::size_t k = 0; k + 1 < chain.size(); ++k) links.emplace_back(chain[k], chain[k + 1]);
      chains.push_back(std::move(chain));
    }

  std::size_t layers = 0;
  for (const auto& x : v) layers = std::max(layers, x.layer + 1);
  std::vector<std::vector<std::size_t>> by_layer(layers);
  for (std::size_t i : order) by_layer[v[i].layer].push_back(i);
  for (std::size_t i = n; i < v.size(); ++i) by_layer[v[i].layer].push_back(i);
  auto renumber = [&] {
    for (auto& layer : by_layer)
      for (std::size_t k = 0; k < layer.size(); ++k) v[layer[k]].order = static_cast<double>(k);
  };
  renumber();
  std::vector<std::vector<std::size_t>> ups(v.size()), downs(v.size());
  for (const auto& [a, b] : links) {
    downs[a].push_back(b);
    ups[b].push_back(a);
  }
  // Barycentre sweeps: each vertex moves to the mean position of its neighbours in the layer
  // before (downward sweep) or after (upward sweep).
  auto sweep = [&](bool down) {
    for (std::size_t step = 1; step < layers; ++step) {
      auto& layer = by_layer[down ? step : layers - 1 - step];
      std::vector<double> key(v.size());
      for (std::size_t i : layer) {
        const auto& nb = down ? ups[i] : downs[i];
        if (nb.empty()) {
          key[i] = v[i].order;
          continue;
        }
        double sum = 0;
        for (std::size_t j : nb) sum += v[j].order;
        key[i] = sum / static_cast<double>(nb.size());
      }
      std::stable_sort(layer.begin(), layer.end(), [&](std::size_t a, std::size_t b) { return key[a] < key[b]; });
      for (std::size_t k = 0; k < layer.size(); ++k) v[layer[k]].order = static_cast<double>(k);
    }
  };
  for (int round = 0; round < 4; ++round) {
    sweep(true);
    sweep(false);
  }

  // Coordinates: columns as wide as their widest box; each layer centred vertically.
  std::vector<double> column_x(layers, 0), column_width(layers, 0);
  std::size_t tallest = 0;
  for (std::size_t l = 0; l < layers; ++l) {
    for (std::size_t i : by_layer[l]) column_width[l] = std::max(column_width[l], v[i].width);
    column_width[l] = std::max(column_width[l], 20.0);
    tallest = std::max(tallest, by_layer[l].size());
    if (l > 0) column_x[l] = column_x[l - 1] + column_width[l - 1] + column_gap;
  }
  const double height = static_cast<double>(tallest) * (box_height + row_gap) + row_gap;
  const double width = column_x[layers - 1] + column_width[layers - 1] + 20;
  for (std::size_t l = 0; l < layers; ++l) {
    const double used = static_cast<double>(by_layer[l].size()) * (box_height + row_gap);
    const double top = (height - used) / 2 + row_gap / 2;
    for (std::size_t k = 0; k < by_layer[l].size(); ++k) {
      auto& x = v[by_layer[l][k]];
      if (by_layer[l][k] >= n) x.width = column_width[l];  // a waypoint: the edge crosses the whole column
      x.x = 10 + column_x[l] + (column_width[l] - x.width) / 2;
      x.y = top + static_cast<double>(k) * (box_height + row_gap);
    }
  }

  std::string svg = "<svg class=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + svg_number(width) + "\" height=\"" + svg_number(height) +
                    "\" viewBox=\"0 0 " + svg_number(width) + " " + svg_number(height) + "\" role=\"img\" aria-label=\"task graph\">"
                    "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" "
                    "orient=\"auto-start-reverse\"><path class=\"arrowhead\" d=\"M0,0L10,5L0,10z\"/></marker></defs>";
  // Edges: out of the right side of a box, through the waypoints, into the left side with an arrow.
  for (const auto& chain : chains) {
    auto out_point = [&](std::size_t i) { return std::pair{v[i].x + v[i].width, v[i].y + box_height / 2}; };
    auto in_point = [&](std::size_t i) { return std::pair{v[i].x, v[i].y + box_height / 2}; };
    std::string path;
    auto [x0, y0] = out_point(chain.front());
    path += "M" + svg_number(x0) + "," + svg_number(y0);
    for (std::size_t k = 1; k < chain.size(); ++k) {
      const bool last = k + 1 == chain.size();
      auto [x1, y1] = in_point(chain[k]);
      const double mid = (x0 + x1) / 2;
      path += "C" + svg_number(mid) + "," + svg_number(y0) + " " + svg_number(mid) + "," + svg_number(y1) + " " + svg_number(x1) + "," + svg_number(y1);
      if (!last) {
        const auto [x2, y2] = out_point(chain[k]);
        path += "L" + svg_number(x2) + "," + svg_number(y2);
        x0 = x2;
      }
      y0 = y1;
    }
    svg += "<path class=\"edge\" d=\"" + path + "\" marker-end=\"url(#arrow)\"/>";
  }
  for (std::size_t i = 0; i < n; ++i) {
    const graph_node& node = nodes[i];
    std::string box = "<g class=\"node" + std::string(node.group ? " group" : "") + " st-" + esc(node.state) + "\"" +
                      (node.live.empty() ? std::string() : " data-s=\"" + esc(node.live) + "\"") +
                      (node.group ? " data-group=\"" : " data-task=\"") + esc(node.id) + "\"><rect x=\"" + svg_number(v[i].x) +
                      "\" y=\"" + svg_number(v[i].y) + "\" width=\"" + svg_number(v[i].width) + "\" height=\"" + svg_number(box_height) +
                      "\" rx=\"" + (node.group ? "12" : "5") + "\"/><text x=\"" + svg_number(v[i].x + v[i].width / 2) + "\" y=\"" +
                      svg_number(v[i].y + box_height / 2 + 4.5) + "\" text-anchor=\"middle\">" + esc(node.label) + "</text><title>" +
                      esc(node.title) + "</title></g>";
    svg += node.href.empty() ? box : "<a href=\"" + esc(node.href) + "\">" + box + "</a>";
  }
  return svg + "</svg>";
}

}  // namespace dag::detail::ui
