"""Size every container: presets with overrides on Docker and Kubernetes, OOM at the limit, per component.

**Problem.** A container without limits can take the host's memory and CPU; one with a memory limit
but swap allowed crawls instead of failing; a limit far above the request gets a pod OOM-killed for a
neighbour's burst; and when the kernel kills a task, the stock operators report ``exit 137`` at best.
Airflow components sized by guesswork are either starved or waste the cluster.

**Practice.** Every task takes a named preset (``xs`` .. ``xl``: memory request == limit, so the OOM
line is the reserved amount; CPU may burst), overridden per task where measured; the same spec
renders Docker limits (hard memory, no swap, ``nano_cpus``, pids) and Kubernetes requests/limits (QoS
class and so OOM score follow); an OOM kill is diagnosed with the limit it hit; every Airflow component
has limits and reservations in compose and requests/limits in the Helm values.

**Where each sub-point is covered.**

- CPU and memory limits/requests: ``presets`` renders each preset and two overrides for Docker and
  Kubernetes, asserts both renderers agree (bytes, CPUs) and shows the Kubernetes QoS class;
  ``sized_task`` runs a ``SecureDockerOperator`` with ``{"preset": "xs", "memory": "96Mi"}`` and
  ``check_sized`` asserts the cgroup limits the container sees (memory, swap, CPU quota, pids);
- OOM killer configuration: ``presets`` asserts swap == memory (the OOM killer acts at the limit, no
  swapping) and no ``oom_kill_disable``; ``oom_caught`` runs a task that allocates past its 32Mi limit,
  catches ``ContainerTaskFailed`` and asserts the ``OOMKilled`` diagnosis names the 32Mi limit and a fix;
- per-component sizing: ``component_sizing`` prints limits and reservations of every compose service
  (dev and the production override merged) and the requests/limits of every component in the Helm
  values (for KubernetesExecutor workers: the pod template's ``base`` container), and fails if a
  long-running component has no memory limit.

**When copying.** Pick presets from measured peaks (``containerkit recommend``); override only what
differs (``resources={"preset": "m", "memory": "3Gi"}``).

**Needs.** A Docker engine (``needs:docker``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import dag, task

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
PROJECT_DIR = Path(os.environ.get("CONTAINERKIT_PROJECT_DIR") or Path(__file__).resolve().parents[1])
SIZED = {"preset": "xs", "memory": "96Mi"}
OOM_LIMIT = "32Mi"
HELM_COMPONENTS = ("scheduler", "apiServer", "triggerer", "dagProcessor", "workers", "statsd", "pgbouncer")

CGROUP_REPORT = r"""
import json, os
def read(*paths):
    for path in paths:
        try:
            return open(path).read().strip()
        except OSError:
            pass
    return None
quota = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
period = read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
if quota is None:
    cpu_max = (read("/sys/fs/cgroup/cpu.max") or "max 100000").split()
    quota, period = cpu_max
