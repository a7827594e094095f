"""Values for the official Apache Airflow Helm chart, derived from the same profile and presets as task pods.

:func:`render_values` returns what containerkit owns in a values file: the KubernetesExecutor
``podTemplate`` (built by :func:`~containerkit.kubernetes.pod.worker_pod_template`, the factory behind
``SecureKubernetesPodOperator`` pods), and the ``securityContexts`` and ``resources`` of every chart
component. :func:`merge_overlay` layers it under a hand-written overlay and refuses an overlay that sets
a path the renderer owns, so each setting has one source.

The pod template is rendered with concrete stand-ins for what only the chart knows (release name,
ConfigMap, image with digest, git-sync settings) and the stand-ins are then replaced by the chart's
template expressions (the chart passes ``podTemplate`` through ``tpl``). :func:`resolve_pod_template`
puts the stand-ins back, which gives the exact pod the factory rendered, for validation and policy.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from containerkit.errors import SpecError
from containerkit.facts.annotations import IGNORE_ANNOTATION
from containerkit.kubernetes.manifests import to_dict
from containerkit.kubernetes.pod import render_pod, worker_pod_template
from containerkit.spec import Container, ContainerSpec, EmptyDir, SecretRef, SecurityProfile, VolumeMount
from containerkit.spec.resources import SIDECAR_PRESET, WORKER_PRESET, Resources

AIRFLOW_HOME = "/opt/airflow"
GIT_SYNC_ROOT = "/git"
# What the chart fills in, as (stand-in the factory renders, chart template expression). The stand-ins are
# valid where they stand (image references, DNS names) and appear nowhere else in a rendered pod.
CHART_BINDINGS: tuple[tuple[str, str], ...] = (
    (
        "chart.invalid/airflow:chart@sha256:" + "a" * 64,
        '{{ include "airflow_image" . }}',
    ),
    (
        "chart.invalid/git-sync:chart",
        "{{ .Values.images.gitSync.repository }}:{{ .Values.images.gitSync.tag }}",
    ),
    ("ck-chart-release", "{{ .Release.Name }}"),
    ("ck-chart-config", '{{ include "airflow_config" . }}'),
    ("ck-chart-logs", '{{ include "airflow_logs_volume_claim" . }}'),
    ("ck-chart-worker", '{{ include "worker.serviceAccountName" . }}'),
    ("ck-chart-git-credentials", "{{ .Values.dags.gitSync.credentialsSecret }}"),
    ("ck-chart-git-repo", "{{ .Values.dags.gitSync.repo }}"),
    ("ck-chart-git-ref", "{{ .Values.dags.gitSync.ref }}"),
    ("ck-chart-git-depth", "{{ .Values.dags.gitSync.depth }}"),
    ("ck-chart-git-max-failures", "{{ .Values.dags.gitSync.maxFailures }}"),
)
_STAND_IN = {expression: stand_in for stand_in, expression in CHART_BINDINGS}
_EXPRESSION = dict(CHART_BINDINGS)
_AIRFLOW_IMAGE, _GIT_SYNC_IMAGE = CHART_BINDINGS[0][0], CHART_BINDINGS[1][0]
_API_ACCESS_REASON = (
    "HRD-008: KubernetesExecutor worker pods launch SecureKubernetesPodOperator pods through the API"
)


@dataclass(frozen=True)
class Component:
    """One workload of the chart: where its values live, its user and its size.

    :param path: the values path of the component's section (``dags.gitSync`` for nested ones).
    :param uid: the user the component's image expects (Airflow 50000; statsd and pgbouncer 65534).
    :param pod: whether the section has a pod-level security context (sidecars only have ``container``).
    :param sidecars: nested sections (log groomer, wait-for-migrations, exporter) and whether the chart
        lets us size them (``resources``).
    """

    path: str
    preset: str
    uid: int = 50000
    pod: bool = True
    sidecars: tuple[tuple[str, bool], ...] = ()


_GROOMER = ("logGroomerSidecar", True)
_WAIT = ("waitForMigrations", False)
# The one table of component sizes: a component runs with the profile and the preset named here.
COMPONENTS: tuple[Component, ...] = (
    Component("scheduler", "m", sidecars=(_GROOMER, _WAIT)),
    Component("apiServer", "l", sidecars=(_WAIT,)),
    Component("dagProcessor", "m", sidecars=(_GROOMER, _WAIT)),
    Component("triggerer", "m", sidecars=(_GROOMER, _WAIT)),
    Component("migrateDatabaseJob", "m"),
    Component("createUserJob", "s"),
    Component("cleanup", "s"),
    Component("databaseCleanup", "m"),
    Component("statsd", "xs", uid=65534),
    Component("pgbouncer", "xs", uid=65534, sidecars=(("metricsExporterSidecar", True),)),
    Component("dags.gitSync", "xs", uid=65533, pod=False),
)
# Components whose image needs a writable /tmp under a read-only root filesystem, beyond the Airflow
# containers (those get it through the chart's global ``volumes``/``volumeMounts``).
_TMP_EXTRA = {"pgbouncer": ("extraVolumes", "extraVolumeMounts"), "dags.gitSync": (None, "extraVolumeMounts")}


def chart_pod_template(
    *,
    profile: SecurityProfile | str | None = None,
    resources: Resources | str | Mapping[str, Any] = WORKER_PRESET,
    api_access: bool = True,
    git_sync: bool = True,
    logs_claim: bool = True,
    image_pull_secrets: Sequence[str] = (),
) -> str:
    """The chart's ``podTemplate``: the factory's worker pod with the chart's names as template expressions.

    :param profile: the security profile of task pods (default ``restricted``).
    :param resources: the worker's size (a preset name, a mapping or :class:`Resources`).
    :param api_access: mount a service-account token, because worker pods launch KubernetesPodOperator
        pods; the pod carries the policy suppression that says so.
    :param git_sync: clone the DAGs with a git-sync init container (credentials from
        ``dags.gitSync.credentialsSecret``), as the chart does for its own pods.
    :param logs_claim: write task logs to the chart's logs PVC (``logs.persistence``), else an emptyDir.
    :param image_pull_secrets: Secret names for pulling the images.
    """
    return _to_chart(
        _worker_template(profile, resources, api_access, git_sync, logs_claim, image_pull_secrets)
    )


def standalone_pod_template(
    image: str,
    *,
    profile: SecurityProfile | str | None = None,
    resources: Resources | str | Mapping[str, Any] = WORKER_PRESET,
    api_access: bool = True,
    namespace: str | None = None,
    config_map: str = "airflow-config",
    logs_claim: str | None = None,
) -> str:
    """A ``pod_template_file`` for KubernetesExecutor without the chart: the same worker pod, concrete names.

    :param image: the pinned Airflow image with the provider installed.
    :param logs_claim: PVC for task logs; ``None`` is an emptyDir (logs go with the pod unless shipped).
    """
    spec = ContainerSpec(
        image=image,
        resources=Resources.coerce(resources),
        security=_worker_profile(profile, api_access),
        annotations={IGNORE_ANNOTATION: _API_ACCESS_REASON} if api_access else {},
    )
    return worker_pod_template(spec, namespace=namespace, config_map=config_map, logs_volume=logs_claim)


def resolve_pod_template(template: str, bindings: Mapping[str, str] | None = None) -> str:
    """``template`` with each chart expression replaced by its stand-in (or by ``bindings[expression]``)."""
    for expression, stand_in in _STAND_IN.items():
        template = template.replace(_quoted(expression), (bindings or {}).get(expression, stand_in))
    return template


def render_values(
    *,
    profile: SecurityProfile | str | None = None,
    worker_resources: Resources | str | Mapping[str, Any] = WORKER_PRESET,
    api_access: bool = True,
    git_sync: bool = True,
    logs_claim: bool = True,
    image_pull_secrets: Sequence[str] = (),
) -> dict[str, Any]:
    """The values containerkit owns: ``podTemplate``, global and per-component security contexts, resources.

    Parameters as for :func:`chart_pod_template`; component sizes come from :data:`COMPONENTS`.
    """
    base = SecurityProfile.coerce(profile)
    pod_ctx, container_ctx, tmp_volume, tmp_mount = _contexts(base)
    values: dict[str, Any] = {
        "securityContexts": {"pod": pod_ctx, "containers": container_ctx},
    }
    if tmp_volume is not None:
        values["volumes"] = [tmp_volume]
        values["volumeMounts"] = [tmp_mount]
    for component in COMPONENTS:
        own = _with_uid(base, component.uid)
        c_pod, c_container, _, _ = _contexts(own)
        section: dict[str, Any] = {"securityContexts": {"container": c_container}}
        if component.pod:
            section["securityContexts"] = {"pod": c_pod, "container": c_container}
        section["resources"] = _resources(component.preset)
        for name, sized in component.sidecars:
            sidecar: dict[str, Any] = {"securityContexts": {"container": c_container}}
            if sized:
                sidecar["resources"] = _resources(SIDECAR_PRESET)
            section[name] = sidecar
        volumes_key, mounts_key = _TMP_EXTRA.get(component.path, (None, None))
        if tmp_volume is not None and mounts_key:
            section[mounts_key] = [tmp_mount]
            if volumes_key:
                section[volumes_key] = [tmp_volume]
        _set(values, component.path, section)
    values["podTemplate"] = chart_pod_template(
        profile=base,
        resources=worker_resources,
        api_access=api_access,
        git_sync=git_sync,
        logs_claim=logs_claim,
        image_pull_secrets=image_pull_secrets,
    )
    return values


def merge_overlay(generated: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` with ``generated`` merged in; a path set by both is refused (one source per setting)."""
    conflicts = sorted(_conflicts(generated, overlay))
    if conflicts:
        raise SpecError(
            "overlay",
            conflicts[0],
            f"the overlay sets {len(conflicts)} path(s) containerkit renders: {', '.join(conflicts)}",
            "remove them from the overlay (change the profile or presets instead, "
            "or put a deliberate override in a later -f values file)",
        )
    return _merge(dict(overlay), generated)


