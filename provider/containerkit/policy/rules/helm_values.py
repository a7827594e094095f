"""Rule set ``helm-values`` (ids ``HLM-0xx``): values for the official apache-airflow chart.

Rules read a :class:`~containerkit.policy.sources.helm_values.HelmValues` (an overlay already merged
onto its base). They know how the chart falls back, so a setting counts where the chart applies it:

* Airflow components (scheduler, apiServer, triggerer, dagProcessor, workers, jobs, flower, cleanup)
  take ``<component>.securityContexts.pod|container`` and fall back to the top-level
  ``securityContexts.pod|containers``; statsd, pgbouncer, redis and git-sync fall back only to a bare
  ``runAsUser``, so they need their own.
* With KubernetesExecutor and a ``podTemplate``, worker pods come from the template (checked with the
  project's pod rules, ``pss-restricted`` and ``hardened``), not from ``workers.*``.
* Components the values switch off (``<component>.enabled: false``; redis/flower without Celery) are
  not checked. Defaults for ``enabled`` are the chart's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from containerkit.facts.secrets import secret_literal, value_secret
from containerkit.policy.model import HARDENED, PSS_RESTRICTED, Severity, Violation
from containerkit.policy.model import HELM_VALUES as RULE_SET
from containerkit.policy.sources.helm_values import KIND, HelmValues
from containerkit.policy.sources.located import scoped

POD_RULE_SETS = (PSS_RESTRICTED, HARDENED)
_rule = functools.partial(scoped, rule_set=RULE_SET, target=KIND)

EXECUTORS = frozenset(
    {
        "LocalExecutor",
        "CeleryExecutor",
        "KubernetesExecutor",
        "CeleryKubernetesExecutor",
        "LocalKubernetesExecutor",
    }
)


@dataclass(frozen=True)
class Component:
    key: str
    enabled_by_default: bool
    airflow: bool
    """Falls back to the top-level ``securityContexts`` (Airflow components do; third-party ones don't)."""
    sidecars: tuple[tuple[str, bool], ...] = ()
    """(key, enabled by default) of extra containers with their own ``securityContexts.container``."""


_AIRFLOW_SIDECARS = (("waitForMigrations", True), ("logGroomerSidecar", True))
COMPONENTS = (
    Component("scheduler", True, True, _AIRFLOW_SIDECARS),
    Component("apiServer", True, True, (("waitForMigrations", True),)),
    Component("triggerer", True, True, _AIRFLOW_SIDECARS),
    Component("dagProcessor", True, True, _AIRFLOW_SIDECARS),
    Component(
        "workers",
        True,
        True,
        (*_AIRFLOW_SIDECARS, ("kerberosSidecar", False), ("kerberosInitContainer", False)),
    ),
    Component("migrateDatabaseJob", True, True),
    Component("createUserJob", True, True),
    Component("flower", False, True),
    Component("cleanup", False, True),
    Component("databaseCleanup", False, True),
    Component("statsd", True, False),
    Component("pgbouncer", False, False, (("metricsExporterSidecar", True),)),
    Component("redis", True, False),
)


def _get(values: Mapping[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def executors(values: Mapping[str, Any]) -> list[str]:
    """The configured executors (Airflow 3 accepts a comma-separated list); chart default CeleryExecutor."""
    raw = values.get("executor") or "CeleryExecutor"
    return [e.strip() for e in str(raw).split(",") if e.strip()]


def uses_celery(values: Mapping[str, Any]) -> bool:
    return any("Celery" in e for e in executors(values))


def uses_kubernetes(values: Mapping[str, Any]) -> bool:
    return any("Kubernetes" in e for e in executors(values))


def _airflow_major(values: Mapping[str, Any]) -> int:
    version = str(values.get("airflowVersion") or "3")
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 3


def enabled_components(values: Mapping[str, Any]) -> Iterator[Component]:
    for c in COMPONENTS:
        section = _mapping(values.get(c.key))
        enabled = section.get("enabled")
        if enabled is None:
            enabled = c.enabled_by_default
        if not enabled:
            continue
        if c.key in ("redis", "flower") and not uses_celery(values):
            continue
        if c.key == "workers" and not uses_celery(values) and values.get("podTemplate"):
            continue  # KubernetesExecutor workers come from the podTemplate
        if c.key == "workers" and not uses_celery(values) and not uses_kubernetes(values):
            continue
        yield c
    if _airflow_major(values) < 3 and _mapping(values.get("webserver")).get("enabled", True):
        yield Component("webserver", True, True, (("waitForMigrations", True),))


def _pod_context(values: Mapping[str, Any], c: Component) -> tuple[str, Mapping[str, Any]]:
    section = _mapping(values.get(c.key))
    own = _mapping(_mapping(section.get("securityContexts")).get("pod"))
    if own:
        return f"{c.key}.securityContexts.pod", own
    if section.get("securityContext"):
        return f"{c.key}.securityContext", _mapping(section.get("securityContext"))
    if c.airflow:
        top = _mapping(_mapping(values.get("securityContexts")).get("pod"))
        if top:
            return "securityContexts.pod", top
        if values.get("securityContext"):
            return "securityContext", _mapping(values.get("securityContext"))
    return f"{c.key}.securityContexts.pod", {}


def _container_context(
    values: Mapping[str, Any], section_path: str, airflow: bool
) -> tuple[str, Mapping[str, Any]]:
    own = _mapping(_mapping(_get(values, f"{section_path}.securityContexts")).get("container"))
    if own:
        return f"{section_path}.securityContexts.container", own
    if airflow:
        top = _mapping(_mapping(values.get("securityContexts")).get("containers"))
        if top:
            return "securityContexts.containers", top
    return f"{section_path}.securityContexts.container", {}


def _seccomp_ok(ctx: Mapping[str, Any]) -> bool:
    return _mapping(ctx.get("seccompProfile")).get("type") in ("RuntimeDefault", "Localhost")


def _container_problems(ctx: Mapping[str, Any]) -> list[str]:
    problems = []
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    drops = [str(d).upper() for d in (_mapping(ctx.get("capabilities")).get("drop") or [])]
    if "ALL" not in drops:
        problems.append("capabilities.drop lacks ALL")
    if ctx.get("privileged") is True:
        problems.append("privileged")
    return problems


@_rule(
    "HLM-001",
    title="executor-set",
    severity=Severity.ERROR,
    rationale=(
        "The chart's default executor is CeleryExecutor; values meant for KubernetesExecutor that forget "
        "to say so deploy Redis and Celery workers instead. Say which executor the values are for."
    ),
    fix='Set executor: "KubernetesExecutor" (or a comma-separated list of supported executors).',
    peers={},
)
def executor_set(doc: HelmValues) -> Iterable[Violation]:
    raw = doc.values.get("executor")
    if not raw:
        yield Violation("executor", "executor not set: the chart falls back to CeleryExecutor")
        return
    for name in executors(doc.values):
        if name not in EXECUTORS and "." not in name:
            yield Violation("executor", f"unknown executor {name!r}")


@_rule(
    "HLM-002",
    title="component-security-contexts",
    severity=Severity.ERROR,
    rationale=(
        "Every pod the chart runs should meet Pod Security restricted: runAsNonRoot, seccomp RuntimeDefault, "
        "no privilege escalation, all capabilities dropped. The chart's default only sets runAsUser, which "
        "restricted namespaces reject. Third-party components (statsd, pgbouncer, redis, git-sync) do not "
        "inherit the top-level securityContexts and need their own."
    ),
    fix=(
        "Set securityContexts.pod {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}} and "
        "securityContexts.containers {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}, and "
        "the same under statsd/pgbouncer/redis/dags.gitSync .securityContexts."
    ),
    peers={"checkov": "CKV_K8S_20,CKV_K8S_23,CKV_K8S_28,CKV_K8S_31,CKV_K8S_37 (rendered pods)"},
)
def component_security_contexts(doc: HelmValues) -> Iterable[Violation]:
    values = doc.values
    for c in enabled_components(values):
        pod_path, pod = _pod_context(values, c)
        ctr_path, ctr = _container_context(values, c.key, c.airflow)
        if pod.get("runAsNonRoot") is not True and ctr.get("runAsNonRoot") is not True:
            yield Violation(pod_path, f"{c.key}: runAsNonRoot is not true (pod or container)")
        if pod.get("runAsUser") == 0 or ctr.get("runAsUser") == 0:
            yield Violation(pod_path, f"{c.key}: runAsUser is 0")
        if not (_seccomp_ok(pod) or _seccomp_ok(ctr)):
            yield Violation(pod_path, f"{c.key}: no seccompProfile RuntimeDefault/Localhost")
        for problem in _container_problems(ctr):
            yield Violation(ctr_path, f"{c.key} container: {problem}")
        section = _mapping(values.get(c.key))
        for key, default in c.sidecars:
            sidecar = _mapping(section.get(key))
            if not sidecar.get("enabled", default):
                continue
            side_path, side = _container_context(values, f"{c.key}.{key}", c.airflow)
            for problem in _container_problems(side):
                yield Violation(side_path, f"{c.key}.{key}: {problem}")
    git_sync = _mapping(_get(values, "dags.gitSync"))
    if git_sync.get("enabled"):
        path, ctx = _container_context(values, "dags.gitSync", airflow=False)
        for problem in _container_problems(ctx):
            yield Violation(path, f"git-sync: {problem}")


_IMAGE_HELPER = re.compile(
    r"\{\{-?\s*(?:include|template)\s+\"(airflow_image|pod_template_image)\"\s+\.\s*-?\}\}"
)
_VALUES_REF = re.compile(r"\{\{-?\s*\.Values\.([A-Za-z0-9_.]+)\s*-?\}\}")


def chart_image(values: Mapping[str, Any], helper: str = "airflow_image") -> str:
    """What the chart's ``airflow_image``/``pod_template_image`` helpers render: repo@digest or repo:tag."""
    airflow = _mapping(_get(values, "images.airflow"))
    own = _mapping(_get(values, "images.pod_template")) if helper == "pod_template_image" else {}
    repo = own.get("repository") or airflow.get("repository") or values.get("defaultAirflowRepository") or ""
    digest = airflow.get("digest") or values.get("defaultAirflowDigest")
    if digest and not own.get("tag"):
        return f"{repo}@{digest}"
    tag = own.get("tag") or airflow.get("tag") or values.get("defaultAirflowTag")
    return f"{repo}:{tag}" if tag else str(repo)


def render_known_templates(text: str, values: Mapping[str, Any]) -> str:
    """Fill the Helm expressions a podTemplate typically uses (the chart passes it through ``tpl``).

    Image helpers and plain ``.Values.x.y`` scalars are rendered as the chart would; anything else
    is left as written, so rules judge it as a literal.
    """
    text = _IMAGE_HELPER.sub(lambda m: chart_image(values, m.group(1)), text)

    def value(m: re.Match[str]) -> str:
        found = _get(values, m.group(1))
        return (
            str(found) if isinstance(found, str | int | float) and not isinstance(found, bool) else m.group(0)
        )

    return _VALUES_REF.sub(value, text)


def _pod_template(doc: HelmValues) -> tuple[Any, str | None]:
    raw = doc.values.get("podTemplate")
    if not raw:
        return None, None
    try:
        pod = yaml.safe_load(render_known_templates(str(raw), doc.values))
    except yaml.YAMLError as exc:
        return None, f"podTemplate is not valid YAML: {exc}"
    if not isinstance(pod, Mapping) or not isinstance(pod.get("spec"), Mapping):
        return None, "podTemplate is not a Pod manifest (no spec)"
    return pod, None


@_rule(
    "HLM-003",
    title="worker-pod-template",
    severity=Severity.ERROR,
    rationale=(
        "With KubernetesExecutor every task runs in a pod built from the podTemplate: it must pass the "
        "same pss-restricted and hardened rules as the pods SecureKubernetesPodOperator launches."
    ),
    fix="Generate the template with `containerkit render pod-template` instead of editing it by hand.",
    peers={},
)
def worker_pod_template(doc: HelmValues) -> Iterable[Violation]:
    pod, error = _pod_template(doc)
    if error:
        yield Violation("podTemplate", error)
        return
    if pod is None:
        return
    from containerkit.policy.engine import evaluate_pod

    for f in evaluate_pod(dict(pod), rule_sets=POD_RULE_SETS):
        if f.severity is Severity.INFO:
            continue
        where = f"container {f.obj.container}: " if f.obj.container else ""
        yield Violation(f"podTemplate.{f.path}", f"{f.rule_id} {where}{f.message}")


def _resources_problems(resources: Mapping[str, Any]) -> list[str]:
    requests = _mapping(resources.get("requests"))
    limits = _mapping(resources.get("limits"))
    missing = [f"requests.{k}" for k in ("cpu", "memory") if not requests.get(k)]
    if not limits.get("memory"):
        missing.append("limits.memory")
    return missing


@_rule(
    "HLM-004",
    title="component-resources",
    severity=Severity.WARNING,
    rationale=(
        "The chart ships `resources: {}`: pods run BestEffort, are evicted first under pressure, and one "
        "leaking scheduler can take a node's memory. Requests size scheduling; a memory limit bounds a leak."
    ),
    fix="Set <component>.resources {requests: {cpu, memory}, limits: {memory}} for every enabled component.",
    peers={"checkov": "CKV_K8S_10,CKV_K8S_11,CKV_K8S_12,CKV_K8S_13 (rendered pods)"},
)
def component_resources(doc: HelmValues) -> Iterable[Violation]:
    values = doc.values
    sections = [c.key for c in enabled_components(values)]
    if _mapping(_get(values, "dags.gitSync")).get("enabled"):
        sections.append("dags.gitSync")
    for key in sections:
        missing = _resources_problems(_mapping(_get(values, f"{key}.resources")))
        if missing:
            yield Violation(f"{key}.resources", f"{key}: resources lack {', '.join(missing)}")


# Values the chart turns into Secrets from plain text; each has a *SecretName alternative.
PLAINTEXT_KEYS = {
    "fernetKey": "fernetKeySecretName",
    "jwtSecret": "jwtSecretName",
    "apiSecretKey": "apiSecretKeySecretName",
    "webserverSecretKey": "webserverSecretKeySecretName",
    "data.metadataConnection.pass": "data.metadataSecretName",
    "data.resultBackendConnection.pass": "data.resultBackendSecretName",
    "data.brokerUrl": "data.brokerUrlSecretName",
    "redis.password": "redis.passwordSecretName",
    "flower.password": "flower.secretName",
    "registry.connection.pass": "imagePullSecrets",
    "elasticsearch.connection.pass": "elasticsearch.secretName",
    "opensearch.connection.pass": "opensearch.secretName",
    "postgresql.auth.password": "postgresql.auth.existingSecret",
    "postgresql.auth.postgresPassword": "postgresql.auth.existingSecret",
    "webserver.defaultUser.password": "createUserJob.enabled: false and a user created out of band",
    "dags.gitSync.sshKey": "dags.gitSync.sshKeySecret",
}


def _env_entries(values: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for base in ("env", "workers.env", "scheduler.env", "apiServer.env", "triggerer.env", "dagProcessor.env"):
        items = _get(values, base)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, Mapping):
                    yield f"{base}[{i}].value", str(item.get("name") or ""), item.get("value")


@_rule(
    "HLM-005",
    title="no-plaintext-credentials",
    severity=Severity.ERROR,
    rationale=(
        "Values files are committed and `helm get values` prints them: a Fernet key, JWT secret, API "
        "secret key or database password written there is leaked. The chart reads each from a Secret "
        "by name instead (fernetKeySecretName, jwtSecretName, data.metadataSecretName ...)."
    ),
    fix="Create the Secret out of band and set the matching *SecretName key; remove the literal.",
    peers={"checkov": "CKV_SECRET_*"},
)
def no_plaintext_credentials(doc: HelmValues) -> Iterable[Violation]:
    values = doc.values
    for path, instead in PLAINTEXT_KEYS.items():
        value = _get(values, path)
        if value in (None, "") or (path == "data.brokerUrl" and secret_literal("brokerUrl", value) is None):
            continue
        yield Violation(path, f"{path} is set in plain text; use {instead}")
    for section, options in _mapping(values.get("config")).items():
        for option, value in _mapping(options).items():
            why = secret_literal(str(option).upper(), value)
            if why:
                yield Violation(f"config.{section}.{option}", f"config.{section}.{option}: {why}")
    for path, name, value in _env_entries(values):
        why = secret_literal(name, value)
        if why:
            yield Violation(path, f"env {name}: {why}")
    reported: set[str] = set(PLAINTEXT_KEYS)
    for name, secret in _mapping(values.get("extraSecrets")).items():
        if isinstance(secret, Mapping) and (secret.get("data") or secret.get("stringData")):
            reported.add(f"extraSecrets.{name}")
            yield Violation(f"extraSecrets.{name}", f"extraSecrets {name} carries secret data in the values")
    reported |= {
        f"config.{s}.{o}" for s, opts in _mapping(values.get("config")).items() for o in _mapping(opts)
    }
    reported |= {path for path, _, _ in _env_entries(values)}
    for path, text in _strings(values, ""):  # a token or key anywhere else, by its shape
        if any(path == r or path.startswith((r + ".", r + "[")) for r in reported):
            continue
        why = value_secret(text)
        if why:
            yield Violation(path, f"{path}: {why}")


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    todo: list[tuple[str, Any]] = [(path, value)]
    while todo:
        where, v = todo.pop()
        if isinstance(v, str):
            yield where, v
        elif isinstance(v, Mapping):
            todo += [(f"{where}.{k}" if where else str(k), sub) for k, sub in v.items()]
        elif isinstance(v, list):
            todo += [(f"{where}[{i}]", sub) for i, sub in enumerate(v)]


def _remote_logging(values: Mapping[str, Any]) -> bool:
    logging = _mapping(_mapping(values.get("config")).get("logging"))
    if str(logging.get("remote_logging", "")).lower() == "true" and logging.get("remote_base_log_folder"):
        return True
    env = {name: value for _, name, value in _env_entries(values)}
    if str(env.get("AIRFLOW__LOGGING__REMOTE_LOGGING", "")).lower() == "true":
        return True
    return bool(
        _mapping(values.get("elasticsearch")).get("enabled")
        or _mapping(values.get("opensearch")).get("enabled")
    )


@_rule(
    "HLM-006",
    title="external-database-in-production",
    severity=Severity.ERROR,
    rationale=(
        "The bundled PostgreSQL subchart is a single pod with a PVC and default credentials: fine to try the "
        "chart, not to keep Airflow's state. Production values (file name contains `prod`) must use an "
        "external database whose connection comes from a Secret."
    ),
    fix="Set postgresql.enabled: false and data.metadataSecretName: <secret with key `connection`>.",
    peers={},
)
def external_database_in_production(doc: HelmValues) -> Iterable[Violation]:
    if not doc.production:
        return
    if _mapping(doc.values.get("postgresql")).get("enabled", True) is not False:
        yield Violation("postgresql.enabled", "production values run the bundled PostgreSQL subchart")
    if not _get(doc.values, "data.metadataSecretName"):
        yield Violation("data", "production values do not set data.metadataSecretName")


@_rule(
    "HLM-007",
    title="kubernetes-executor-logs-kept",
    severity=Severity.WARNING,
    rationale=(
        "A KubernetesExecutor worker pod is deleted when its task ends, and its task log with it, unless "
        "logs go to a persistent volume or a remote store."
    ),
    fix=(
        "Set logs.persistence.enabled: true (ReadWriteMany storage) or config.logging.remote_logging: "
        '"True" with remote_base_log_folder and a connection.'
    ),
    peers={},
)
def kubernetes_executor_logs(doc: HelmValues) -> Iterable[Violation]:
    if not uses_kubernetes(doc.values):
        return
    if _get(doc.values, "logs.persistence.enabled") is True or _remote_logging(doc.values):
        return
    yield Violation(
        "logs.persistence.enabled", "KubernetesExecutor without log persistence or remote logging"
    )


@_rule(
    "HLM-008",
    title="image-pull-secrets",
    severity=Severity.WARNING,
    rationale=(
        "registry.secretName and registry.connection are deprecated: the latter writes registry "
        "credentials into the values. imagePullSecrets names Secrets created out of band."
    ),
    fix="Move the Secret name to imagePullSecrets: [{name: <secret>}] and drop registry.*.",
    peers={},
)
def image_pull_secrets(doc: HelmValues) -> Iterable[Violation]:
    registry = _mapping(doc.values.get("registry"))
    if registry.get("secretName"):
        yield Violation("registry.secretName", "deprecated registry.secretName; use imagePullSecrets")
    if _mapping(registry.get("connection")):
        yield Violation("registry.connection", "deprecated registry.connection; use imagePullSecrets")


@_rule(
    "HLM-009",
    title="network-policies",
    severity=Severity.WARNING,
    rationale=(
        "Without NetworkPolicies every pod in the cluster can reach the metadata database, Redis and the "
        "API server. The chart ships policies for each component; they are off by default."
    ),
    fix="Set networkPolicies.enabled: true (the CNI must enforce NetworkPolicy).",
    peers={"checkov": "CKV2_K8S_6 (manifests)"},
)
def network_policies(doc: HelmValues) -> Iterable[Violation]:
    if _get(doc.values, "networkPolicies.enabled") is not True:
        yield Violation("networkPolicies.enabled", "network policies are not enabled")


@_rule(
    "HLM-010",
    title="images-pinned",
    severity=Severity.ERROR,
    rationale=(
        "images.airflow without a tag follows the chart's defaultAirflowTag, so a chart upgrade silently "
        "changes Airflow; a `latest` tag changes under running pods. Pin the Airflow image explicitly "
        "(tag, or digest which takes precedence) and never use latest for any image."
    ),
    fix="Set images.airflow.tag: <version> (and images.airflow.digest: sha256:...); no image uses latest.",
    peers={"checkov": "CKV_K8S_14,CKV_K8S_43 (rendered pods)"},
)
def images_pinned(doc: HelmValues) -> Iterable[Violation]:
    values = doc.values
    airflow = _mapping(_get(values, "images.airflow"))
    if not (airflow.get("tag") or airflow.get("digest") or values.get("defaultAirflowDigest")):
        yield Violation("images.airflow", "images.airflow sets neither tag nor digest")
    for name, image in _mapping(values.get("images")).items():
        if isinstance(image, Mapping) and str(image.get("tag") or "") == "latest":
            yield Violation(f"images.{name}.tag", f"images.{name} uses the moving latest tag")
    if str(values.get("defaultAirflowTag") or "") == "latest":
        yield Violation("defaultAirflowTag", "defaultAirflowTag is latest")