print(json.dumps({
    "memory": read("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"),
    "memory_and_swap": read("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
    "swap_v2": read("/sys/fs/cgroup/memory.swap.max"),
    "cpu_quota": quota, "cpu_period": period,
    "pids": read("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"),
    "oom_score_adj": read("/proc/self/oom_score_adj"),
}))
"""
# Allocates 1 MiB at a time and touches it, until the kernel stops it.
HOG = "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))\n"


def _qos(resources: Any) -> str:
    same = all(resources.requests[k] == resources.limits[k] for k in ("cpu", "memory"))
    return "Guaranteed" if same else "Burstable"


@dag(
    dag_id="88_02_05_resource_limits",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:docker"],
    doc_md=__doc__,
)
def resource_limits() -> None:
    @task
    def presets() -> list[dict[str, Any]]:
        """Each preset and two overrides, rendered for Docker and Kubernetes; the renderers must agree."""
        from containerkit.docker.run_settings import render_docker
        from containerkit.kubernetes.manifests import to_dict
        from containerkit.kubernetes.pod import render_pod
        from containerkit.spec import RESOURCE_PRESETS, ContainerSpec, Resources
        from containerkit.spec.quantity import parse_quantity

        cases: dict[str, Any] = dict(RESOURCE_PRESETS)
        cases["m+memory=3Gi"] = Resources.coerce({"preset": "m", "memory": "3Gi"})
        cases["s guaranteed"] = Resources.preset("s", cpu="500m")
        rows = []
        for name, resources in cases.items():
            spec = ContainerSpec(image=PYTHON_IMAGE, resources=resources)
            docker = render_docker(spec)
            k8s = to_dict(render_pod(spec, name="sizing"))["spec"]["containers"][0]["resources"]
            memory = int(parse_quantity("limits.memory", k8s["limits"]["memory"], kind="bytes"))
            cpus = parse_quantity("limits.cpu", k8s["limits"]["cpu"], kind="cpu")
            if docker.mem_limit != memory or docker.nano_cpus != int(cpus * 1_000_000_000):
                raise AssertionError(
                    f"{name}: Docker {docker.mem_limit}/{docker.nano_cpus} != Kubernetes {k8s}"
                )
            if docker.memswap_limit != docker.mem_limit:
                raise AssertionError(f"{name}: swap allowed ({docker.memswap_limit} > {docker.mem_limit})")
            if "oom_kill_disable" in docker.host_config_kwargs():
                raise AssertionError(f"{name}: the OOM killer is disabled")
            row = {
                "name": name,
                "requests": k8s["requests"],
                "limits": k8s["limits"],
                "qos": _qos(resources),
                "docker": {
                    "mem_limit": docker.mem_limit,
                    "nano_cpus": docker.nano_cpus,
                    "pids": docker.pids_limit,
                },
            }
            rows.append(row)
            print(
                f"{name:<14} req {k8s['requests']['cpu']:>5}/{k8s['requests']['memory']:>6}  "
                f"lim {k8s['limits']['cpu']:>5}/{k8s['limits']['memory']:>6}  {row['qos']:<10} "
                f"docker mem={docker.mem_limit} cpus={docker.nano_cpus / 1e9:g} pids={docker.pids_limit}"
            )
        if {r["name"]: r["qos"] for r in rows}["s guaranteed"] != "Guaranteed":
            raise AssertionError("requests == limits must render a Guaranteed pod")
        return rows

    sized_task = SecureDockerOperator(
        task_id="sized_task",
        image=PYTHON_IMAGE,
        command=["python", "-c", CGROUP_REPORT],
        resources=SIZED,
    )

    @task
    def check_sized(report: str) -> dict[str, Any]:
        from containerkit.spec import Resources

        seen = json.loads(report)
        expected = Resources.coerce(SIZED)
        problems = []
        if int(seen["memory"]) != expected.memory_limit_bytes:
            problems.append(f"memory {seen['memory']} != {expected.memory_limit_bytes}")
        if (
            seen["memory_and_swap"] is not None
            and int(seen["memory_and_swap"]) != expected.memory_limit_bytes
        ):
            problems.append(f"memory+swap {seen['memory_and_swap']}: swap allowed")
        if seen["swap_v2"] not in (None, "0"):
            problems.append(f"memory.swap.max {seen['swap_v2']}: swap allowed")
        cpus = int(seen["cpu_quota"]) / int(seen["cpu_period"])
        if abs(cpus * 1e9 - expected.cpu_limit_nano) > 1e6:
            problems.append(f"CPU quota {cpus} != {expected.cpu_limit}")
        if seen["pids"] != str(expected.pids):
            problems.append(f"pids {seen['pids']} != {expected.pids}")
        if problems:
            raise AssertionError("; ".join(problems))
        return seen

    @task
    def oom_caught(**context: Any) -> dict[str, Any]:
        """Exceed the limit on purpose: the failure must be OOMKilled, naming 32Mi, with a fix."""
        from containerkit.diagnostics.model import ContainerTaskFailed

        hog = SecureDockerOperator(
            task_id="memory_hog",
            image=PYTHON_IMAGE,
            command=["python", "-c", HOG],
            resources={"preset": "xs", "memory": OOM_LIMIT},
        )
        try:
            hog.execute(context)
        except ContainerTaskFailed as failed:
            diagnosis = failed.diagnosis
        else:
            raise AssertionError(f"the task survived allocating past its {OOM_LIMIT} limit")
        if diagnosis.cause != "OOMKilled" or diagnosis.details.get("memory_limit") != OOM_LIMIT:
            raise AssertionError(f"expected OOMKilled at {OOM_LIMIT}, got {diagnosis.render()}")
        if OOM_LIMIT not in diagnosis.fix:
            raise AssertionError(f"the fix does not name the limit: {diagnosis.fix}")
        print(diagnosis.render())
        return {"cause": diagnosis.cause, "limit": diagnosis.details["memory_limit"], "fix": diagnosis.fix}

    @task
    def component_sizing() -> dict[str, Any]:
        """Limits/reservations per compose service (dev, prod) and per Helm component, from the files."""
        import yaml

        from containerkit.policy.rules.compose import interpolate
        from containerkit.policy.sources.compose import load

        def resolved(value: Any) -> Any:
            return interpolate(value) if isinstance(value, str) else value

        table: dict[str, Any] = {}
        problems = []
        for file in ("docker-compose.yaml", "docker-compose.prod.yaml"):
            for target in load(PROJECT_DIR / file):
                service = target.data
                res = (service.config.get("deploy") or {}).get("resources") or {}
                limits = {k: resolved(v) for k, v in (res.get("limits") or {}).items()}
                reservations = {k: resolved(v) for k, v in (res.get("reservations") or {}).items()}
                table[f"{file}:{service.name}"] = {"limits": limits, "reservations": reservations}
                if not service.one_shot and not limits.get("memory"):
                    problems.append(f"{file}: {service.name} has no memory limit")
                if "prod" in file and not service.one_shot and not reservations.get("memory"):
                    problems.append(f"{file}: {service.name} has no memory reservation")
        values = yaml.safe_load((PROJECT_DIR / "helm-values/values.yaml").read_text())
        for component in HELM_COMPONENTS:
            section = values.get(component) or {}
            if component in ("statsd", "pgbouncer") and not section.get("enabled", True):
                continue
            resources = section.get("resources") or {}
            if component == "workers" and not resources and values.get("podTemplate"):
                # KubernetesExecutor: each task's worker pod is sized by the pod template's base container.
                template = yaml.safe_load(values["podTemplate"])
                base = next(c for c in template["spec"]["containers"] if c["name"] == "base")
                resources = base.get("resources") or {}
            table[f"helm:{component}"] = resources
            if not (resources.get("limits") or {}).get("memory"):
                problems.append(f"helm: {component} has no memory limit")
        for name, sizing in table.items():
            print(f"{name:<46} {json.dumps(sizing)}")
        if problems:
            raise AssertionError("; ".join(problems))
        return table

    presets()
    check_sized(sized_task.output)
    oom_caught()
    component_sizing()


resource_limits()