def dump_values(values: Mapping[str, Any], *, header: str = "") -> str:
    """YAML for a values file: keys in insertion order, multi-line strings as literal blocks."""
    body = yaml.dump(dict(values), Dumper=_ValuesDumper, sort_keys=False, default_flow_style=False, width=108)
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    return "\n".join([*lines, body]) if lines else body


def overlay_pull_secrets(overlay: Mapping[str, Any]) -> list[str]:
    """The Secret names of an overlay's ``imagePullSecrets`` (strings or ``{name: ...}`` items)."""
    names = []
    for item in overlay.get("imagePullSecrets") or ():
        name = item.get("name") if isinstance(item, Mapping) else item
        if not isinstance(name, str) or not name:
            raise SpecError(
                "imagePullSecrets", item, "an entry without a Secret name", "use - name: my-registry"
            )
        names.append(name)
    return names


# --- the worker pod ---------------------------------------------------------------------------------


def _worker_template(
    profile: SecurityProfile | str | None,
    resources: Resources | str | Mapping[str, Any],
    api_access: bool,
    git_sync: bool,
    logs_claim: bool,
    image_pull_secrets: Sequence[str],
) -> str:
    security = _worker_profile(profile, api_access)
    volumes: list[Any] = []
    mounts: list[VolumeMount] = []
    init: list[Container] = []
    if git_sync:
        volumes.append(EmptyDir("dags"))
        mounts.append(VolumeMount("dags", f"{AIRFLOW_HOME}/dags", read_only=True))
        init.append(_git_sync_init())
    spec = ContainerSpec(
        image=_AIRFLOW_IMAGE,
        resources=Resources.coerce(resources),
        security=security,
        volumes=volumes,
        mounts=mounts,
        init_containers=init,
        service_account=_STAND_IN['{{ include "worker.serviceAccountName" . }}'],
        annotations={IGNORE_ANNOTATION: _API_ACCESS_REASON} if api_access else {},
        image_pull_secrets=tuple(image_pull_secrets),
    )
    text = worker_pod_template(
        spec,
        config_map=_STAND_IN['{{ include "airflow_config" . }}'],
        logs_volume=_STAND_IN['{{ include "airflow_logs_volume_claim" . }}'] if logs_claim else None,
        airflow_home=AIRFLOW_HOME,
        release=_STAND_IN["{{ .Release.Name }}"],
    )
    pod = yaml.safe_load(text)
    for container in pod["spec"].get("initContainers") or ():
        if container["image"] == _GIT_SYNC_IMAGE:
            # The chart pins git-sync by tag only; Always makes every node pull what the tag names now.
            container["imagePullPolicy"] = "Always"
    return yaml.dump(pod, Dumper=_ValuesDumper, sort_keys=False, default_flow_style=False, width=108)


