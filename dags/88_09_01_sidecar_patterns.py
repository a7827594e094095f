"""Sidecars: log shipping, secrets injection, git-sync and a local proxy beside a task, each proven used.

**Problem.** Teams bake log agents, credential fetchers, repository clones and connection proxies into
every task image, or run them as root daemons on the node. Kubernetes native sidecars (init containers
with ``restartPolicy: Always``, 1.29+) run them beside the task instead: started before it, stopped after
it, so the pod still completes when the task does.

**Practice.** One task pod, rendered from a ``ContainerSpec`` extended with containerkit's factories
(``containerkit.kubernetes.sidecars``); every helper runs with the task's restricted profile (uid 50000,
read-only root, no capabilities) and the ``xs`` preset, and the task proves it used each:

* *Log shipping sidecar* (``log_shipper``): Fluent Bit configured by a ConfigMap (``tail`` input on
  ``/var/log/task/*.log``, ``stdout`` output); the task writes its log file, ``collect_shipped_logs`` reads
  the shipper's output and asserts every task line was shipped.
* *Secrets injection* (``secrets_to_file``): an init container renders the API token from the
  ``sidecar-api`` Secret into a memory-backed file (0440) mounted read-only; the task sends it to the API
  and gets 200 (the API refuses a wrong token), and the token is in neither its env nor the pod spec.
* *Git-sync sidecar* (``git_sync``): keeps ``/git/repo`` synced to tag ``v1.4.0`` of the SQL repository (a
  ``git daemon`` in the server pod here); the task waits (bounded) for the checkout and lists its SQL files.
* *Proxy sidecar* (``local_proxy``): a TCP proxy on ``localhost:18000`` in front of the API (its startup
  probe holds the task until it listens); the task knows only ``localhost:18000``.

On a real cluster the upstream images run (Fluent Bit, registry.k8s.io/git-sync). The local Docker-backed
test double pulls nothing, so ``build_standins`` builds contract-compatible stand-ins from the Python base
(real ``git``; the Fluent Bit ``tail``/``stdout`` subset) and the pod uses them there. The proxy image is
the Python base in both cases (a 20-line forwarder; use your cloud's SQL/auth proxy instead).

**Copying.** Set ``CONTAINERKIT_PYTHON_IMAGE``, ``CONTAINERKIT_NAMESPACE`` (and, on a real cluster,
``CONTAINERKIT_GIT_SERVER_IMAGE``: any image with python and git for the demo server); point
``git_sync`` at your DAG or SQL repository (``credentials_secret=`` for HTTPS auth) and the log
shipper's ConfigMap at your log store.

**Needs.** A Kubernetes cluster (the local test double in CI) and, on the test double, a Docker engine whose
builds reach the Debian mirror (``git`` for the git-sync stand-in).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, task, teardown

from containerkit.kubernetes.manifests import to_dict
from containerkit.kubernetes.pod import full_pod_spec
from containerkit.kubernetes.sidecars import (
    FLUENT_BIT_IMAGE,
    GIT_SYNC_IMAGE,
    git_sync,
    local_proxy,
    log_shipper,
    secrets_to_file,
)
from containerkit.policy.enforce import check_pod
from containerkit.spec import ContainerSpec, SecretRef

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
REAL_CLUSTER = os.environ.get("CONTAINERKIT_REAL_CLUSTER") == "1"
DAG_ID = "88_09_01_sidecar_patterns"
STANDIN_IMAGE = "containerkit-reference/sidecar-standins:1"
LOG_SHIPPER_IMAGE = FLUENT_BIT_IMAGE if REAL_CLUSTER else STANDIN_IMAGE
GIT_SYNC = GIT_SYNC_IMAGE if REAL_CLUSTER else STANDIN_IMAGE
GIT_SERVER_IMAGE = os.environ.get("CONTAINERKIT_GIT_SERVER_IMAGE", STANDIN_IMAGE)
"""The demo git + API server needs python and git (on the test double: the stand-in image)."""
SERVER = "sidecar-api"
SECRET = "sidecar-api"
CONFIG_MAP = "sidecar-fluent-bit"
# Known at run time (pod_template_dict is templated); no spaces: the factories validate their arguments.
UPSTREAM = "{{ti.xcom_pull(task_ids='start_server')}}"

FLUENT_BIT_CONF = """\
[SERVICE]
    Flush        1
