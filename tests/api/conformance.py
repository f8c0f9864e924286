#!/usr/bin/env python3
"""Calls every operation of dagrun's REST API on a running daemon with real history and checks each
answer against the OpenAPI documents: dagrun's own (/api/v1/openapi.json, generated from its route
table) and Airflow's (`airflow/api_connexion/openapi/v1.yaml` of Airflow 2, when given). Filters and
paging are checked for their effect, errors for their shape.

usage: conformance.py DAGRUN_BINARY [AIRFLOW_OPENAPI_YAML]
"""

import copy
import os
import sys

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import Daemon, deadline_wait, quote  # noqa: E402

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL: " + message)


# --- OpenAPI 3.0 schemas as JSON Schema ------------------------------------------------------------

def as_json_schema(node):
    """OpenAPI 3.0's schema dialect as JSON Schema draft 7: `nullable` becomes a null alternative."""
    if isinstance(node, list):
        return [as_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_json_schema(v) for k, v in node.items()
           if k not in ("nullable", "discriminator", "example", "xml", "readOnly", "writeOnly", "deprecated")
           and not k.startswith("x-")}
    if node.get("nullable"):
        if "type" in out and "$ref" not in out and "allOf" not in out and "anyOf" not in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = out["enum"] + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


class Document:
    def __init__(self, name, doc):
        self.name = name
        self.doc = doc
        self.components = as_json_schema(doc.get("components", {}).get("schemas", {}))

    def operation(self, method, template):
        return self.doc.get("paths", {}).get(template, {}).get(method.lower())

    def answer_schema(self, method, template, status, content_type):
        op = self.operation(method, template)
        if op is None:
            return None, "%s has no %s %s" % (self.name, method, template)
        answers = op.get("responses", {})
        answer = answers.get(str(status)) or answers.get("default")
        if answer is None:
            return None, "%s: %s %s has no %d answer" % (self.name, method, template, status)
        if "$ref" in answer:
            answer = self.doc["components"]["responses"][answer["$ref"].split("/")[-1]]
        content = answer.get("content", {})
        if not content:
            return {}, None  # no body
        media = content.get(content_type.split(";")[0].strip()) or content.get("application/json")
        if media is None:
            media = next(iter(content.values()))
        return media.get("schema", {}), None

    def validate(self, value, schema, where):
        root = {"components": {"schemas": self.components}}
        root.update(as_json_schema(copy.deepcopy(schema)))
        errors = sorted(jsonschema.Draft7Validator(root).iter_errors(value), key=lambda e: list(e.path))
        for e in errors[:3]:
            check(False, "%s: %s against %s's schema: %s at %s" % (where, repr(value)[:200], self.name, e.message[:300],
                                                                 "/".join(map(str, e.path))))


# --- the calls ---------------------------------------------------------------------------------------

def main():
    binary = sys.argv[1]
    airflow_path = sys.argv[2] if len(sys.argv) > 2 else ""
    d = Daemon(binary)
    try:
        run(d, airflow_path)
    finally:
        d.stop()
    if failures:
        print("%d failed" % len(failures))
        sys.exit(1)
    print("conformance: every check passed")