def _worker_profile(profile: SecurityProfile | str | None, api_access: bool) -> SecurityProfile:
    security = SecurityProfile.coerce(profile)
    return dataclasses.replace(security, automount_service_account_token=True) if api_access else security


def _git_sync_init() -> Container:
    """A one-shot git-sync (v4 flags) that clones the chart's DAG repository into the ``dags`` volume."""
    secret = _STAND_IN["{{ .Values.dags.gitSync.credentialsSecret }}"]
    return Container(
        name="git-sync-init",
        image=_GIT_SYNC_IMAGE,
        env={
            "GITSYNC_REPO": _STAND_IN["{{ .Values.dags.gitSync.repo }}"],
            "GITSYNC_REF": _STAND_IN["{{ .Values.dags.gitSync.ref }}"],
            "GITSYNC_DEPTH": _STAND_IN["{{ .Values.dags.gitSync.depth }}"],
            "GITSYNC_MAX_FAILURES": _STAND_IN["{{ .Values.dags.gitSync.maxFailures }}"],
            "GITSYNC_ROOT": GIT_SYNC_ROOT,
            "GITSYNC_LINK": "repo",
            "GITSYNC_ONE_TIME": "true",
        },
        secrets=(
            SecretRef(secret, "GITSYNC_USERNAME", env="GITSYNC_USERNAME"),
            SecretRef(secret, "GITSYNC_PASSWORD", env="GITSYNC_PASSWORD"),
        ),
        mounts=[VolumeMount("dags", GIT_SYNC_ROOT, read_only=False)],
    )


