"""Render a :class:`~containerkit.spec.ContainerSpec` to ``kubernetes.client`` models.

* :func:`render_pod`: the complete ``V1Pod`` (container ``base`` first, as KubernetesPodOperator and the
  executor look it up by name).
* :func:`full_pod_spec`: the pod for ``KubernetesPodOperator(full_pod_spec=...)`` (no name/namespace;
  the operator sets them).
* :func:`pod_override`: the pod for ``executor_config={"pod_override": ...}`` under KubernetesExecutor.
* :func:`worker_pod_template`: the KubernetesExecutor ``pod_template_file`` YAML.

The renderer adds nothing the spec does not say: defaults live in the profile and the presets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from kubernetes.client import (
    V1Affinity,
    V1Capabilities,
    V1ConfigMapKeySelector,
    V1ConfigMapProjection,
    V1ConfigMapVolumeSource,
    V1Container,
    V1ContainerPort,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1EnvVarSource,
    V1ExecAction,
    V1GRPCAction,
    V1HTTPGetAction,
    V1KeyToPath,
    V1LabelSelector,
    V1LocalObjectReference,
    V1NodeAffinity,
    V1NodeSelector,
    V1NodeSelectorRequirement,
    V1NodeSelectorTerm,
    V1ObjectMeta,
    V1PersistentVolumeClaimVolumeSource,
    V1Pod,
    V1PodAffinityTerm,
    V1PodAntiAffinity,
    V1PodSecurityContext,
    V1PodSpec,
    V1PreferredSchedulingTerm,
    V1Probe,
    V1ProjectedVolumeSource,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecretKeySelector,
    V1SecretProjection,
    V1SecretVolumeSource,
    V1SecurityContext,
    V1ServiceAccountTokenProjection,
    V1TCPSocketAction,
    V1Toleration,
    V1TopologySpreadConstraint,
    V1Volume,
    V1VolumeMount,
    V1VolumeProjection,
    V1WeightedPodAffinityTerm,
)

from containerkit.errors import SpecError
from containerkit.kubernetes.manifests import dump_yaml, model
from containerkit.spec.container import BASE_CONTAINER, Container, ContainerSpec, references
from containerkit.spec.key_refs import ConfigMapRef, SecretRef
from containerkit.spec.names import check_dns_label, check_dns_subdomain
from containerkit.spec.probes import Probe
from containerkit.spec.resources import WORKER_PRESET
from containerkit.spec.scheduling import Scheduling
from containerkit.spec.security import TMP_DIR, SecurityProfile
from containerkit.spec.volumes import (
    CONFIG_FILE_MODE,
    SECRET_FILE_MODE,
    ConfigMapVolume,
    EmptyDir,
    PersistentVolumeClaimVolume,
    ProjectedVolume,
    SecretVolume,
    Volume,
)


def render_pod(spec: ContainerSpec, *, name: str | None, namespace: str | None = None) -> V1Pod:
    """The complete pod for ``spec``.

    :param name: pod name (``None`` leaves it to the caller, e.g. KubernetesPodOperator).
    :param namespace: namespace, or ``None`` for the caller's default.
    """
    if name is not None:
        check_dns_subdomain("name", name, what="pod name")
    if namespace is not None:
        check_dns_label("namespace", namespace, what="namespace name")
    profile = spec.security
    init = [_container(spec, c, restart_always=False) for c in spec.init_containers]
    init += [_container(spec, c, restart_always=True) for c in spec.sidecars]
    pod_spec = model(
        V1PodSpec,
        containers=[_container(spec, spec, restart_always=False)],
        init_containers=init or None,
        volumes=_volumes(spec) or None,
        restart_policy="Never",
        security_context=_pod_security_context(profile),
        automount_service_account_token=profile.automount_service_account_token,
        service_account_name=spec.service_account,
        termination_grace_period_seconds=spec.termination_grace_seconds,
        active_deadline_seconds=spec.active_deadline_seconds,
        image_pull_secrets=[model(V1LocalObjectReference, name=s) for s in spec.image_pull_secrets] or None,
        host_network=profile.host_network or None,
        host_pid=profile.host_pid or None,
        host_ipc=profile.host_ipc or None,
        **_scheduling(spec.scheduling),
    )
    return model(
        V1Pod,
        api_version="v1",
        kind="Pod",
        metadata=model(
            V1ObjectMeta,
            name=name,
            namespace=namespace,
            labels=dict(spec.labels) or None,
            annotations=dict(spec.annotations) or None,
        ),
        spec=pod_spec,
    )


def full_pod_spec(spec: ContainerSpec) -> V1Pod:
    """The pod for ``KubernetesPodOperator(full_pod_spec=...)``; the operator names and places it."""
    return render_pod(spec, name=None)


def pod_override(spec: ContainerSpec) -> V1Pod:
    """The pod for ``executor_config={"pod_override": ...}``; the executor merges it over its template.

    The executor runs ``airflow tasks run ...`` in ``base``, so a spec with ``command``/``args`` is refused
    (they would replace the task process), and ``image`` must be an Airflow image.
    """
    for attr in ("command", "args"):
        if getattr(spec, attr):
            raise SpecError(
                attr,
                getattr(spec, attr),
                "the executor supplies the base container's command ('airflow tasks run ...')",
                f"drop {attr} from a spec used as pod_override (own commands: KubernetesPodOperator)",
            )
    return render_pod(spec, name=None)


def worker_pod_template(
    spec: ContainerSpec | None = None,
    *,
    image: str | None = None,
    namespace: str | None = None,
    config_map: str = "airflow-config",
    logs_volume: V1Volume | str | None = None,
    airflow_home: str = "/opt/airflow",
    labels: Mapping[str, str] | None = None,
    release: str | None = None,
) -> str:
    """The KubernetesExecutor ``pod_template_file`` as YAML, shaped like the official chart's template.

    Container ``base`` with ``AIRFLOW__CORE__EXECUTOR=LocalExecutor``, the logs volume at
    ``{airflow_home}/logs`` and ``airflow.cfg`` from ConfigMap ``config_map``, hardened and sized by
    ``spec`` (default: ``image`` with the restricted profile and the worker preset).

    :param spec: the worker's spec; its image must be an Airflow image. Mutually exclusive with ``image``.
    :param image: shorthand for ``ContainerSpec(image, resources=WORKER_PRESET)``.
    :param logs_volume: ``None`` (an emptyDir), a PVC claim name, or a full ``V1Volume`` named ``logs``.
    :param release: the Helm release name, added as the chart's ``release`` label.
    """
    if (spec is None) == (image is None):
        raise SpecError(
            "worker_pod_template", image, "pass exactly one of spec= or image=", "pass image='...'"
        )
    if spec is None:
        spec = ContainerSpec(image=str(image), resources=WORKER_PRESET)
    pod = pod_override(spec)
    pod.metadata.name = "placeholder-name"
    pod.metadata.namespace = namespace
    pod.metadata.labels = {
        "tier": "airflow",
        "component": "worker",
        **({"release": release} if release else {}),
        **dict(spec.labels),
        **dict(labels or {}),
    }
    base = pod.spec.containers[0]
    base.env = [model(V1EnvVar, name="AIRFLOW__CORE__EXECUTOR", value="LocalExecutor"), *(base.env or [])]
    base.volume_mounts = [
        model(V1VolumeMount, name="logs", mount_path=f"{airflow_home.rstrip('/')}/logs"),
        model(
            V1VolumeMount,
            name="config",
            mount_path=f"{airflow_home.rstrip('/')}/airflow.cfg",
            sub_path="airflow.cfg",
            read_only=True,
        ),
        *(base.volume_mounts or []),
    ]
    if isinstance(logs_volume, V1Volume):
        if logs_volume.name != "logs":
            raise SpecError(
                "logs_volume.name", logs_volume.name, "the logs volume must be named 'logs'", "rename it"
            )
        logs = logs_volume
    elif isinstance(logs_volume, str):
        logs = model(
            V1Volume,
            name="logs",
            persistent_volume_claim=model(V1PersistentVolumeClaimVolumeSource, claim_name=logs_volume),
        )
    else:
        logs = model(
            V1Volume,
            name="logs",
            empty_dir=model(
                V1EmptyDirVolumeSource,
            ),
        )
    config = model(V1Volume, name="config", config_map=model(V1ConfigMapVolumeSource, name=config_map))
    taken = {v.name for v in pod.spec.volumes or []}
    for reserved in ("logs", "config"):
        if reserved in taken:
            raise SpecError(
                f"volumes[{reserved}].name", reserved, "reserved in the worker pod template", "rename it"
            )
    pod.spec.volumes = [logs, config, *(pod.spec.volumes or [])]
    return dump_yaml([pod])


# --- containers -------------------------------------------------------------------------------------


def _container(spec: ContainerSpec, c: ContainerSpec | Container, *, restart_always: bool) -> V1Container:
    profile = c.security if isinstance(c, Container) and c.security is not None else spec.security
    mounts = [
        model(
            V1VolumeMount,
            name=m.volume,
            mount_path=m.path,
            read_only=m.is_read_only(spec.volume(m.volume)),
            sub_path=m.sub_path,
        )
        for m in c.mounts
    ]
    for volume_name, ref in spec.file_volumes():
        if ref in references(c):
            assert ref.path is not None
            mounts.append(
                model(V1VolumeMount, name=volume_name, mount_path=ref.path, sub_path=ref.key, read_only=True)
            )
    if spec.security.writable_tmp:
        mounts.append(model(V1VolumeMount, name="tmp", mount_path=TMP_DIR))
    return model(
        V1Container,
        name=c.name,
        image=str(c.image),
        image_pull_policy=spec.image_pull_policy,
        command=list(c.command) if c.command else None,
        args=list(c.args) or None,
        working_dir=c.working_dir,
        env=_env(c) or None,
        ports=[model(V1ContainerPort, container_port=p) for p in c.ports] or None,
        resources=model(V1ResourceRequirements, requests=c.resources.requests, limits=c.resources.limits),
        security_context=_container_security_context(profile),
        volume_mounts=mounts or None,
        liveness_probe=_probe(c.probes.liveness),
        readiness_probe=_probe(c.probes.readiness),
        startup_probe=_probe(c.probes.startup),
        restart_policy="Always" if restart_always else None,
        termination_message_policy="FallbackToLogsOnError",
    )


def _env(c: ContainerSpec | Container) -> list[V1EnvVar]:
    env = [model(V1EnvVar, name=e.name, value=e.value) for e in c.env]
    for ref in c.secrets:
        if ref.env:
            selector = model(V1SecretKeySelector, name=ref.secret, key=ref.key, optional=ref.optional or None)
            env.append(
                model(V1EnvVar, name=ref.env, value_from=model(V1EnvVarSource, secret_key_ref=selector))
            )
    for cm in c.config_maps:
        if cm.env:
            cm_selector = model(
                V1ConfigMapKeySelector, name=cm.config_map, key=cm.key, optional=cm.optional or None
            )
            env.append(
                model(V1EnvVar, name=cm.env, value_from=model(V1EnvVarSource, config_map_key_ref=cm_selector))
            )
    return env


def _probe(probe: Probe | None) -> V1Probe | None:
    if probe is None:
        return None
    action: dict[str, Any] = {}
    if probe.kind == "exec":
        action["_exec"] = model(V1ExecAction, command=list(probe.command))
    elif probe.kind == "http":
        action["http_get"] = model(
            V1HTTPGetAction, path=probe.http_path, port=probe.port, scheme=probe.http_scheme
        )
    elif probe.kind == "tcp":
        action["tcp_socket"] = model(V1TCPSocketAction, port=probe.port)
    else:
        action["grpc"] = model(V1GRPCAction, port=probe.port)
    return model(
        V1Probe,
        initial_delay_seconds=probe.initial_delay_seconds or None,
        period_seconds=probe.period_seconds,
        timeout_seconds=probe.timeout_seconds,
        failure_threshold=probe.failure_threshold,
        success_threshold=probe.success_threshold,
        **action,
    )


# --- security ---------------------------------------------------------------------------------------


def _seccomp(profile: SecurityProfile) -> V1SeccompProfile:
    return model(V1SeccompProfile, type=profile.seccomp, localhost_profile=profile.seccomp_localhost_profile)


def _pod_security_context(profile: SecurityProfile) -> V1PodSecurityContext:
    return model(
        V1PodSecurityContext,
        run_as_user=profile.run_as_user,
        run_as_group=profile.run_as_group,
        run_as_non_root=profile.run_as_non_root or None,
        fs_group=profile.fs_group,
        fs_group_change_policy=profile.fs_group_change_policy if profile.fs_group is not None else None,
        seccomp_profile=_seccomp(profile),
    )


def _container_security_context(profile: SecurityProfile) -> V1SecurityContext:
    return model(
        V1SecurityContext,
        allow_privilege_escalation=profile.allow_privilege_escalation,
        privileged=profile.privileged,
        read_only_root_filesystem=profile.read_only_root_filesystem,
        # Explicit False too: a container override must be able to undo the pod-level runAsNonRoot.
        run_as_non_root=profile.run_as_non_root,
        run_as_user=profile.run_as_user,
        run_as_group=profile.run_as_group,
        capabilities=model(
            V1Capabilities,
            drop=list(profile.drop_capabilities) or None,
            add=list(profile.add_capabilities) or None,
        ),
        seccomp_profile=_seccomp(profile),
    )


# --- volumes ----------------------------------------------------------------------------------------


def _volumes(spec: ContainerSpec) -> list[V1Volume]:
    volumes = [_volume(v) for v in spec.volumes]
    tmp = spec.tmp_volume
    if tmp is not None:
        volumes.append(_volume(tmp))
    grouped: dict[str, list[SecretRef | ConfigMapRef]] = defaultdict(list)
    for volume_name, ref in spec.file_volumes():
        grouped[volume_name].append(ref)
    for volume_name, refs in grouped.items():
        items = [model(V1KeyToPath, key=k, path=k) for k in dict.fromkeys(r.key for r in refs)]
        optional = all(r.optional for r in refs) or None
        first = refs[0]
        if isinstance(first, SecretRef):
            source = model(
                V1SecretVolumeSource,
                secret_name=first.secret,
                items=items,
                default_mode=SECRET_FILE_MODE,
                optional=optional,
            )
            volumes.append(model(V1Volume, name=volume_name, secret=source))
        else:
            cm_source = model(
                V1ConfigMapVolumeSource,
                name=first.config_map,
                items=items,
                default_mode=CONFIG_FILE_MODE,
                optional=optional,
            )
            volumes.append(model(V1Volume, name=volume_name, config_map=cm_source))
    return volumes


def _items(items: Mapping[str, str]) -> list[V1KeyToPath] | None:
    return [model(V1KeyToPath, key=k, path=p) for k, p in items.items()] or None


def _volume(volume: Volume) -> V1Volume:
    if isinstance(volume, EmptyDir):
        source = model(
            V1EmptyDirVolumeSource, medium="Memory" if volume.memory else None, size_limit=volume.size_limit
        )
        return model(V1Volume, name=volume.name, empty_dir=source)
    if isinstance(volume, PersistentVolumeClaimVolume):
        claim = model(
            V1PersistentVolumeClaimVolumeSource, claim_name=volume.claim, read_only=volume.read_only or None
        )
        return model(V1Volume, name=volume.name, persistent_volume_claim=claim)
    if isinstance(volume, ConfigMapVolume):
        cm = model(
            V1ConfigMapVolumeSource,
            name=volume.config_map,
            items=_items(volume.items),
            default_mode=volume.default_mode,
            optional=volume.optional or None,
        )
        return model(V1Volume, name=volume.name, config_map=cm)
    if isinstance(volume, SecretVolume):
        secret = model(
            V1SecretVolumeSource,
            secret_name=volume.secret,
            items=_items(volume.items),
            default_mode=volume.default_mode,
            optional=volume.optional or None,
        )
        return model(V1Volume, name=volume.name, secret=secret)
    sources: list[V1VolumeProjection] = []
    for src in volume.sources:
        if isinstance(src, ConfigMapVolume):
            sources.append(
                model(
                    V1VolumeProjection,
                    config_map=model(V1ConfigMapProjection, name=src.config_map, items=_items(src.items)),
                )
            )
        elif isinstance(src, SecretVolume):
            sources.append(
                model(
                    V1VolumeProjection,
                    secret=model(V1SecretProjection, name=src.secret, items=_items(src.items)),
                )
            )
        else:
            token = model(
                V1ServiceAccountTokenProjection,
                path=src.path,
                audience=src.audience,
                expiration_seconds=src.expiration_seconds,
            )
            sources.append(model(V1VolumeProjection, service_account_token=token))
    assert isinstance(volume, ProjectedVolume)
    return model(
        V1Volume,
        name=volume.name,
        projected=model(V1ProjectedVolumeSource, sources=sources, default_mode=volume.default_mode),
    )


# --- scheduling -------------------------------------------------------------------------------------


def _scheduling(s: Scheduling) -> dict[str, Any]:
    out: dict[str, Any] = {
        "node_selector": dict(s.node_selector) or None,
        "priority_class_name": s.priority_class,
        "runtime_class_name": s.runtime_class,
        "tolerations": [
            model(
                V1Toleration,
                key=t.key,
                operator=t.operator,
                value=t.value,
                effect=t.effect,
                toleration_seconds=t.toleration_seconds,
            )
            for t in s.tolerations
        ]
        or None,
        "topology_spread_constraints": [
            model(
                V1TopologySpreadConstraint,
                max_skew=t.max_skew,
                topology_key=t.topology_key,
                when_unsatisfiable=t.when_unsatisfiable,
                label_selector=model(V1LabelSelector, match_labels=dict(t.match_labels)),
            )
            for t in s.topology_spread
        ]
        or None,
    }
    node_affinity = None
    required = [r for r in s.node_affinity if r.weight == 0]
    preferred = [r for r in s.node_affinity if r.weight > 0]
    if required or preferred:
        node_affinity = model(
            V1NodeAffinity,
            required_during_scheduling_ignored_during_execution=model(
                V1NodeSelector,
                node_selector_terms=[
                    model(V1NodeSelectorTerm, match_expressions=[_node_req(r) for r in required])
                ],
            )
            if required
            else None,
            preferred_during_scheduling_ignored_during_execution=[
                model(
                    V1PreferredSchedulingTerm,
                    weight=r.weight,
                    preference=model(V1NodeSelectorTerm, match_expressions=[_node_req(r)]),
                )
                for r in preferred
            ]
            or None,
        )
    anti = None
    if s.anti_affinity:
        terms = [
            (
                a,
                model(
                    V1PodAffinityTerm,
                    label_selector=model(V1LabelSelector, match_labels=dict(a.match_labels)),
                    topology_key=a.topology_key,
                ),
            )
            for a in s.anti_affinity
        ]
        anti = model(
            V1PodAntiAffinity,
            required_during_scheduling_ignored_during_execution=[t for a, t in terms if a.required] or None,
            preferred_during_scheduling_ignored_during_execution=[
                model(V1WeightedPodAffinityTerm, weight=a.weight, pod_affinity_term=t)
                for a, t in terms
                if not a.required
            ]
            or None,
        )
    if node_affinity or anti:
        out["affinity"] = model(V1Affinity, node_affinity=node_affinity, pod_anti_affinity=anti)
    return out


def _node_req(r: Any) -> V1NodeSelectorRequirement:
    return model(V1NodeSelectorRequirement, key=r.key, operator=r.operator, values=list(r.values) or None)


__all__ = ["BASE_CONTAINER", "full_pod_spec", "pod_override", "render_pod", "worker_pod_template"]