def run(d, airflow_path):
    status, kind, served = d.call("GET", "/api/v1/openapi.json")
    check(status == 200 and served.get("openapi", "").startswith("3."), "the served document is OpenAPI 3")
    documents = [Document("dagrun", served)]
    if airflow_path and os.path.exists(airflow_path):
        with open(airflow_path) as f:
            documents.append(Document("Airflow", yaml.safe_load(f)))
    else:
        print("note: Airflow's OpenAPI document not found (%r): checking against dagrun's own only" % airflow_path)
    airflow = documents[1] if len(documents) > 1 else None

    # Every operation dagrun serves is one of Airflow's, under the same path, method and operationId.
    operations = {(m.upper(), p): op for p, ops in served["paths"].items() for m, op in ops.items()}
    if airflow:
        for (method, path), op in operations.items():
            theirs = airflow.operation(method, path)
            check(theirs is not None, "Airflow has no %s %s" % (method, path))
            if theirs is not None:
                check(theirs.get("operationId") == op["operationId"],
                      "%s %s: operationId %s, Airflow's %s" % (method, path, op["operationId"], theirs.get("operationId")))

    called = set()

    def call(method, template, path, body=None, expect=200, auth="basic", headers=None):
        status, kind, answer = d.call(method, "/api/v1" + path, body, auth=auth, headers=headers)
        where = "%s %s" % (method, path)
        check(status == expect, "%s: expected %d, got %d: %s" % (where, expect, status, str(answer)[:300]))
        if status == expect and 200 <= status < 300:
            called.add((method, template))
        if status >= 400:
            check(kind.startswith("application/problem+json"), where + ": an error is application/problem+json, not " + kind)
        for doc in documents:
            schema, missing = doc.answer_schema(method, template, status, kind)
            if missing and status >= 400:
                schema = {"$ref": "#/components/schemas/Error"}  # an error this document does not list: its shape
            elif missing:
                check(False, where + ": " + missing)
                continue
            if schema and status != 204:
                doc.validate(answer, schema, where)
        return answer

    # History: runs triggered through the API, finished by the scheduler.
    deadline_wait("the scheduler to be healthy", lambda: d.call("GET", "/health")[0] == 200)
    run1 = call("POST", "/dags/{dag_id}/dagRuns", "/dags/etl/dagRuns",
                {"logical_date": "2024-01-01T00:00:00+00:00", "conf": {"greeting": "hi"}, "note": "first"})
    check(run1.get("note") == "first", "a run's note is kept when triggered")
    run2 = call("POST", "/dags/{dag_id}/dagRuns", "/dags/etl/dagRuns", {"logical_date": "2024-01-02T00:00:00+00:00"})
    run3 = call("POST", "/dags/{dag_id}/dagRuns", "/dags/flaky/dagRuns", {"logical_date": "2024-01-01T00:00:00+00:00"})
    call("POST", "/dags/{dag_id}/dagRuns", "/dags/etl/dagRuns", {"logical_date": "2024-01-01T00:00:00+00:00"}, expect=409)
    r1, r2, r3 = run1["dag_run_id"], run2["dag_run_id"], run3["dag_run_id"]
    check(d.wait_run("etl", r1)["state"] == "success", "etl's first run succeeds")
    d.wait_run("etl", r2)
    check(d.wait_run("flaky", r3)["state"] == "failed", "flaky's run fails")
    run_path = "/dags/etl/dagRuns/" + quote(r1)
    ti_path = run_path + "/taskInstances/extract"
    T_RUN = "/dags/{dag_id}/dagRuns/{dag_run_id}"
    T_TI = T_RUN + "/taskInstances/{task_id}"

    # DAGs, with filters and paging checked for their effect.
    dags = call("GET", "/dags", "/dags")
    check([x["dag_id"] for x in dags["dags"]] == ["etl", "flaky"], "GET /dags lists the loaded DAGs by id")
    check(call("GET", "/dags", "/dags?tags=flaky")["total_entries"] == 1, "tags filters DAGs")
    check(call("GET", "/dags", "/dags?dag_id_pattern=fl")["dags"][0]["dag_id"] == "flaky", "dag_id_pattern filters")
    page = call("GET", "/dags", "/dags?limit=1&offset=1&order_by=-dag_id")
    check(page["total_entries"] == 2 and [x["dag_id"] for x in page["dags"]] == ["etl"], "order_by, limit and offset")
    call("PATCH", "/dags/{dag_id}", "/dags/flaky", {"is_paused": True})
    check([x["dag_id"] for x in call("GET", "/dags", "/dags?paused=true")["dags"]] == ["flaky"], "paused=true filters")
    check(call("GET", "/dags", "/dags?paused=false")["total_entries"] == 1, "paused=false filters")
    patched = call("PATCH", "/dags", "/dags?dag_id_pattern=fl", {"is_paused": False})
    check(patched["dags"][0]["is_paused"] is False, "PATCH /dags unpauses the selected DAGs")
    dag = call("GET", "/dags/{dag_id}", "/dags/etl")
    call("GET", "/dags/{dag_id}/details", "/dags/etl/details")
    tasks = call("GET", "/dags/{dag_id}/tasks", "/dags/etl/tasks")
    check([t["task_id"] for t in tasks["tasks"]] == ["extract", "transform", "load"], "the tasks of a DAG")
    check(call("GET", "/dags/{dag_id}/tasks/{task_id}", "/dags/etl/tasks/extract")["downstream_task_ids"] == ["transform"],
          "a task's downstream tasks")
    source = call("GET", "/dagSources/{file_token}", "/dagSources/" + dag["file_token"])
    check("dag_id: etl" in source.get("content", ""), "dagSources gives the DAG's file")
    call("GET", "/dagSources/{file_token}", "/dagSources/2f6574632f706173737764", expect=404)  # /etc/passwd: not a DAG's
    stats = call("GET", "/dagStats", "/dagStats?dag_ids=etl")
    counts = {s["state"]: s["count"] for s in stats["dags"][0]["stats"]}
    check(counts.get("success") == 2, "dagStats counts etl's successful runs: %s" % counts)
    call("GET", "/dagWarnings", "/dagWarnings")

    # Runs: filters, ~, batch, order.
    check(call("GET", "/dags/{dag_id}/dagRuns", "/dags/~/dagRuns")["total_entries"] == 3, "~ lists runs of every DAG")
    failed = call("GET", "/dags/{dag_id}/dagRuns", "/dags/~/dagRuns?state=failed")
    check([r["dag_id"] for r in failed["dag_runs"]] == ["flaky"], "state=failed lists only failed runs")
    dated = call("GET", "/dags/{dag_id}/dagRuns", "/dags/etl/dagRuns?execution_date_gte=2024-01-02T00:00:00%2B00:00")
    check([r["dag_run_id"] for r in dated["dag_runs"]] == [r2], "execution_date_gte filters")
    ordered = call("GET", "/dags/{dag_id}/dagRuns", "/dags/etl/dagRuns?order_by=execution_date")
    check([r["dag_run_id"] for r in ordered["dag_runs"]] == [r1, r2], "order_by=execution_date, oldest first")
    every = call("GET", "/dags/{dag_id}/dagRuns", "/dags/~/dagRuns")["dag_runs"]
    paged = call("GET", "/dags/{dag_id}/dagRuns", "/dags/~/dagRuns?limit=1&offset=1")
    check(paged["total_entries"] == 3 and [r["dag_run_id"] for r in paged["dag_runs"]] == [every[1]["dag_run_id"]],
          "limit and offset page the runs in their order, total_entries counts them all")
    ended = call("GET", "/dags/{dag_id}/dagRuns", "/dags/~/dagRuns?end_date_gte=2999-01-01T00:00:00Z")
    check(ended["total_entries"] == 0, "end_date_gte filters")
    started = call("GET", "/dags/{dag_id}/dagRuns", "/dags/~/dagRuns?start_date_lte=2999-01-01T00:00:00Z&state=failed")
    check([r["dag_id"] for r in started["dag_runs"]] == ["flaky"], "start_date_lte and state filter together")
    batch = call("POST", "/dags/~/dagRuns/list", "/dags/~/dagRuns/list", {"dag_ids": ["etl"], "page_limit": 1, "order_by": "-execution_date"})
    check(batch["total_entries"] == 2 and batch["dag_runs"][0]["dag_run_id"] == r2, "the batch list filters, orders, pages")
    call("GET", T_RUN, run_path)
    noted = call("PATCH", T_RUN + "/setNote", run_path + "/setNote", {"note": "checked"})
    check(noted["note"] == "checked", "setNote sets a run's note")

    # Task instances.
    tis = call("GET", T_RUN + "/taskInstances", run_path + "/taskInstances")
    check(tis["total_entries"] == 3, "a run's task instances")
    every = call("GET", T_RUN + "/taskInstances", "/dags/~/dagRuns/~/taskInstances?state=failed")
    check([t["task_id"] for t in every["task_instances"]] == ["boom"], "~/~ with state=failed finds the failed task")
    listed = call("POST", "/dags/~/dagRuns/~/taskInstances/list", "/dags/~/dagRuns/~/taskInstances/list",
                  {"dag_ids": ["etl"], "task_ids": ["load"]})
    check(listed["total_entries"] == 2, "the batch task instance list filters by DAG and task")
    paged = call("GET", T_RUN + "/taskInstances", "/dags/etl/dagRuns/~/taskInstances?order_by=-execution_date&limit=2&offset=1")
    check(paged["total_entries"] == 6 and len(paged["task_instances"]) == 2, "task instances are counted before paging")
    newest = call("GET", T_RUN + "/taskInstances", "/dags/etl/dagRuns/~/taskInstances?order_by=-execution_date&limit=1")
    check(newest["task_instances"][0]["dag_run_id"] == r2, "task instances ordered by execution_date, newest first")
    check(call("GET", T_RUN + "/taskInstances", "/dags/~/dagRuns/~/taskInstances?duration_gte=0&pool=default_pool")
          ["total_entries"] >= 6, "duration and pool filters")
    call("GET", T_RUN + "/taskInstances", "/dags/etl/dagRuns/~/taskInstances?order_by=colour", expect=400)
    sparse = call("GET", T_RUN, run_path + "?fields=dag_run_id&fields=state")
    check(sorted(sparse) == ["dag_run_id", "state"], "a run's sparse fieldset")
    sparse = call("GET", "/dags", "/dags?fields=dag_id")
    check(all(sorted(x) == ["dag_id"] for x in sparse["dags"]), "DAGs' sparse fieldsets")
    ti = call("GET", T_TI, ti_path)
    check(ti["state"] == "success" and ti["try_number"] == 1, "a task instance")
    call("GET", T_TI + "/tries", ti_path + "/tries")
    call("GET", T_TI + "/tries/{task_try_number}", ti_path + "/tries/1")
    call("GET", T_TI + "/dependencies", ti_path + "/dependencies")
    check(call("GET", T_TI + "/links", ti_path + "/links") == {}, "a task instance has no extra links")
    call("PATCH", T_TI + "/setNote", ti_path + "/setNote", {"note": "looked fine"})
    check(call("GET", T_TI, ti_path)["note"] == "looked fine", "setNote sets a task instance's note")
    log = call("GET", T_TI + "/logs/{task_try_number}", ti_path + "/logs/1?full_content=true")
    check("hi from extract" in log["content"], "the log shows conf overriding params")
    check(isinstance(log["continuation_token"], str), "continuation_token is a string")
    more = call("GET", T_TI + "/logs/{task_try_number}", ti_path + "/logs/1?token=" + log["continuation_token"])
    check(more["content"] == "", "nothing new after the continuation token")
    xcoms = call("GET", T_TI + "/xcomEntries", ti_path + "/xcomEntries")
    check([x["key"] for x in xcoms["xcom_entries"]] == ["return_value"], "XCom entries of a task")
    xcom = call("GET", T_TI + "/xcomEntries/{xcom_key}", ti_path + "/xcomEntries/return_value")
    check(xcom["value"] == "hi from extract", "an XCom's value")
    flaky_run = "/dags/flaky/dagRuns/" + quote(r3)
    call("PATCH", T_TI, flaky_run + "/taskInstances/boom", {"new_state": "success", "dry_run": True})
    call("POST", "/dags/{dag_id}/updateTaskInstancesState", "/dags/flaky/updateTaskInstancesState",
         {"task_id": "boom", "dag_run_id": r3, "new_state": "success", "dry_run": True})
    cleared = call("POST", "/dags/{dag_id}/clearTaskInstances", "/dags/flaky/clearTaskInstances", {"dry_run": True})
    check(sorted(t["task_id"] for t in cleared["task_instances"]) == ["after", "boom"],
          "a dry-run clear lists the failed task and the one that failed upstream")
    call("POST", T_RUN + "/clear", flaky_run + "/clear", {"dry_run": True})
    call("PATCH", T_RUN, flaky_run, {"state": "success"})
    d.wait_run("flaky", r3, ("success",))

    # Variables, connections.
    call("POST", "/variables", "/variables", {"key": "region", "value": "eu"})
    call("PATCH", "/variables/{variable_key}", "/variables/region", {"key": "region", "value": "us"})
    check(call("GET", "/variables/{variable_key}", "/variables/region")["value"] == "us", "a variable is updated")
    check(call("GET", "/variables", "/variables")["total_entries"] == 1, "variables are listed")
    call("DELETE", "/variables/{variable_key}", "/variables/region", expect=204)
    call("GET", "/variables/{variable_key}", "/variables/region", expect=404)
    conn = {"connection_id": "warehouse", "conn_type": "postgres", "host": "db", "port": 5432, "login": "etl",
            "password": "pw-never-shown", "schema": "dw"}
    call("POST", "/connections", "/connections", conn)
    call("POST", "/connections", "/connections", conn, expect=409)
    call("PATCH", "/connections/{connection_id}", "/connections/warehouse?update_mask=host",
         {"connection_id": "warehouse", "conn_type": "postgres", "host": "db2"})
    got = call("GET", "/connections/{connection_id}", "/connections/warehouse")
    check(got["host"] == "db2" and got["port"] == 5432 and "password" not in got, "a connection is patched, its password hidden")
    check("pw-never-shown" not in str(call("GET", "/connections", "/connections")), "passwords are never listed")
    call("POST", "/connections/test", "/connections/test", conn)
    call("DELETE", "/connections/{connection_id}", "/connections/warehouse", expect=204)

    # Pools.
    pools = call("GET", "/pools", "/pools")
    check([p["name"] for p in pools["pools"]] == ["default_pool"] and pools["pools"][0]["slots"] == 128,
          "the default pool has 128 slots")
    made = call("POST", "/pools", "/pools", {"name": "warehouse", "slots": 2, "description": "DW"})
    check(made == {"name": "warehouse", "slots": 2, "occupied_slots": 0, "running_slots": 0, "queued_slots": 0,
                   "open_slots": 2, "description": "DW"}, "a pool is created: %s" % made)
    call("POST", "/pools", "/pools", {"name": "warehouse", "slots": 2}, expect=409)
    call("POST", "/pools", "/pools", {"name": "negative", "slots": -1}, expect=400)
    patched = call("PATCH", "/pools/{pool_name}", "/pools/warehouse?update_mask=slots", {"name": "warehouse", "slots": 5})
    check(patched["slots"] == 5 and patched["description"] == "DW", "update_mask=slots changes only the slots")
    check(call("GET", "/pools/{pool_name}", "/pools/warehouse")["open_slots"] == 5, "a pool is read")
    check(call("GET", "/pools", "/pools?order_by=-name&limit=1")["pools"][0]["name"] == "warehouse", "pools are ordered")
    call("DELETE", "/pools/{pool_name}", "/pools/default_pool", expect=400)
    call("DELETE", "/pools/{pool_name}", "/pools/warehouse", expect=204)
    call("GET", "/pools/{pool_name}", "/pools/warehouse", expect=404)
    ti = call("GET", T_TI, ti_path)
    check(ti["pool"] == "default_pool" and ti["pool_slots"] == 1, "a task instance names its pool")

    # Import errors, the event log, the server.
    errors = call("GET", "/importErrors", "/importErrors")
    check(errors["total_entries"] == 1 and "broken.yaml" in errors["import_errors"][0]["filename"], "the broken DAG file")
    call("GET", "/importErrors/{import_error_id}", "/importErrors/1")
    events = call("GET", "/eventLogs", "/eventLogs?dag_id=etl&event=trigger")
    check(events["total_entries"] == 2 and all(e["owner"] == "admin" for e in events["event_logs"]),
          "triggers are in the event log with who made them")
    check(call("GET", "/eventLogs", "/eventLogs?owner=admin&limit=1")["total_entries"] > 5, "the event log's owner filter")
    call("GET", "/eventLogs/{event_log_id}", "/eventLogs/%d" % events["event_logs"][0]["event_log_id"])
    call("GET", "/health", "/health")
    call("GET", "/version", "/version")
    call("GET", "/config", "/config")
    call("GET", "/config/section/{section}/option/{option}", "/config/section/api/option/maximum_page_limit")
    call("GET", "/plugins", "/plugins")
    call("GET", "/providers", "/providers")

    # Datasets: etl's load updates one on each success; an external producer posts another event.
    WAREHOUSE = "s3://warehouse/etl.parquet"
    datasets = call("GET", "/datasets", "/datasets")
    check([x["uri"] for x in datasets["datasets"]] == [WAREHOUSE], "the dataset etl's outlets name")
    check(datasets["datasets"][0]["producing_tasks"][0]["task_id"] == "load", "a dataset's producing task")
    check(call("GET", "/datasets", "/datasets?uri_pattern=nothing")["total_entries"] == 0, "uri_pattern filters")
    call("GET", "/datasets/{uri}", "/datasets/" + quote(WAREHOUSE))
    call("GET", "/datasets/{uri}", "/datasets/" + quote("s3://nowhere/x"), expect=404)
    produced = call("GET", "/datasets/events", "/datasets/events?source_dag_id=etl&order_by=timestamp")
    check(sorted(e["source_run_id"] for e in produced["dataset_events"]) == sorted([r1, r2]),
          "each successful etl run updated the dataset once")
    posted = call("POST", "/datasets/events", "/datasets/events", {"dataset_uri": WAREHOUSE, "extra": {"rows": 3}})
    check(posted["extra"] == {"rows": 3} and posted["source_dag_id"] is None, "an external event keeps its extra")
    call("POST", "/datasets/events", "/datasets/events", {"dataset_uri": "s3://nowhere/x"}, expect=404)
    check(call("GET", "/datasets/events", "/datasets/events?limit=1")["total_entries"] == 3, "every event is listed")
    upstream = call("GET", T_RUN + "/upstreamDatasetEvents", run_path + "/upstreamDatasetEvents")
    check(upstream["total_entries"] == 0, "a manual run was triggered by no dataset")

    # Deleting, last.
    call("DELETE", T_RUN, "/dags/etl/dagRuns/" + quote(r2), expect=204)
    call("GET", T_RUN, "/dags/etl/dagRuns/" + quote(r2), expect=404)
    call("DELETE", "/dags/{dag_id}", "/dags/flaky", expect=204)
    check(call("GET", "/dags/{dag_id}/dagRuns", "/dags/flaky/dagRuns")["total_entries"] == 0, "a deleted DAG has no runs")

    # Errors: shapes and codes.
    call("GET", "/dags", "/dags?colour=red", expect=400)
    call("GET", "/dags/{dag_id}", "/dags/nope", expect=404)
    call("GET", "/dags", "/dags", auth="none", expect=401)
    call("GET", "/dags", "/dags", auth="bearer")
    check(d.call("GET", "/api/v1/dags", headers={"Authorization": "Basic YWRtaW46d3Jvbmc="}, auth="none")[0] == 401,
          "a wrong password gets 401")
    check(len(call("GET", "/dags", "/dags?limit=1000")["dags"]) == 2, "a limit beyond the maximum is clamped, not refused")

    # A mapped task: its instances by map index (the DAG file arrives while the daemon runs).
    (d.dir / "dags" / "mapped.yaml").write_text(
        "dag_id: mapped\nschedule: null\ntasks:\n  - task_id: each\n    operator: bash\n"
        "    expand:\n      bash_command: [echo a, echo b]\n")
    deadline_wait("the mapped DAG to load", lambda: d.call("GET", "/api/v1/dags/mapped")[0] == 200)
    mapped = call("POST", "/dags/{dag_id}/dagRuns", "/dags/mapped/dagRuns", {"logical_date": "2024-01-01T00:00:00+00:00"})
    check(d.wait_run("mapped", mapped["dag_run_id"])["state"] == "success", "the mapped run succeeds")
    each = "/dags/mapped/dagRuns/" + quote(mapped["dag_run_id"]) + "/taskInstances/each"
    listed = call("GET", T_TI + "/listMapped", each + "/listMapped")
    check([t["map_index"] for t in listed["task_instances"]] == [0, 1], "listMapped lists the instances by map index")
    check(call("GET", T_TI + "/{map_index}", each + "/1")["map_index"] == 1, "one mapped instance")
    call("GET", T_TI + "/{map_index}/tries", each + "/1/tries")
    call("GET", T_TI + "/{map_index}/dependencies", each + "/1/dependencies")
    call("GET", T_TI + "/{map_index}/tries/{task_try_number}", each + "/1/tries/1")
    call("PATCH", T_TI + "/{map_index}", each + "/1", {"new_state": "failed", "dry_run": True})
    call("GET", T_TI + "/{map_index}", each + "/7", expect=404)
    noted = call("PATCH", T_TI + "/{map_index}/setNote", each + "/1/setNote", {"note": "instance 1"})
    check(noted["note"] == "instance 1" and call("GET", T_TI + "/{map_index}", each + "/0")["note"] is None,
          "setNote of a mapped instance notes that instance alone")
    call("PATCH", T_TI + "/{map_index}/setNote", each + "/7/setNote", {"note": "x"}, expect=404)

    missing = sorted(set(operations) - called)
    check(not missing, "operations never called with success: %s" % missing)


if __name__ == "__main__":
    main()
