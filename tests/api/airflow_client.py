#!/usr/bin/env python3
"""A script written against Airflow 2's stable REST API, as a user would write it (urllib and basic
auth, nothing of dagrun's), run against a real `dagrun schedule`: trigger a run with conf, wait
for it, read its task logs and XComs, clear a task, and set a variable.

usage: airflow_client.py DAGRUN_BINARY
"""

import base64
import json
import os
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import PASSWORD, USER, Daemon  # noqa: E402  (only to start the server)


def airflow_script(base_url, user, password):
    """What a user's script against Airflow looks like."""
    auth = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()

    def api(method, path, body=None):
        req = urllib.request.Request(base_url + "/api/v1" + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        req.add_header("Authorization", auth)
        req.add_header("Accept", "application/json")
        if body is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            return json.loads(text) if text else None

    q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731

    assert api("GET", "/health")["metadatabase"]["status"] == "healthy"
    run = api("POST", "/dags/etl/dagRuns", {"conf": {"greeting": "bonjour"}, "logical_date": "2024-03-01T00:00:00Z"})
    run_id = run["dag_run_id"]
    print("triggered", run_id)
    deadline = time.monotonic() + 60
    while run["state"] not in ("success", "failed"):
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.5)
        run = api("GET", "/dags/etl/dagRuns/%s" % q(run_id))
    assert run["state"] == "success", run
    tis = api("GET", "/dags/etl/dagRuns/%s/taskInstances" % q(run_id))["task_instances"]
    assert sorted(t["task_id"] for t in tis) == ["extract", "load", "transform"]
    for ti in tis:
        log = api("GET", "/dags/etl/dagRuns/%s/taskInstances/%s/logs/%d?full_content=true"
                  % (q(run_id), ti["task_id"], ti["try_number"]))
        print(ti["task_id"], "log:", len(log["content"]), "bytes")
    extract_log = api("GET", "/dags/etl/dagRuns/%s/taskInstances/extract/logs/1" % q(run_id))["content"]
    assert "bonjour from extract" in extract_log, extract_log
    entries = api("GET", "/dags/etl/dagRuns/%s/taskInstances/extract/xcomEntries" % q(run_id))["xcom_entries"]
    assert [e["key"] for e in entries] == ["return_value"]
    value = api("GET", "/dags/etl/dagRuns/%s/taskInstances/extract/xcomEntries/return_value" % q(run_id))["value"]
    assert value == "bonjour from extract", value
    cleared = api("POST", "/dags/etl/clearTaskInstances",
                  {"dry_run": False, "only_failed": False, "task_ids": ["load"], "dag_run_id": run_id})
    assert [t["task_id"] for t in cleared["task_instances"]] == ["load"], cleared
    deadline = time.monotonic() + 60
    while True:  # the cleared task runs again: its second try
        load = api("GET", "/dags/etl/dagRuns/%s/taskInstances/load" % q(run_id))
        if load["state"] == "success" and load["try_number"] == 2:
            break
        assert time.monotonic() < deadline, "the cleared task did not run again: %s" % load
        time.sleep(0.5)
    api("POST", "/variables", {"key": "last_etl_run", "value": run_id})
    assert api("GET", "/variables/last_etl_run")["value"] == run_id
    print("airflow client script: done")


def main():
    d = Daemon(sys.argv[1])
    try:
        airflow_script(d.base, USER, PASSWORD)
        # Every change the script made is in the event log with its user.
        events = d.api("GET", "/eventLogs?owner=" + USER)["event_logs"]
        kinds = sorted({e["event"] for e in events})
        assert kinds == ["clear", "trigger", "variable.create"], kinds
    finally:
        d.stop()
    print("airflow client script against dagrun: ok")


if __name__ == "__main__":
    main()
