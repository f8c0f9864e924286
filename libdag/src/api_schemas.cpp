/// @file The schemas of the OpenAPI document dagrun serves (api.hpp): the bodies and answers the
/// routes name, with Airflow's names and the fields dagrun fills (docs/http.md says what differs).

#include "api.hpp"

namespace dag::detail {

json api_schemas() {
  // Written as JSON text: one place to read them, checked when the document is first built.
  // DAG and DAGRun require no field, as in Airflow's document: `fields` (sparse fieldsets) may
  // leave any of them out.
  static constexpr const char* text = R"json({
  "Error": {"type": "object", "required": ["type", "title", "status"], "properties": {
    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "number"},
    "detail": {"type": "string"}, "instance": {"type": "string"}}},
  "Tag": {"type": "object", "properties": {"name": {"type": "string"}}},
  "ScheduleInterval": {"nullable": true, "type": "object", "required": ["__type"], "properties": {
    "__type": {"type": "string", "enum": ["TimeDelta", "CronExpression"]}, "days": {"type": "integer"},
    "seconds": {"type": "integer"}, "microseconds": {"type": "integer"}, "value": {"type": "string"}}},
  "DAG": {"type": "object", "properties": {
    "dag_id": {"type": "string"}, "dag_display_name": {"type": "string"},
    "description": {"type": "string", "nullable": true}, "is_paused": {"type": "boolean", "nullable": true},
    "is_active": {"type": "boolean", "nullable": true}, "fileloc": {"type": "string"}, "file_token": {"type": "string"},
    "owners": {"type": "array", "items": {"type": "string"}},
    "schedule_interval": {"$ref": "#/components/schemas/ScheduleInterval"},
    "timetable_description": {"type": "string", "nullable": true},
    "max_active_runs": {"type": "integer", "nullable": true}, "max_active_tasks": {"type": "integer", "nullable": true},
    "tags": {"type": "array", "nullable": true, "items": {"$ref": "#/components/schemas/Tag"}}}},
  "DAGPatch": {"type": "object", "required": ["is_paused"], "properties": {"is_paused": {"type": "boolean"}}},
  "DAGCollection": {"type": "object", "required": ["dags", "total_entries"], "properties": {
    "dags": {"type": "array", "items": {"$ref": "#/components/schemas/DAG"}}, "total_entries": {"type": "integer"}}},
  "DAGDetail": {"allOf": [{"$ref": "#/components/schemas/DAG"}, {"type": "object", "properties": {
    "timezone": {"type": "string", "nullable": true}, "catchup": {"type": "boolean", "nullable": true},
    "start_date": {"type": "string", "format": "date-time", "nullable": true},
    "end_date": {"type": "string", "format": "date-time", "nullable": true}, "params": {"type": "object"}}}]},
  "DAGSource": {"type": "object", "properties": {"content": {"type": "string"}}},
  "TimeDelta": {"type": "object", "nullable": true, "required": ["__type", "days", "seconds", "microseconds"], "properties": {
    "__type": {"type": "string"}, "days": {"type": "integer"}, "seconds": {"type": "integer"}, "microseconds": {"type": "integer"}}},
  "Task": {"type": "object", "required": ["task_id", "trigger_rule", "downstream_task_ids"], "properties": {
    "class_ref": {"type": "object", "properties": {"module_path": {"type": "string"}, "class_name": {"type": "string"}}},
    "task_id": {"type": "string"}, "owner": {"type": "string"}, "trigger_rule": {"type": "string"},
    "retries": {"type": "number"}, "queue": {"type": "string", "nullable": true}, "priority_weight": {"type": "number"},
    "execution_timeout": {"$ref": "#/components/schemas/TimeDelta"}, "retry_delay": {"$ref": "#/components/schemas/TimeDelta"},
    "downstream_task_ids": {"type": "array", "items": {"type": "string"}}}},
  "TaskCollection": {"type": "object", "required": ["tasks", "total_entries"], "properties": {
    "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}}, "total_entries": {"type": "integer"}}},
  "DagStatsCollection": {"type": "object", "required": ["dags", "total_entries"], "properties": {
    "dags": {"type": "array", "items": {"type": "object", "properties": {"dag_id": {"type": "string"}, "stats": {"type": "array",
      "items": {"type": "object", "properties": {"state": {"type": "string"}, "count": {"type": "integer"}}}}}}},
    "total_entries": {"type": "integer"}}},
  "DagWarningCollection": {"type": "object", "required": ["dag_warnings", "total_entries"], "properties": {
    "dag_warnings": {"type": "array", "items": {"type": "object"}}, "total_entries": {"type": "integer"}}},
  "DAGRun": {"type": "object", "properties": {
    "dag_run_id": {"type": "string", "nullable": true}, "dag_id": {"type": "string"},
    "logical_date": {"type": "string", "format": "date-time", "nullable": true},
    "execution_date": {"type": "string", "format": "date-time", "nullable": true},
    "start_date": {"type": "string", "format": "date-time", "nullable": true},
    "end_date": {"type": "string", "format": "date-time", "nullable": true},
    "data_interval_start": {"type": "string", "format": "date-time", "nullable": true},
    "data_interval_end": {"type": "string", "format": "date-time", "nullable": true},
    "state": {"type": "string", "enum": ["queued", "running", "success", "failed"]}, "run_type": {"type": "string"},
    "external_trigger": {"type": "boolean"}, "conf": {"type": "object"}, "note": {"type": "string", "nullable": true}}},
  "DAGRunOrTaskInstances": {"anyOf": [{"$ref": "#/components/schemas/DAGRun"},
    {"$ref": "#/components/schemas/TaskInstanceCollection"}]},
  "DAGRunCollection": {"type": "object", "required": ["dag_runs", "total_entries"], "properties": {
    "dag_runs": {"type": "array", "items": {"$ref": "#/components/schemas/DAGRun"}}, "total_entries": {"type": "integer"}}},
  "ListDagRunsForm": {"type": "object", "properties": {
    "order_by": {"type": "string"}, "page_offset": {"type": "integer"}, "page_limit": {"type": "integer"},
    "dag_ids": {"type": "array", "items": {"type": "string"}}, "states": {"type": "array", "items": {"type": "string"}},
    "execution_date_gte": {"type": "string"}, "execution_date_lte": {"type": "string"}, "start_date_gte": {"type": "string"},
    "start_date_lte": {"type": "string"}, "end_date_gte": {"type": "string"}, "end_date_lte": {"type": "string"}}},
  "UpdateDagRunState": {"type": "object", "required": ["state"], "properties": {
    "state": {"type": "string", "enum": ["success", "failed", "queued"]}}},
  "ClearDagRun": {"type": "object", "properties": {"dry_run": {"type": "boolean", "default": true}}},
  "SetDagRunNote": {"type": "object", "required": ["note"], "properties": {"note": {"type": "string"}}},
  "SetTaskInstanceNote": {"type": "object", "required": ["note"], "properties": {"note": {"type": "string"}}},
  "TaskInstance": {"type": "object", "required": ["task_id", "dag_id", "dag_run_id", "execution_date", "try_number"], "properties": {
    "task_id": {"type": "string"}, "dag_id": {"type": "string"}, "dag_run_id": {"type": "string"},
    "execution_date": {"type": "string"}, "start_date": {"type": "string", "nullable": true},
    "end_date": {"type": "string", "nullable": true}, "duration": {"type": "number", "nullable": true},
    "state": {"type": "string", "nullable": true}, "try_number": {"type": "integer"}, "map_index": {"type": "integer"},
    "max_tries": {"type": "integer"}, "hostname": {"type": "string"}, "pid": {"type": "integer", "nullable": true},
    "operator": {"type": "string", "nullable": true}, "note": {"type": "string", "nullable": true}}},
  "TaskInstanceCollection": {"type": "object", "required": ["task_instances", "total_entries"], "properties": {
    "task_instances": {"type": "array", "items": {"$ref": "#/components/schemas/TaskInstance"}}, "total_entries": {"type": "integer"}}},
  "TaskInstanceReference": {"type": "object", "required": ["task_id", "dag_id", "dag_run_id", "execution_date"], "properties": {
    "task_id": {"type": "string"}, "dag_id": {"type": "string"}, "dag_run_id": {"type": "string"}, "execution_date": {"type": "string"}}},
  "TaskInstanceReferenceCollection": {"type": "object", "required": ["task_instances"], "properties": {
    "task_instances": {"type": "array", "items": {"$ref": "#/components/schemas/TaskInstanceReference"}}}},
  "ListTaskInstanceForm": {"type": "object", "properties": {
    "dag_ids": {"type": "array", "items": {"type": "string"}}, "dag_run_ids": {"type": "array", "items": {"type": "string"}},
    "task_ids": {"type": "array", "items": {"type": "string"}}, "state": {"type": "array", "items": {"type": "string"}},
    "execution_date_gte": {"type": "string"}, "execution_date_lte": {"type": "string"}, "start_date_gte": {"type": "string"},
    "start_date_lte": {"type": "string"}, "end_date_gte": {"type": "string"}, "end_date_lte": {"type": "string"},
    "duration_gte": {"type": "number"}, "duration_lte": {"type": "number"}, "order_by": {"type": "string"},
    "page_offset": {"type": "integer"}, "page_limit": {"type": "integer"}}},
  "UpdateTaskInstance": {"type": "object", "required": ["new_state"], "properties": {
    "dry_run": {"type": "boolean", "default": true}, "new_state": {"type": "string", "enum": ["success", "failed", "skipped"]}}},
  "UpdateTaskInstancesState": {"type": "object", "required": ["task_id", "new_state"], "properties": {
    "dry_run": {"type": "boolean", "default": true}, "task_id": {"type": "string"}, "execution_date": {"type": "string"},
    "dag_run_id": {"type": "string"}, "include_upstream": {"type": "boolean"}, "include_downstream": {"type": "boolean"},
    "new_state": {"type": "string", "enum": ["success", "failed", "skipped"]}}},
  "ClearTaskInstances": {"type": "object", "properties": {
    "dry_run": {"type": "boolean", "default": true}, "task_ids": {"type": "array", "items": {"type": "string"}},
    "start_date": {"type": "string"}, "end_date": {"type": "string"}, "only_failed": {"type": "boolean", "default": true},
    "reset_dag_runs": {"type": "boolean"}, "dag_run_id": {"type": "string", "nullable": true},
    "include_upstream": {"type": "boolean"}, "include_downstream": {"type": "boolean"}}},
  "TaskInstanceDependencyCollection": {"type": "object", "required": ["dependencies"], "properties": {
    "dependencies": {"type": "array", "items": {"type": "object", "properties": {
      "name": {"type": "string"}, "reason": {"type": "string"}}}}}},
  "ExtraLinkCollection": {"type": "object", "additionalProperties": {"type": "string", "nullable": true}},
  "Log": {"type": "object", "required": ["content", "continuation_token"], "properties": {
    "content": {"type": "string"}, "continuation_token": {"type": "string"}}},
  "XCom": {"type": "object", "required": ["key", "task_id", "dag_id", "value"], "properties": {
    "key": {"type": "string"}, "timestamp": {"type": "string"}, "execution_date": {"type": "string"},
    "map_index": {"type": "integer"}, "task_id": {"type": "string"}, "dag_id": {"type": "string"}, "value": {"type": "string"}}},
  "XComCollection": {"type": "object", "required": ["xcom_entries", "total_entries"], "properties": {
    "xcom_entries": {"type": "array", "items": {"type": "object", "required": ["key", "task_id", "dag_id"], "properties": {
      "key": {"type": "string"}, "task_id": {"type": "string"}, "dag_id": {"type": "string"}}}},
    "total_entries": {"type": "integer"}}},
  "Variable": {"type": "object", "required": ["key", "value"], "properties": {
    "key": {"type": "string"}, "value": {"type": "string"}, "description": {"type": "string", "nullable": true}}},
  "VariableCollection": {"type": "object", "required": ["variables", "total_entries"], "properties": {
    "variables": {"type": "array", "items": {"$ref": "#/components/schemas/Variable"}}, "total_entries": {"type": "integer"}}},
  "Connection": {"type": "object", "required": ["connection_id", "conn_type"], "properties": {
    "connection_id": {"type": "string"}, "conn_type": {"type": "string"}, "description": {"type": "string", "nullable": true},
    "host": {"type": "string", "nullable": true}, "login": {"type": "string", "nullable": true},
    "schema": {"type": "string", "nullable": true}, "port": {"type": "integer", "nullable": true},
    "password": {"type": "string", "writeOnly": true}, "extra": {"type": "string", "nullable": true}}},
  "ConnectionCollection": {"type": "object", "required": ["connections", "total_entries"], "properties": {
    "connections": {"type": "array", "items": {"$ref": "#/components/schemas/Connection"}}, "total_entries": {"type": "integer"}}},
  "ConnectionTest": {"type": "object", "properties": {"status": {"type": "boolean"}, "message": {"type": "string"}}},
  "Pool": {"type": "object", "properties": {
    "name": {"type": "string"}, "slots": {"type": "integer"}, "occupied_slots": {"type": "integer", "readOnly": true},
    "running_slots": {"type": "integer", "readOnly": true}, "queued_slots": {"type": "integer", "readOnly": true},
    "open_slots": {"type": "integer", "readOnly": true}, "description": {"type": "string", "nullable": true}}},
  "PoolCollection": {"type": "object", "required": ["pools", "total_entries"], "properties": {
    "pools": {"type": "array", "items": {"$ref": "#/components/schemas/Pool"}}, "total_entries": {"type": "integer"}}},
  "ImportError": {"type": "object", "required": ["import_error_id", "filename", "stack_trace"], "properties": {
    "import_error_id": {"type": "integer"}, "timestamp": {"type": "string", "nullable": true},
    "filename": {"type": "string"}, "stack_trace": {"type": "string"}}},
  "ImportErrorCollection": {"type": "object", "required": ["import_errors", "total_entries"], "properties": {
    "import_errors": {"type": "array", "items": {"$ref": "#/components/schemas/ImportError"}}, "total_entries": {"type": "integer"}}},
  "EventLog": {"type": "object", "required": ["event_log_id", "when", "event"], "properties": {
    "event_log_id": {"type": "integer"}, "when": {"type": "string", "format": "date-time"},
    "dag_id": {"type": "string", "nullable": true}, "task_id": {"type": "string", "nullable": true},
    "run_id": {"type": "string", "nullable": true}, "event": {"type": "string"},
    "owner": {"type": "string", "nullable": true}, "extra": {"type": "string", "nullable": true}}},
  "EventLogCollection": {"type": "object", "required": ["event_logs", "total_entries"], "properties": {
    "event_logs": {"type": "array", "items": {"$ref": "#/components/schemas/EventLog"}}, "total_entries": {"type": "integer"}}},
  "HealthInfo": {"type": "object", "required": ["metadatabase", "scheduler"], "properties": {
    "metadatabase": {"type": "object", "properties": {"status": {"type": "string", "enum": ["healthy", "unhealthy"]}}},
    "scheduler": {"type": "object", "properties": {"status": {"type": "string", "enum": ["healthy", "unhealthy"]},
      "latest_scheduler_heartbeat": {"type": "string", "nullable": true}}}}},
  "VersionInfo": {"type": "object", "required": ["version"], "properties": {
    "version": {"type": "string"}, "git_version": {"type": "string", "nullable": true}}},
  "Config": {"type": "object", "required": ["sections"], "properties": {"sections": {"type": "array", "items": {
    "type": "object", "properties": {"name": {"type": "string"}, "options": {"type": "array", "items": {"type": "object",
      "properties": {"key": {"type": "string"}, "value": {"type": "string"}}}}}}}}},
  "PluginCollection": {"type": "object", "required": ["plugins", "total_entries"], "properties": {
    "plugins": {"type": "array", "items": {"type": "object"}}, "total_entries": {"type": "integer"}}},
  "ProviderCollection": {"type": "object", "required": ["providers"], "properties": {"providers": {"type": "array", "items": {
    "type": "object", "required": ["package_name", "description", "version"], "properties": {
      "package_name": {"type": "string"}, "description": {"type": "string"}, "version": {"type": "string"}}}}}},
  "Dataset": {"type": "object", "required": ["id", "uri", "created_at", "updated_at", "consuming_dags", "producing_tasks"],
    "properties": {"id": {"type": "integer"}, "uri": {"type": "string"}, "extra": {"type": "object", "nullable": true},
    "created_at": {"type": "string"}, "updated_at": {"type": "string"},
    "consuming_dags": {"type": "array", "items": {"type": "object", "properties": {"dag_id": {"type": "string", "nullable": true},
      "created_at": {"type": "string"}, "updated_at": {"type": "string"}}}},
    "producing_tasks": {"type": "array", "items": {"type": "object", "properties": {"dag_id": {"type": "string", "nullable": true},
      "task_id": {"type": "string", "nullable": true}, "created_at": {"type": "string"}, "updated_at": {"type": "string"}}}}}},
  "DatasetCollection": {"type": "object", "required": ["datasets", "total_entries"], "properties": {
    "datasets": {"type": "array", "items": {"$ref": "#/components/schemas/Dataset"}}, "total_entries": {"type": "integer"}}},
  "BasicDAGRun": {"type": "object", "properties": {"run_id": {"type": "string", "nullable": true}, "dag_id": {"type": "string"},
    "logical_date": {"type": "string", "format": "date-time", "nullable": true},
    "start_date": {"type": "string", "format": "date-time", "nullable": true},
    "end_date": {"type": "string", "format": "date-time", "nullable": true},
    "data_interval_start": {"type": "string", "format": "date-time", "nullable": true},
    "data_interval_end": {"type": "string", "format": "date-time", "nullable": true},
    "state": {"type": "string", "enum": ["queued", "running", "success", "failed"]}}},
  "DatasetEvent": {"type": "object", "required": ["dataset_id", "dataset_uri", "timestamp", "created_dagruns"], "properties": {
    "id": {"type": "integer"}, "dataset_id": {"type": "integer", "nullable": true}, "dataset_uri": {"type": "string"},
    "extra": {"type": "object", "nullable": true}, "source_dag_id": {"type": "string", "nullable": true},
    "source_task_id": {"type": "string", "nullable": true}, "source_run_id": {"type": "string", "nullable": true},
    "source_map_index": {"type": "integer", "nullable": true},
    "created_dagruns": {"type": "array", "items": {"$ref": "#/components/schemas/BasicDAGRun"}},
    "timestamp": {"type": "string"}}},
  "DatasetEventCollection": {"type": "object", "required": ["dataset_events", "total_entries"], "properties": {
    "dataset_events": {"type": "array", "items": {"$ref": "#/components/schemas/DatasetEvent"}},
    "total_entries": {"type": "integer"}}},
  "CreateDatasetEvent": {"type": "object", "required": ["dataset_uri"], "properties": {
    "dataset_uri": {"type": "string"}, "extra": {"type": "object", "nullable": true}}}
})json";
  return json::parse(text);
}

}  // namespace dag::detail
