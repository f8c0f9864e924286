#pragma once
// A store that passes every call on to another: a test derives from it and overrides the calls it
// wants to see, or to fail on purpose (a read that breaks right after a commit, say), around a real
// store.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <dag/store/store.hpp>

namespace dag::test_support {

/// Passes every call to `inner`, which must outlive it.
class forwarding_store : public store {
public:
  explicit forwarding_store(store& inner) : inner_(inner) {}

  void migrate() override { inner_.migrate(); }
  int schema_version() override { return inner_.schema_version(); }
  void set_paused(const std::string& dag_id, bool paused) override { inner_.set_paused(dag_id, paused); }
  std::set<std::string> paused_dags() override { return inner_.paused_dags(); }
  void set_import_errors(const std::vector<import_error_record>& errors) override { inner_.set_import_errors(errors); }
  std::vector<import_error_record> import_errors() override { return inner_.import_errors(); }
  change_result apply(const change_set& changes) override { return inner_.apply(changes); }
  std::vector<run_record> runs(const run_filter& filter) override { return inner_.runs(filter); }
  std::size_t count_runs(const run_filter& filter) override { return inner_.count_runs(filter); }
  std::vector<listed_task_instance> list_task_instances(const task_instance_filter& filter) override { return inner_.list_task_instances(filter); }
  std::size_t count_task_instances(const task_instance_filter& filter) override { return inner_.count_task_instances(filter); }
  std::optional<run_record> find_run(const std::string& dag_id, const std::string& run_id) override { return inner_.find_run(dag_id, run_id); }
  std::vector<task_instance_record> task_instances(const std::string& dag_id, const std::string& run_id) override { return inner_.task_instances(dag_id, run_id); }
  std::vector<task_instance_record> task_instances_in(const std::set<task_state>& states) override { return inner_.task_instances_in(states); }
  std::vector<try_record> tries(const std::string& dag_id, const std::string& run_id, const std::string& task_id, int map_index) override { return inner_.tries(dag_id, run_id, task_id, map_index); }
  std::optional<std::string> xcom(const std::string& dag_id, const std::string& run_id, const std::string& task_id, const std::string& key) override { return inner_.xcom(dag_id, run_id, task_id, key); }
  std::vector<xcom_record> xcoms(const std::string& dag_id, const std::string& run_id, const std::string& task_id) override { return inner_.xcoms(dag_id, run_id, task_id); }
  std::vector<xcom_record> xcoms(const xcom_filter& filter) override { return inner_.xcoms(filter); }
  std::size_t count_xcoms(const xcom_filter& filter) override { return inner_.count_xcoms(filter); }
  bool set_note(const std::string& dag_id, const std::string& run_id, const std::string& task_id, const std::string& note, int map_index) override { return inner_.set_note(dag_id, run_id, task_id, note, map_index); }
  bool delete_run(const std::string& dag_id, const std::string& run_id) override { return inner_.delete_run(dag_id, run_id); }
  std::size_t delete_dag(const std::string& dag_id) override { return inner_.delete_dag(dag_id); }
  std::vector<event_record> events(const event_filter& filter) override { return inner_.events(filter); }
  std::size_t count_events(const event_filter& filter) override { return inner_.count_events(filter); }
  std::optional<event_record> find_event(std::int64_t id) override { return inner_.find_event(id); }
  void register_datasets(const std::vector<std::string>& uris, const std::map<std::string, std::vector<std::string>>& consumers) override { inner_.register_datasets(uris, consumers); }
  std::vector<dataset_record> datasets() override { return inner_.datasets(); }
  std::optional<dataset_record> find_dataset(const std::string& uri) override { return inner_.find_dataset(uri); }
  std::optional<dataset_event_record> add_dataset_event(const dataset_event_record& e) override { return inner_.add_dataset_event(e); }
  std::vector<dataset_event_record> dataset_events(const dataset_event_filter& filter) override { return inner_.dataset_events(filter); }
  std::size_t count_dataset_events(const dataset_event_filter& filter) override { return inner_.count_dataset_events(filter); }
  std::map<std::string, std::set<std::string>> queued_datasets() override { return inner_.queued_datasets(); }
  bool create_dataset_run(const run_record& run, const std::vector<std::string>& task_ids, const std::set<std::string>& uris) override { return inner_.create_dataset_run(run, task_ids, uris); }
  std::vector<run_record> runs_triggered_by(std::int64_t event_id) override { return inner_.runs_triggered_by(event_id); }
  std::vector<dataset_event_record> triggering_dataset_events(const std::string& dag_id, const std::string& run_id) override { return inner_.triggering_dataset_events(dag_id, run_id); }
  void set_variable(const std::string& name, const std::string& value) override { inner_.set_variable(name, value); }
  std::optional<std::string> variable(const std::string& name) override { return inner_.variable(name); }
  std::map<std::string, std::string> variables() override { return inner_.variables(); }
  bool delete_variable(const std::string& name) override { return inner_.delete_variable(name); }
  void set_connection(const connection& c) override { inner_.set_connection(c); }
  std::optional<connection> find_connection(const std::string& conn_id) override { return inner_.find_connection(conn_id); }
  std::vector<connection> connections() override { return inner_.connections(); }
  bool delete_connection(const std::string& conn_id) override { return inner_.delete_connection(conn_id); }
  void set_pool(const pool_record& p) override { inner_.set_pool(p); }
  std::optional<pool_record> find_pool(const std::string& name) override { return inner_.find_pool(name); }
  std::vector<pool_record> pools() override { return inner_.pools(); }
  bool delete_pool(const std::string& name) override { return inner_.delete_pool(name); }
  std::size_t clean(timestamp cutoff) override { return inner_.clean(cutoff); }

private:
  store& inner_;
};

}  // namespace dag::test_support
