"""Anti-pattern: config and secrets baked into images and DAGs; flagged, then read from env/ConfigMap/Secret.

**Problem.** A password in a Dockerfile ``ENV`` is readable by everyone who can pull the image (it is in
the image config and history, forever); one in a DAG's ``environment`` is in the metadata DB, the UI and
``docker inspect``. Settings baked into the image mean a rebuild, a new tag and a redeploy for a log
level change, and one image per environment.

**Practice.** One image for every environment. Non-secret settings come from env vars and ConfigMaps,
secrets from Secrets delivered as files (``SecretRef(path=...)``); containerkit refuses literal
secret-like env values at parse (``DKR-012`` / ``HRD-009``) and in Dockerfiles (``DF-004``).

**Where each sub-point is covered.**

- config in image: ``hardcoded_flagged`` lints a Dockerfile with ``ENV DB_PASSWORD=...`` (``DF-004``),
  builds it and asserts the password can be read back from the image config by anyone with the image;
  a task with a literal ``DB_PASSWORD`` is refused (``DKR-012``), so is a spec holding one, and a pod
  that gets one through an override is flagged (``HRD-009``).
- rebuild for changes: ``hardcoded_flagged`` builds the image again with one setting changed and asserts
  a new image id (a rebuild, a new tag, a redeploy).
- environment variables / ConfigMaps / Secrets: ``write_config`` writes the ConfigMap and Secret keys
  where the Docker engine's host keeps them (``<config_dir>/<configmap>/<key>``,
  ``<secrets_dir>/<secret>/<key>``); ``run_v1`` takes ``APP_ENV`` from env, ``LOG_LEVEL`` (env) and
  ``settings.json`` (file) from the ConfigMap and the password from the Secret as a read-only file.
- no rebuild: ``change_config`` edits the ConfigMap only; ``run_v2`` (same image) sees the new values;
  ``check_no_rebuild`` asserts it, and that the password never reached the output.
- ``render_kubernetes`` renders the fixed task's pod (``configMapKeyRef`` env, ConfigMap and Secret
  volumes) and asserts it is clean under the ``hardened`` rules.
- ``remove_config`` deletes the files whatever happened.

**When copying.** On Kubernetes use ``SecureKubernetesPodOperator`` with the same ``config_map_refs`` /
``secret_refs`` (the cluster stores them); on Docker point ``CONTAINERKIT_CONFIG_ROOT`` at the host
directory your deploy tooling fills, and take the password from a secrets backend, never the DAG file.
Outcome tag ``failure``: the refusals are the demonstrated failures.

**Needs.** A Docker engine (``needs:docker``). ``CONTAINERKIT_PYTHON_IMAGE`` (default
``python:3.11-slim-bookworm``) runs the app.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import dag, task

from containerkit.spec import ConfigMapRef, SecretRef

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
CONFIG_ROOT = Path(os.environ.get("CONTAINERKIT_CONFIG_ROOT", "/tmp/containerkit-88-06-05"))
CONFIG_DIR = str(CONFIG_ROOT / "configmaps")
SECRETS_DIR = str(CONFIG_ROOT / "secrets")
LABELS = {"containerkit.example": "88_06_05"}
CONFIG_REFS = [
    ConfigMapRef(config_map="app-config", key="log_level", env="LOG_LEVEL"),
    ConfigMapRef(config_map="app-config", key="settings.json", path="/etc/app/settings.json"),
]
SECRET_REFS = [SecretRef(secret="app-db", key="password", path="/run/secrets/db-password")]
APP = """
import hashlib, json, os, pathlib
settings = json.loads(pathlib.Path('/etc/app/settings.json').read_text())
password = pathlib.Path('/run/secrets/db-password').read_text().strip()
print(json.dumps({
    'app_env': os.environ['APP_ENV'],
    'log_level': os.environ['LOG_LEVEL'],
    'batch_size': settings['batch_size'],
    'password_sha256': hashlib.sha256(password.encode()).hexdigest()[:12],
    'password_in_env': any(password in v for v in os.environ.values()),
}))
"""
BAKED = """\
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ENV DB_PASSWORD=baked-demo-password LOG_LEVEL=INFO
ARG BATCH_SIZE
USER 0:0
RUN mkdir -p /app && echo "{\\"batch_size\\": ${BATCH_SIZE}}" > /app/settings.json
USER 50000:0
CMD ["cat", "/app/settings.json"]
"""


def _write(root: Path, relative: str, text: str, mode: int) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    if os.getuid() == 0:  # the worker runs as root here; in the Airflow image it is uid 50000 already
        os.chown(path, 50000, 0)


def _config(run: Any) -> dict[str, Any]:
    """The app's one JSON line (the operator's XCom)."""
    return dict(json.loads(run) if isinstance(run, str) else run)


def _run(task_id: str) -> SecureDockerOperator:
    return SecureDockerOperator(
        task_id=task_id,
        image=PYTHON_IMAGE,
        command=["python", "-c", APP],
        environment={"APP_ENV": "staging"},
        config_map_refs=CONFIG_REFS,
        secret_refs=SECRET_REFS,
        config_dir=CONFIG_DIR,
        secrets_dir=SECRETS_DIR,
        resources="xs",
        labels=LABELS,
    )


@dag(
    dag_id="88_06_05_hardcoded_config",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "anti-pattern", "beginner", "failure", "needs:docker"],
    doc_md=__doc__,
)
def hardcoded_config() -> None:
    @task
    def hardcoded_flagged() -> dict[str, Any]:
        from containerkit.errors import SpecError
        from containerkit.hooks.image import ImageHook
        from containerkit.kubernetes.manifests import to_dict
        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.enforce import PolicyViolation
        from containerkit.policy.engine import evaluate_pod
        from containerkit.policy.lint import lint_paths
        from containerkit.spec import ContainerSpec

        with tempfile.TemporaryDirectory(prefix="ck-lint-") as folder:
            (Path(folder) / "Dockerfile").write_text(BAKED)
            dockerfile = sorted({f.rule_id for f in lint_paths([folder]).findings if f.rule_id == "DF-004"})
            if dockerfile != ["DF-004"]:
                raise AssertionError("ENV DB_PASSWORD=... in a Dockerfile was not flagged DF-004")
            hook = ImageHook()
            ids = []
            for batch_size in (100, 500):  # one settings change = one rebuild
                built = hook.build(
                    folder,
                    repository="containerkit-examples/baked-config",
                    tags=[f"1.0.0-batch{batch_size}"],
                    build_args={"BASE_IMAGE": PYTHON_IMAGE, "BATCH_SIZE": str(batch_size)},
                    labels=LABELS,
                )
                ids.append(built.id)
                env = hook.api.inspect_image(built.id)["Config"]["Env"]
                hook.remove(built.references[0], force=True)
                if "DB_PASSWORD=baked-demo-password" not in env:
                    raise AssertionError("the baked password is not in the image config")
        if ids[0] == ids[1]:
            raise AssertionError("changing a baked setting did not need a new image")

        try:
            SecureDockerOperator(
                task_id="literal_secret",
                image=PYTHON_IMAGE,
                command=["true"],
                environment={"DB_PASSWORD": "literal-in-dag"},
                resources="xs",
            )
        except PolicyViolation as exc:
            task_rules = sorted({f.rule_id for f in exc.findings})
        else:
            raise AssertionError("a literal DB_PASSWORD in environment= was accepted")
        if task_rules != ["DKR-012"]:
            raise AssertionError(f"literal secret refused for {task_rules}, expected exactly ['DKR-012']")
        try:  # the spec refuses the literal before any pod exists
            ContainerSpec(image=PYTHON_IMAGE, env={"DB_PASSWORD": "literal-in-dag"})
        except SpecError as exc:
            if "DB_PASSWORD" not in str(exc) or "literal-in-dag" in str(exc):
                raise AssertionError(f"spec refusal does not name the variable, or echoes it: {exc}") from exc
        else:
            raise AssertionError("ContainerSpec accepted a literal DB_PASSWORD")
        # ...and policy flags a pod that gets one some other way (a pod_override, a template).
        pod = to_dict(render_pod(ContainerSpec(image=PYTHON_IMAGE), name="literal"))
        pod["spec"]["containers"][0]["env"] = [{"name": "DB_PASSWORD", "value": "literal-in-dag"}]
        pod_rules = {f.rule_id for f in evaluate_pod(pod, rule_sets=["hardened"])}
        if "HRD-009" not in pod_rules:
            raise AssertionError(f"literal secret in a pod env not flagged HRD-009: {sorted(pod_rules)}")
        return {"dockerfile": dockerfile, "task": task_rules, "pod": "HRD-009", "rebuilt_ids": ids}

    @task
    def write_config() -> dict[str, str]:
        import secrets

        from airflow.sdk import Variable
        from airflow.sdk.log import mask_secret

        password = Variable.get("containerkit_example_db_password", default=None) or secrets.token_urlsafe(18)
        mask_secret(password)
        _write(Path(CONFIG_DIR), "app-config/log_level", "INFO\n", 0o440)
        _write(Path(CONFIG_DIR), "app-config/settings.json", json.dumps({"batch_size": 100}), 0o440)
        _write(Path(SECRETS_DIR), "app-db/password", password + "\n", 0o400)
        return {"password_sha256": hashlib.sha256(password.encode()).hexdigest()[:12]}

    @task
    def change_config() -> None:
        """A ConfigMap edit: the next run reads it. No build, no new tag, no deploy."""
        _write(Path(CONFIG_DIR), "app-config/log_level", "DEBUG\n", 0o440)
        _write(Path(CONFIG_DIR), "app-config/settings.json", json.dumps({"batch_size": 500}), 0o440)

    run_v1 = _run("run_v1")
    run_v2 = _run("run_v2")

    @task
    def check_no_rebuild(expected: dict[str, str], first: Any, second: Any) -> dict[str, Any]:
        one, two = _config(first), _config(second)
        want1 = {"app_env": "staging", "log_level": "INFO", "batch_size": 100}
        want2 = {"app_env": "staging", "log_level": "DEBUG", "batch_size": 500}
        for got, want in ((one, want1), (two, want2)):
            seen = {k: got[k] for k in want}
            if seen != want:
                raise AssertionError(f"the task read {seen}, expected {want}")
            if got["password_sha256"] != expected["password_sha256"] or got["password_in_env"]:
                raise AssertionError("the Secret file did not arrive intact, or its value is in the env")
        return {"before": one, "after": two, "image": PYTHON_IMAGE}

    @task
    def render_kubernetes() -> list[str]:
        from containerkit.kubernetes.manifests import to_dict
        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.engine import evaluate_pod
        from containerkit.spec import ContainerSpec

        spec = ContainerSpec(
            image=PYTHON_IMAGE,
            command=["python", "-c", APP],
            env={"APP_ENV": "staging"},
            config_maps=CONFIG_REFS,
            secrets=SECRET_REFS,
            resources="xs",
        )
        pod = to_dict(render_pod(spec, name="app"))
        errors = sorted(
            f.rule_id for f in evaluate_pod(pod, rule_sets=["hardened"]) if f.severity.value == "error"
        )
        if errors:
            raise AssertionError(f"the fixed pod has error findings {errors}")
        text = json.dumps(pod)
        if "configMapKeyRef" not in text or '"secretName": "app-db"' not in text:
            raise AssertionError(
                "the pod does not take LOG_LEVEL from the ConfigMap and the password from the Secret"
            )
        return ["configMapKeyRef:app-config/log_level", "configMap:app-config", "secret:app-db"]

    @task(trigger_rule="all_done")
    def remove_config() -> None:
        shutil.rmtree(CONFIG_ROOT, ignore_errors=True)

    @task(trigger_rule="one_failed")
    def fail_run_if_a_task_failed() -> None:
        """The cleanup leaf succeeds whatever happened; this leaf makes any other failure fail the run."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a task of this DAG failed: read its log")

    written = write_config()
    changed = change_config()
    written >> run_v1 >> changed >> run_v2
    checked = check_no_rebuild(written, run_v1.output, run_v2.output)
    checked >> remove_config()
    [written, run_v1, changed, run_v2, checked] >> fail_run_if_a_task_failed()
    hardcoded_flagged()
    render_kubernetes()


hardcoded_config()
