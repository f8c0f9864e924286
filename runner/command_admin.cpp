// `dagrun dags pause|unpause`, `variables`, `connections`, `db`: settings and housekeeping.
#include <ostream>

#include <nlohmann/json.hpp>

#include <dag/core/secret_mask.hpp>
#include <dag/core/json_text.hpp>

#include "session.hpp"

namespace po = boost::program_options;
using json = nlohmann::json;

namespace dagrun {
namespace {

void one_positional(po::options_description& d, po::positional_options_description& p, const char* name,
                    const char* value_name, const char* help) {
  d.add_options()(name, po::value<std::string>()->required()->value_name(value_name), help);
  p.add(name, 1);
}

int set_pause(invocation& inv, bool paused) {
  const std::string dag_id = inv.args["dag"].as<std::string>();
  dag::dag_folder folder = load_dags(inv, true);
  if (!find_dag(inv, folder, dag_id)) return exit_usage;
  dag::set_paused(*open_db(inv), dag_id, paused);
  inv.out << "DAG " << dag_id << (paused ? " paused" : " unpaused") << "\n";
  return exit_ok;
}

// Passwords never leave the store in listings: a connection shows '***' where its password is.
std::string masked_uri(const dag::connection& c) {
  std::string uri = c.conn_type + "://";
  if (!c.login.empty() || !c.password.empty()) uri += c.login + (c.password.empty() ? "" : ":***") + "@";
  uri += c.host;
  if (c.port) uri += ":" + std::to_string(*c.port);
  if (!c.schema.empty()) uri += "/" + c.schema;
  // The extra as the URI's query, its secret-looking members (token, api_key, …) masked too.
  const auto extra = nlohmann::json::parse(c.extra.empty() ? "{}" : c.extra, nullptr, false);
  if (extra.is_object() && !extra.empty()) {
    std::string query;
    for (const auto& [name, value] : extra.items())
      query += (query.empty() ? "?" : "&") + dag::percent_encoded(name) + "=" +
               (dag::looks_secret(name) ? "***" : dag::percent_encoded(value.is_string() ? value.get<std::string>() : value.dump()));
    uri += (c.schema.empty() ? "/" : "") + query;
  }
  return uri;
}

}  // namespace

void add_admin_commands(std::vector<command>& out) {
  auto dag_arg = [](po::options_description& d, po::positional_options_description& p) {
    one_positional(d, p, "dag", "DAG", "the DAG");
  };
  out.push_back({{"dags", "pause"}, "dags pause DAG", "stop creating and starting runs of a DAG", dag_arg,
                 [](invocation& inv) { return set_pause(inv, true); }});
  out.push_back({{"dags", "unpause"}, "dags unpause DAG", "resume a paused DAG", dag_arg,
                 [](invocation& inv) { return set_pause(inv, false); }});

  out.push_back({{"variables", "set"},
                 "variables set NAME VALUE",
                 "set a variable ({{ var.value.NAME }}; DAGRUN_VAR_NAME in the environment wins)",
                 [](po::options_description& d, po::positional_options_description& p) {
                   d.add_options()("name", po::value<std::string>()->required()->value_name("NAME"), "variable name")(
                       "value", po::value<std::string>()->required()->value_name("VALUE"), "its value");
                   p.add("name", 1).add("value", 1);
                 },
                 [](invocation& inv) {
                   open_db(inv)->set_variable(inv.args["name"].as<std::string>(), inv.args["value"].as<std::string>());
                   return int{exit_ok};
                 }});
  out.push_back({{"variables", "get"},
                 "variables get NAME",
                 "print a variable's value (exit 1 if it is not set)",
                 [](po::options_description& d, po::positional_options_description& p) {
                   one_positional(d, p, "name", "NAME", "variable name");
                 },
                 [](invocation& inv) {
                   const std::string name = inv.args["name"].as<std::string>();
                   auto v = open_db(inv)->variable(name);
                   if (!v) {
                     inv.err << "dagrun: variable '" << name << "' is not set\n";
                     return int{exit_failed};
                   }
                   inv.out << *v << "\n";
                   return int{exit_ok};
                 }});
  out.push_back({{"variables", "list"}, "variables list", "list variable names (values are not shown)",
                 [](po::options_description&, po::positional_options_description&) {},
                 [](invocation& inv) {
                   auto vars = open_db(inv)->variables();
                   if (inv.global.json) {
                     json outj = json::array();
                     for (const auto& [k, v] : vars) outj.push_back({{"key", k}});
                     inv.out << dag::json_dump(outj, 2) << "\n";
                   } else {
                     for (const auto& [k, v] : vars) inv.out << k << "\n";
                   }
                   return int{exit_ok};
                 }});
  out.push_back({{"variables", "delete"}, "variables delete NAME", "delete a variable",
                 [](po::options_description& d, po::positional_options_description& p) {
                   one_positional(d, p, "name", "NAME", "variable name");
                 },
                 [](invocation& inv) {
                   const std::string name = inv.args["name"].as<std::string>();
                   if (!open_db(inv)->delete_variable(name)) {
                     inv.err << "dagrun: variable '" << name << "' is not set\n";
                     return int{exit_failed};
                   }
                   return int{exit_ok};
                 }});

  out.push_back({{"connections", "add"},
                 "connections add ID --uri URI",
                 "store a connection (DAGRUN_CONN_ID in the environment wins)",
                 [](po::options_description& d, po::positional_options_description& p) {
                   one_positional(d, p, "id", "ID", "connection id");
                   d.add_options()("uri", po::value<std::string>()->required()->value_name("URI"),
                                   "e.g. postgresql://user:pw@host:5432/db");
                 },
                 [](invocation& inv) {
                   const std::string id = inv.args["id"].as<std::string>();
                   open_db(inv)->set_connection(dag::parse_connection_uri(id, inv.args["uri"].as<std::string>()));
                   inv.out << "connection " << id << " stored\n";
                   return int{exit_ok};
                 }});
  out.push_back({{"connections", "list"}, "connections list", "list connections, passwords masked",
                 [](po::options_description&, po::positional_options_description&) {},
                 [](invocation& inv) {
                   auto conns = open_db(inv)->connections();
                   if (inv.global.json) {
                     json outj = json::array();
                     for (const auto& c : conns)
                       outj.push_back({{"conn_id", c.conn_id}, {"conn_type", c.conn_type}, {"host", c.host},
                                       {"port", c.port ? json(*c.port) : json(nullptr)}, {"login", c.login},
                                       {"schema", c.schema}, {"password", c.password.empty() ? "" : "***"}});
                     inv.out << dag::json_dump(outj, 2) << "\n";
                   } else {
                     std::vector<std::vector<std::string>> rows;
                     for (const auto& c : conns) rows.push_back({c.conn_id, c.conn_type, masked_uri(c)});
                     print_table(inv.out, {"conn_id", "conn_type", "uri"}, rows);
                   }
                   return int{exit_ok};
                 }});
  out.push_back({{"connections", "delete"}, "connections delete ID", "delete a stored connection",
                 [](po::options_description& d, po::positional_options_description& p) {
                   one_positional(d, p, "id", "ID", "connection id");
                 },
                 [](invocation& inv) {
                   const std::string id = inv.args["id"].as<std::string>();
                   if (!open_db(inv)->delete_connection(id)) {
                     inv.err << "dagrun: connection '" << id << "' does not exist\n";
                     return int{exit_failed};
                   }
                   return int{exit_ok};
                 }});

  out.push_back({{"db", "migrate"}, "db migrate", "create or upgrade the metadata database schema",
                 [](po::options_description&, po::positional_options_description&) {},
                 [](invocation& inv) {
                   auto db = open_db(inv);
                   db->migrate();
                   inv.out << "schema version " << db->schema_version() << "\n";
                   return int{exit_ok};
                 }});
  out.push_back({{"db", "clean"}, "db clean --older-than DAYS",
                 "delete finished runs (and their tasks, tries, XComs) that ended more than DAYS days ago",
                 [](po::options_description& d, po::positional_options_description&) {
                   d.add_options()("older-than", po::value<int>()->required()->value_name("DAYS"), "age in days");
                 },
                 [](invocation& inv) {
                   const int days = bounded_flag(inv, "older-than", 0, 3650000);  // the cutoff stays a time
                   const auto cutoff = std::chrono::time_point_cast<std::chrono::microseconds>(inv.now.now()) -
                                       std::chrono::hours(24) * days;
                   const auto n = open_db(inv)->clean(cutoff);
                   inv.out << "deleted " << n << " run" << (n == 1 ? "" : "s") << "\n";
                   return int{exit_ok};
                 }});
}

}  // namespace dagrun