def _to_chart(text: str) -> str:
    """Swap stand-ins for expressions, single-quoted so the template is YAML before and after ``tpl``."""
    alternatives = "|".join(re.escape(s) for s, _ in CHART_BINDINGS)
    pattern = re.compile(rf"(?<=[:-] )({alternatives})$", re.M)
    text = pattern.sub(lambda m: _quoted(_EXPRESSION[m.group(1)]), text)
    leftover = [s for s, _ in CHART_BINDINGS if s in text]
    if leftover:  # pragma: no cover - a stand-in inside a longer value would not be a chart expression
        raise AssertionError(f"stand-ins left in the pod template: {leftover}")
    return text


def _quoted(expression: str) -> str:
    return "'" + expression.replace("'", "''") + "'"


# --- components -------------------------------------------------------------------------------------


def _with_uid(profile: SecurityProfile, uid: int) -> SecurityProfile:
    if profile.run_as_user is None:
        return profile
    return dataclasses.replace(profile, run_as_user=uid)


def _contexts(profile: SecurityProfile) -> tuple[dict[str, Any], dict[str, Any], Any, Any]:
    """Pod and container security context and the /tmp volume and mount, as the factory renders them."""
    pod = to_dict(render_pod(ContainerSpec(image=_AIRFLOW_IMAGE, security=profile), name=None))
    container = pod["spec"]["containers"][0]
    tmp_volume = next((v for v in pod["spec"].get("volumes") or () if v.get("name") == "tmp"), None)
    tmp_mount = next((m for m in container.get("volumeMounts") or () if m.get("name") == "tmp"), None)
    return pod["spec"]["securityContext"], container["securityContext"], tmp_volume, tmp_mount


def _resources(preset: str) -> dict[str, dict[str, str]]:
    size = Resources.preset(preset)
    return {"requests": dict(size.requests), "limits": dict(size.limits)}


def _set(values: dict[str, Any], path: str, section: Mapping[str, Any]) -> None:
    node = values
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = dict(section)


def _conflicts(generated: Mapping[str, Any], overlay: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in generated.items():
        if key not in overlay:
            continue
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(overlay[key], Mapping):
            yield from _conflicts(value, overlay[key], f"{path}.")
        else:
            yield path


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), Mapping):
            into[key] = _merge(dict(into[key]), value)
        else:
            into[key] = value
    return into


class _ValuesDumper(yaml.SafeDumper):
    """Block literals for multi-line strings (the podTemplate stays readable YAML inside YAML)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, as Kubernetes manifests and the chart's values do.
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True  # the same /tmp mount in several sections is written out each time, never as &anchor


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_ValuesDumper.add_representer(str, _str)