[INPUT]
    Name         tail
    Path         /var/log/task/*.log
    Tag          task
[OUTPUT]
    Name         stdout
    Match        *
"""

# Stand-ins for the local test double only: the same command lines and files as the upstream images.
FLUENT_BIT_STANDIN = r'''#!/usr/bin/env python3
"""Fluent Bit stand-in: the tail input and stdout output of a classic-mode config (-c FILE)."""
import glob, json, signal, sys, time
conf = {}
section = None
for line in open(sys.argv[sys.argv.index("-c") + 1]):
    line = line.strip()
    if line.startswith("["):
        section = line.strip("[]").upper()
    elif line and section:
        key, _, value = line.partition(" ")
        conf.setdefault(section, {})[key.lower()] = value.strip()
pattern, tag = conf["INPUT"]["path"], conf["INPUT"].get("tag", "tail.0")
offsets = {}
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("[fluent-bit stand-in] tail", pattern, "-> stdout", flush=True)
while True:
    for path in glob.glob(pattern):
        with open(path) as f:
            f.seek(offsets.get(path, 0))
            for record in f:
                print(f"[0] {tag}: " + json.dumps([time.time(), {"log": record.rstrip("\n")}]), flush=True)
            offsets[path] = f.tell()
    time.sleep(0.2)
'''
GIT_SYNC_STANDIN = r'''#!/usr/bin/env python3
"""git-sync v4 stand-in: --repo --ref --root --link --depth --period --one-time --http-bind, with real git."""
import argparse, http.server, os, subprocess, sys, threading, time
p = argparse.ArgumentParser()
for flag in ("repo", "ref", "root", "link", "depth", "period", "http-bind"):
    p.add_argument("--" + flag)
p.add_argument("--one-time", action="store_true")
a = p.parse_args()
if a.http_bind:
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
        def log_message(self, *args): pass
    port = int(a.http_bind.rsplit(":", 1)[1])
    threading.Thread(target=http.server.HTTPServer(("", port), H).serve_forever, daemon=True).start()
def sync():
    tmp = os.path.join(a.root, ".worktrees", str(time.time_ns()))
    clone = ["git", "clone", "-q", "--depth", a.depth or "1", "--branch", a.ref, a.repo, tmp]
    subprocess.run(clone, check=True)
    head = subprocess.run(["git", "-C", tmp, "rev-parse", "HEAD"], capture_output=True, text=True)
    sha = head.stdout.strip()
    link = os.path.join(a.root, a.link)
    os.symlink(tmp, link + ".new")
    os.replace(link + ".new", link)
    print(f"synced {a.repo}@{a.ref} ({sha[:12]}) to {link}", flush=True)
while True:
    try:
        sync()
    except subprocess.CalledProcessError as exc:
        print("sync failed:", exc, flush=True)
        if a.one_time:
            sys.exit(1)
    if a.one_time:
        break
    time.sleep(int((a.period or "10s").rstrip("s")))
'''
STANDIN_DOCKERFILE = """\
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
USER 0
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
COPY fluent-bit /fluent-bit/bin/fluent-bit
COPY git-sync /git-sync
RUN chmod 0755 /fluent-bit/bin/fluent-bit /git-sync
USER 50000:0
ENV HOME=/tmp
ENTRYPOINT ["/git-sync"]
"""

# The API and git server the sidecars talk to (a separate pod): serves the repo and a token-checked API.
SERVER_SCRIPT = """
import http.server, os, pathlib, subprocess
repo = pathlib.Path("/tmp/src")
repo.mkdir()
files = {"001_orders.sql": "create table orders (id int);", "002_items.sql": "create table items ();"}
for name, sql in files.items():
    (repo / "sql").mkdir(exist_ok=True)
    (repo / "sql" / name).write_text(sql)
git = ["git", "-C", str(repo), "-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]
subprocess.run(["git", "init", "-q", str(repo)], check=True)
subprocess.run([*git, "add", "."], check=True)
subprocess.run([*git, "commit", "-qm", "release"], check=True)
subprocess.run([*git, "tag", "v1.4.0"], check=True)
subprocess.run(["git", "clone", "-q", "--bare", str(repo), "/tmp/git/orders-sql.git"], check=True)
# git daemon speaks git's smart protocol: shallow clones (git-sync's --depth=1) work.
daemon = ["git", "daemon", "--reuseaddr", "--export-all", "--base-path=/tmp/git", "--port=9418", "/tmp/git"]
subprocess.Popen(daemon)
token = os.environ["API_TOKEN"]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/api/orders" and self.headers.get("Authorization") == "Bearer " + token
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(b'{"orders": 3}' if ok else b"unauthorized")
print("serving", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""
PROXY = """
import os, socket, threading
host, port = os.environ["UPSTREAM"], 8000
listener = socket.create_server(("127.0.0.1", 18000))
def pipe(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)  # pass the end of the stream on (close would not wake a reader)
        except OSError:
            pass
print("proxy 127.0.0.1:18000 ->", host, port, flush=True)
while True:
    client, _ = listener.accept()
    upstream = socket.create_connection((host, port), timeout=10)
    print("proxied a connection", flush=True)
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
"""
TASK = """
import json, os, pathlib, time, urllib.request
log = pathlib.Path("/var/log/task/orders.log")
with log.open("a") as f:
    for step in ("extract", "transform", "load"):
        f.write(f"orders-etl {step}\\n")
        f.flush()
deadline = time.monotonic() + 60
while not pathlib.Path("/git/repo/sql").is_dir():
    if time.monotonic() > deadline:
        raise SystemExit("git-sync did not check out /git/repo in 60s")
    time.sleep(0.5)
sql = sorted(p.name for p in pathlib.Path("/git/repo/sql").glob("*.sql"))
token_file = pathlib.Path("/run/ck/api-token")
token = token_file.read_text().strip()
headers = {"Authorization": "Bearer " + token}
request = urllib.request.Request("http://127.0.0.1:18000/api/orders", headers=headers)
answer = json.loads(urllib.request.urlopen(request, timeout=10).read())
report = {
    "sql_files": sql,
    "git_checkout_is_link": os.path.islink("/git/repo"),
    "api_answer": answer,
    "token_mode": oct(token_file.stat().st_mode & 0o777),
    "token_in_env": any(token == v for v in os.environ.values()),
    "log_lines_written": 3,
}
print(json.dumps(report))
time.sleep(1.5)  # let the shipper's next tail pass pick up the last line before base exits
pathlib.Path("/airflow/xcom/return.json").write_text(json.dumps(report))
"""

SPEC = ContainerSpec(
    PYTHON_IMAGE,
    command=["python", "-c", TASK],
    resources="xs",
    labels={"app": "orders-etl"},
    active_deadline_seconds=600,
).extend(
    secrets_to_file(
        "/run/ck/api-token",
        "${API_TOKEN}\n",
        [SecretRef(SECRET, "token", env="API_TOKEN")],
        image=PYTHON_IMAGE,
    ),
    log_shipper(CONFIG_MAP, image=LOG_SHIPPER_IMAGE),
    git_sync(f"git://{UPSTREAM}:9418/orders-sql.git", ref="v1.4.0", period_seconds=5, image=GIT_SYNC),
    local_proxy(
        "api-proxy", PYTHON_IMAGE, port=18000, command=["python", "-c", PROXY], env={"UPSTREAM": UPSTREAM}
    ),
)
POD_TEMPLATE = to_dict(full_pod_spec(SPEC))
# Parse time, as the operator does for a spec= task: error findings fail the DAG import under enforce.
check_pod(POD_TEMPLATE, where=f"{DAG_ID} orders pod template")


def _core_api() -> Any:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client import CoreV1Api

    return CoreV1Api(KubernetesHook(conn_id="kubernetes_default").api_client)


def _ignore_missing(call: Any, *args: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        call(*args)
    except ApiException as exc:
        if exc.status not in (404, 409):
            raise


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # the demo objects (pods, Secret, ConfigMap) have fixed names
    tags=["reference", "patterns", "advanced", "success", "needs:kubernetes"],
    doc_md=__doc__,
)
def sidecar_patterns() -> None:
    @task
    def build_standins() -> str:
        """On the local test double only: contract-compatible stand-ins for the upstream sidecar images."""
        if REAL_CLUSTER:
            print(f"real cluster: the kubelet pulls {FLUENT_BIT_IMAGE} and {GIT_SYNC_IMAGE}")
            return ""
        from containerkit.hooks.image import ImageHook

        with tempfile.TemporaryDirectory(prefix="ck-sidecars-") as ctx:
            Path(ctx, "Dockerfile").write_text(STANDIN_DOCKERFILE)
            Path(ctx, "fluent-bit").write_text(FLUENT_BIT_STANDIN)
            Path(ctx, "git-sync").write_text(GIT_SYNC_STANDIN)
            repository, tag = STANDIN_IMAGE.rsplit(":", 1)
            built = ImageHook().build(
                ctx,
                repository=repository,
                tags=[tag],
                build_args={"BASE_IMAGE": PYTHON_IMAGE},
                labels={"containerkit.reference": DAG_ID},
            )
        print(f"built {built.references[0]} (git + the Fluent Bit tail/stdout subset)")
        return built.references[0]

    @task
    def create_config() -> str:
        """The Secret the token comes from and the ConfigMap the log shipper reads."""
        from kubernetes.client import V1ConfigMap, V1ObjectMeta, V1Secret

        api = _core_api()
        token = base64.b64encode(secrets.token_urlsafe(18).encode()).decode()
        _ignore_missing(api.delete_namespaced_secret, SECRET, NAMESPACE)  # a leftover from a killed run
        _ignore_missing(api.delete_namespaced_config_map, CONFIG_MAP, NAMESPACE)
        api.create_namespaced_secret(
            NAMESPACE, V1Secret(metadata=V1ObjectMeta(name=SECRET), data={"token": token})
        )
        api.create_namespaced_config_map(
            NAMESPACE,
            V1ConfigMap(metadata=V1ObjectMeta(name=CONFIG_MAP), data={"fluent-bit.conf": FLUENT_BIT_CONF}),
        )
        return SECRET

    @task
    def start_server(image: str) -> str:
        """The git repository and the token-checked API, in their own pod; returns their address."""
        from containerkit.kubernetes.pod import render_pod
        from containerkit.spec import Probe, Probes

        api = _core_api()
        spec = ContainerSpec(
            image or GIT_SERVER_IMAGE,
            command=["python", "-c", SERVER_SCRIPT],
            env={"HOME": "/tmp"},
            secrets=[SecretRef(SECRET, "token", env="API_TOKEN")],
            ports=[8000, 9418],
            probes=Probes(readiness=Probe.tcp(8000), liveness=Probe.tcp(8000, initial_delay_seconds=10)),
            resources="xs",
            labels={"app": SERVER},
        )
        pod = render_pod(spec, name=SERVER, namespace=NAMESPACE)
        pod.spec.restart_policy = "Always"
        check_pod(pod, mode="enforce", where=f"{DAG_ID} server pod")
        api.create_namespaced_pod(NAMESPACE, pod)
        if REAL_CLUSTER:
            from kubernetes.client import V1ObjectMeta, V1Service, V1ServicePort, V1ServiceSpec

            api.create_namespaced_service(
                NAMESPACE,
                V1Service(
                    metadata=V1ObjectMeta(name=SERVER),
                    spec=V1ServiceSpec(
                        selector={"app": SERVER},
                        ports=[V1ServicePort(name="api", port=8000), V1ServicePort(name="git", port=9418)],
                    ),
                ),
            )
            return f"{SERVER}.{NAMESPACE}.svc.cluster.local"
        deadline = time.monotonic() + 60
        while True:
            status = api.read_namespaced_pod(SERVER, NAMESPACE).status
            ready = any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
            if status.pod_ip and ready:
                return str(status.pod_ip)
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {SERVER} not ready after 60s")
            time.sleep(0.5)

    orders = SecureKubernetesPodOperator(
        task_id="orders_with_sidecars",
        name="orders-sidecars",
        namespace=NAMESPACE,
        pod_template_dict=POD_TEMPLATE,
        get_logs=True,
        on_finish_action="keep_pod",  # collect_shipped_logs reads the shipper's output, then deletes it
        do_xcom_push=True,
    )

    @task
    def check_task_report(report: dict[str, Any]) -> dict[str, Any]:
        print(json.dumps(report, indent=1))
        expected = {
            "sql_files": ["001_orders.sql", "002_items.sql"],
            "git_checkout_is_link": True,
            "api_answer": {"orders": 3},
            "token_mode": "0o440",
            "token_in_env": False,
        }
        wrong = {k: (report.get(k), v) for k, v in expected.items() if report.get(k) != v}
        if wrong:
            raise AssertionError(f"a sidecar was not used as designed (got, expected): {wrong}")
        return report

    @task
    def collect_shipped_logs(pod_name: str) -> list[str]:
        """The shipper's output holds every line the task wrote; git-sync and the proxy logged their work."""
        api = _core_api()

        def logs(container: str) -> str:
            return str(
                api.read_namespaced_pod_log(
                    pod_name, NAMESPACE, container=container, _preload_content=False
                ).data.decode("utf-8", "replace")
            )

        shipped = [line for line in logs("log-shipper").splitlines() if "orders-etl" in line]
        print("log-shipper:", *shipped, sep="\n  ")
        synced = [line for line in logs("git-sync").splitlines() if "synced" in line or "Synced" in line]
        proxied = [line for line in logs("api-proxy").splitlines() if "proxied" in line]
        print(f"git-sync: {synced[:2]}\napi-proxy: {proxied}")
        steps = [
            step
            for step in ("extract", "transform", "load")
            if any(f"orders-etl {step}" in s for s in shipped)
        ]
        if steps != ["extract", "transform", "load"]:
            raise AssertionError(f"the shipper shipped only {steps}: {shipped}")
        if not proxied:
            raise AssertionError("the proxy sidecar forwarded no connection")
        return shipped

    @teardown
    def remove_objects(pod_name: str) -> None:
        api = _core_api()
        _ignore_missing(api.delete_namespaced_pod, pod_name, NAMESPACE)
        _ignore_missing(api.delete_namespaced_pod, SERVER, NAMESPACE)
        _ignore_missing(api.delete_namespaced_service, SERVER, NAMESPACE)
        _ignore_missing(api.delete_namespaced_secret, SECRET, NAMESPACE)
        _ignore_missing(api.delete_namespaced_config_map, CONFIG_MAP, NAMESPACE)
        if not REAL_CLUSTER:
            import docker
            from kubernetes.client.exceptions import ApiException

            deadline = time.monotonic() + 60  # pods stop gracefully: their containers hold the image
            for name in (pod_name, SERVER):
                while time.monotonic() < deadline:
                    try:
                        api.read_namespaced_pod(name, NAMESPACE)
                    except ApiException as exc:
                        if exc.status == 404:
                            break
                        raise
                    time.sleep(1)

            client = docker.from_env()
            # noprune: the apt layer stays as build cache for the next run; the tag goes.
            client.api.remove_image(STANDIN_IMAGE, noprune=True)
            client.close()

    image = build_standins()
    config = create_config()
    server = start_server(image)
    config >> server >> orders
    pod_name = orders.output["pod_name"]
    checked = check_task_report(orders.output)
    shipped = collect_shipped_logs(pod_name)
    [checked, shipped] >> remove_objects(pod_name).as_teardown(setups=[image, config, server])


sidecar_patterns()
