// The REST API's documentation page (/api/v1/ui/): the served OpenAPI document (api_routes.cpp)
// rendered as HTML on the server, in the UI's frame — a contents list by tag, then each operation
// with its parameters, body and answers, then the schemas they name. No script: the page reads
// the same document clients get from /api/v1/openapi.json, so the two cannot disagree.
#include "ui.hpp"

#include <algorithm>
#include <cctype>
#include <map>

#include "../api.hpp"

namespace dag::detail {
namespace ui {
namespace {

std::string upper_case(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string schema_anchor(const std::string& name) { return "schema-" + name; }

// The component a `$ref` names: `#/components/schemas/DAG` → `DAG`.
std::string ref_name(const std::string& ref) { return ref.substr(ref.rfind('/') + 1); }

std::string schema_link(const std::string& name) {
  return "<a href=\"#" + esc(schema_anchor(name)) + "\"><code>" + esc(name) + "</code></a>";
}

std::string text_of(const json& v) { return v.is_string() ? v.get<std::string>() : json_dump(v); }

// A schema in a few words, as HTML: `string (date-time)`, `array of DAG`, `one of: a, b`, `or null`.
std::string type_html(const json& schema) {
  if (!schema.is_object()) return "";
  if (schema.contains("$ref")) return schema_link(ref_name(schema["$ref"].get<std::string>()));
  std::string out;
  for (const auto& [combined, joint] : {std::pair{"allOf", " and "}, std::pair{"anyOf", " or "}, std::pair{"oneOf", " or "}})
    if (schema.contains(combined))
      for (const auto& part : schema[combined]) out += (out.empty() ? "" : joint) + type_html(part);
  if (schema.contains("type")) {
    const std::string type = text_of(schema["type"]);
    out = type == "array" && schema.contains("items") ? "array of " + type_html(schema["items"]) : esc(type);
    if (schema.contains("format")) out += " (" + esc(text_of(schema["format"])) + ")";
  }
  if (schema.contains("enum")) {
    std::string values;
    for (const auto& v : schema["enum"]) values += (values.empty() ? "" : ", ") + ("<code>" + esc(text_of(v)) + "</code>");
    out += (out.empty() ? "" : ", ") + std::string("one of: ") + values;
  }
  if (schema.value("nullable", false)) out += " or null";
  if (out.empty()) out = "any";
  return out;
}

std::string details_of(const json& schema) {
  std::string out;
  if (schema.contains("default")) out += " Default <code>" + esc(text_of(schema["default"])) + "</code>.";
  if (schema.contains("minimum")) out += " At least " + esc(text_of(schema["minimum"])) + ".";
  if (schema.value("readOnly", false)) out += " Read-only.";
  return out;
}

std::string parameters_html(const json& parameters) {
  if (parameters.empty()) return "";
  std::string rows;
  for (const auto& p : parameters) {
    const json schema = p.value("schema", json::object());
    rows += "<tr><td><code>" + esc(p.value("name", "")) + "</code></td><td>" + esc(p.value("in", "")) + "</td><td>" +
            type_html(schema) + "</td><td>" + (p.value("required", false) ? "yes" : "no") + "</td><td>" +
            esc(p.value("description", "")) + details_of(schema) + "</td></tr>";
  }
  return "<h4>Parameters</h4><div class=\"scroll\"><table class=\"list\"><thead><tr><th>Name</th><th>In</th><th>Type</th>"
         "<th>Required</th><th>Description</th></tr></thead><tbody>" +
         rows + "</tbody></table></div>";
}

// The content of a body or answer: its media types and schemas.
std::string content_html(const json& content) {
  std::string out;
  for (const auto& [media, value] : content.items())
    out += (out.empty() ? "" : "; ") + ("<code>" + esc(media) + "</code>") +
           (value.contains("schema") ? " " + type_html(value["schema"]) : std::string());
  return out;
}

std::string operation_html(const std::string& method, const std::string& path, const json& op) {
  const std::string id = op.value("operationId", method + " " + path);
  std::string out = "<section class=\"op\" id=\"" + esc(id) + "\"><h3><span class=\"verb verb-" + esc(method) + "\">" +
                    esc(upper_case(method)) + "</span><code>/api/v1" + esc(path) + "</code><a class=\"dim\" href=\"#" +
                    esc(id) + "\">#</a></h3><p>" + esc(op.value("summary", "")) + " <span class=\"dim\">(operationId <code>" +
                    esc(id) + "</code>)</span></p>";
  if (op.contains("security") && op["security"].empty()) out += "<p class=\"tag\">no credentials needed</p>";
  out += parameters_html(op.value("parameters", json::array()));
  if (op.contains("requestBody"))
    out += "<h4>Request body</h4><p>" + content_html(op["requestBody"].value("content", json::object())) + "</p>";
  std::string rows;
  const json responses = op.value("responses", json::object());
  for (const auto& [status, answer] : responses.items())
    rows += "<tr><td>" + esc(status) + "</td><td>" + esc(answer.value("description", "")) + "</td><td>" +
            content_html(answer.value("content", json::object())) + "</td></tr>";
  out += "<h4>Responses</h4><div class=\"scroll\"><table class=\"list\"><thead><tr><th>Status</th><th>Meaning</th>"
         "<th>Body</th></tr></thead><tbody>" +
         rows + "</tbody></table></div></section>";
  return out;
}

std::string schema_html(const std::string& name, const json& schema) {
  std::string out = "<section class=\"op\" id=\"" + esc(schema_anchor(name)) + "\"><h3><code>" + esc(name) + "</code></h3>";
  if (schema.contains("description")) out += "<p>" + esc(text_of(schema["description"])) + "</p>";
  // Properties, also of the parts an allOf combines.
  std::vector<const json*> parts{&schema};
  if (schema.contains("allOf"))
    for (const auto& part : schema["allOf"]) {
      if (part.contains("$ref")) out += "<p>Has every field of " + type_html(part) + ".</p>";
      parts.push_back(&part);
    }
  std::string rows;
  for (const json* part : parts) {
    const json required = part->value("required", json::array());
    const json properties = part->value("properties", json::object());
    for (const auto& [field, field_schema] : properties.items()) {
      const bool needed = std::find(required.begin(), required.end(), field) != required.end();
      rows += "<tr><td><code>" + esc(field) + "</code></td><td>" + type_html(field_schema) + "</td><td>" +
              (needed ? "yes" : "no") + "</td><td>" + esc(field_schema.value("description", "")) + details_of(field_schema) +
              "</td></tr>";
    }
  }
  if (!rows.empty())
    out += "<div class=\"scroll\"><table class=\"list\"><thead><tr><th>Field</th><th>Type</th><th>Required</th>"
           "<th>Description</th></tr></thead><tbody>" +
           rows + "</tbody></table></div>";
  else if (!schema.contains("allOf"))
    out += "<p>" + type_html(schema) + "</p>";
  return out + "</section>";
}

}  // namespace
}  // namespace ui

http_response api_docs_page() {
  using namespace ui;
  const json& doc = openapi_document();
  // Operations by tag, each tag's in path order (the document's), tags alphabetically.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> by_tag;  // tag → (path, method)
  for (const auto& [path, methods] : doc["paths"].items())
    for (const auto& [method, op] : methods.items())
      by_tag[op["tags"].empty() ? std::string("Other") : op["tags"][0].get<std::string>()].emplace_back(path, method);

  std::string toc = "<ul class=\"toc\">";
  std::string operations;
  for (const auto& [tag, ops] : by_tag) {
    const std::string anchor = "tag-" + tag;
    toc += "<li><a href=\"#" + esc(anchor) + "\">" + esc(tag) + "</a><ul>";
    operations += "<h2 id=\"" + esc(anchor) + "\">" + esc(tag) + "</h2>";
    for (const auto& [path, method] : ops) {
      const json& op = doc["paths"][path][method];
      toc += "<li><a href=\"#" + esc(op.value("operationId", "")) + "\"><span class=\"verb verb-" + esc(method) + "\">" +
             esc(upper_case(method)) + "</span> " + esc(path) + "</a> <span class=\"dim\">" + esc(op.value("summary", "")) +
             "</span></li>";
      operations += operation_html(method, path, op);
    }
    toc += "</ul></li>";
  }
  toc += "<li><a href=\"#schemas\">Schemas</a></li></ul>";

  std::string schemas = "<h2 id=\"schemas\">Schemas</h2>";
  for (const auto& [name, schema] : doc["components"]["schemas"].items()) schemas += schema_html(name, schema);

  const std::string intro =
      "<p class=\"lead\">" + esc(doc["info"].value("description", "")) + " Version " + esc(doc["info"].value("version", "")) +
      ". The same description as OpenAPI 3: <a href=\"/api/v1/openapi.json\"><code>/api/v1/openapi.json</code></a>.</p>"
      "<p>Every path is below <code>/api/v1</code>. With <code>DAGRUN_API_TOKEN</code> or <code>DAGRUN_API_USERS</code> set, "
      "send <code>Authorization: Bearer &lt;token&gt;</code> or HTTP basic auth; operations marked "
      "<span class=\"tag\">no credentials needed</span> answer anyone. Errors are <code>application/problem+json</code> "
      "(<a href=\"#" + esc(schema_anchor("Error")) + "\">Error</a>).</p>";
  shell frame;
  frame.title = doc["info"].value("title", "REST API");
  return page(200, frame, intro + "<nav aria-label=\"Contents\"><h2>Contents</h2>" + toc + "</nav>" + operations + schemas);
}

}  // namespace dag::detail
