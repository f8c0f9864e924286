"""A real `dagrun schedule` for the API tests: DAG files in a scratch folder, a SQLite database,
an HTTP face on a free loopback port with a token and a basic-auth user, and a small client."""

import base64
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

TOKEN = "api-test-token"
USER, PASSWORD = "admin", "s3cret-pass"

DAGS = {
    "etl.yaml": """dag_id: etl
description: Extract, transform, load
tags: [etl, nightly]
params: {greeting: hello}
tasks:
  - task_id: extract
    operator: bash
    bash_command: echo "{{ params.greeting }} from extract"
  - task_id: transform
    operator: bash
    bash_command: echo transformed
    dependencies: [extract]
  - task_id: load
    operator: bash
    bash_command: echo loaded
    dependencies: [transform]
    outlets: ["s3://warehouse/etl.parquet"]
""",
    "flaky.yaml": """dag_id: flaky
tags: [flaky]
tasks:
  - task_id: boom
    operator: bash
    bash_command: echo about to fail; exit 3
  - task_id: after
    operator: bash
    bash_command: echo after
    dependencies: [boom]
""",
    "broken.yaml": "dag_id: broken\ntasks:\n  - task_id: a\n    operator: bsh\n",
}


def deadline_wait(what, check, seconds=60.0):
    """Waits until check() returns a true value (returned), failing after `seconds`."""
    end = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


class Daemon:
    def __init__(self, binary, env_extra=None):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="dagrun-api-"))
        (self.dir / "dags").mkdir()
        for name, text in DAGS.items():
            (self.dir / "dags" / name).write_text(text)
        env = dict(os.environ)
        env.update({"DAGRUN_API_TOKEN": TOKEN, "DAGRUN_API_USERS": USER + ":" + PASSWORD})
        env.update(env_extra or {})
        self.log_path = self.dir / "daemon.log"
        self.process = subprocess.Popen(
            [binary, "schedule", "--parallelism", "4", "--listen", "127.0.0.1:0",
             "--dags", str(self.dir / "dags"), "--db", "sqlite:" + str(self.dir / "dagrun.db"),
             "--logs", str(self.dir / "logs")],
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, env=env)

        def port():
            found = re.search(r"serving HTTP on 127\.0\.0\.1:(\d+)", self.log_path.read_text(errors="replace"))
            if self.process.poll() is not None:
                raise AssertionError("the daemon exited: " + self.log_path.read_text(errors="replace"))
            return int(found.group(1)) if found else None

        self.port = deadline_wait("the daemon to listen", port)
        self.base = "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            shutil.rmtree(self.dir, ignore_errors=True)

    def call(self, method, path, body=None, auth="basic", headers=None):
        """(status, content type, parsed JSON body or text) of one request below the server."""
        request = urllib.request.Request(self.base + path, method=method)
        if auth == "basic":
            request.add_header("Authorization", "Basic " + base64.b64encode((USER + ":" + PASSWORD).encode()).decode())
        elif auth == "bearer":
            request.add_header("Authorization", "Bearer " + TOKEN)
        for k, v in (headers or {}).items():
            request.add_header(k, v)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, data, timeout=30) as answer:
                status, kind, raw = answer.status, answer.headers.get("Content-Type", ""), answer.read()
        except urllib.error.HTTPError as e:
            status, kind, raw = e.code, e.headers.get("Content-Type", ""), e.read()
        text = raw.decode("utf-8", "replace")
        parsed = json.loads(text) if "json" in kind and text else text
        return status, kind, parsed

    def api(self, method, path, body=None, expect=200, **kw):
        status, kind, parsed = self.call(method, "/api/v1" + path, body, **kw)
        assert status == expect, "%s %s: expected %d, got %d: %s" % (method, path, expect, status, parsed)
        return parsed

    def wait_run(self, dag_id, run_id, states=("success", "failed")):
        quoted = urllib.parse.quote(run_id, safe="")
        return deadline_wait(
            "run %s of %s to end" % (run_id, dag_id),
            lambda: (lambda r: r if r["state"] in states else None)(self.api("GET", "/dags/%s/dagRuns/%s" % (dag_id, quoted))))


def quote(text):
    return urllib.parse.quote(text, safe="")
