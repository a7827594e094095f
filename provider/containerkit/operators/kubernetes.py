"""``SecureKubernetesPodOperator``: KubernetesPodOperator with hardened pods, policy and fast diagnoses.

It subclasses the stock operator (every stock parameter keeps working: templating, deferrable mode,
xcom, callbacks, durable reattach, ``pod_template_file``) and hooks in at these points of
``apache-airflow-providers-cncf-kubernetes`` (pinned in :data:`SUPPORTED_CNCF_KUBERNETES`):

* ``__init__`` renders a :class:`~containerkit.spec.ContainerSpec` (hardened profile, resource preset)
  as the base ``full_pod_spec`` and enforces policy on it at DAG parse time;
* ``hook`` gives the xcom sidecar the spec's restricted security context and ``xs`` resources;
* ``build_pod_request_obj`` enforces policy again on the *final* pod (after the stock merge, the xcom
  sidecar and ``pod_mutation_hook``);
* ``pod_manager.await_pod_start`` / the trigger stop at the first fatal diagnosis instead of waiting
  ``startup_timeout_seconds``;
* ``cleanup`` / ``trigger_reentry`` / ``on_kill`` read the evidence (status, events, log tail) before the
  pod is deleted, and turn every failure into one :class:`~containerkit.diagnostics.ContainerTaskFailed`.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.cncf.kubernetes import __version__ as CNCF_KUBERNETES_VERSION
from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger
from airflow.providers.cncf.kubernetes.utils.pod_manager import (
    PodLaunchTimeoutException,
    PodManager,
    PodPhase,
)
from airflow.providers.cncf.kubernetes.utils.xcom_sidecar import PodDefaults
from airflow.providers.common.compat.sdk import AirflowException, AirflowSkipException
from kubernetes.client import V1Pod
from kubernetes.client.exceptions import ApiException

from containerkit.operators.spec_params import spec_changes
from containerkit.operators.versions import version_in

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

    from containerkit.diagnostics.model import ContainerTaskFailed, Diagnosis
    from containerkit.policy.model import Finding
    from containerkit.spec import ConfigMapRef, ContainerSpec, Resources, SecretRef, SecurityProfile

# Only what the class definitions need is imported above (the stock operator's own modules); the spec,
# renderer, policy, diagnostics and trigger modules load on first use, so importing this module for a
# DAG file adds little on top of importing KubernetesPodOperator.

__all__ = ["SUPPORTED_CNCF_KUBERNETES", "SecureKubernetesPodOperator"]

SUPPORTED_CNCF_KUBERNETES = ">=10.25.0,<10.26"
"""The provider versions whose internals this module overrides (``await_pod_start``, ``cleanup``,
``trigger_reentry``, the trigger's ``_wait_for_pod_start``). Widen only after re-reading them."""

if not version_in(CNCF_KUBERNETES_VERSION, SUPPORTED_CNCF_KUBERNETES):
    raise ImportError(
        f"containerkit.operators.kubernetes supports apache-airflow-providers-cncf-kubernetes "
        f"{SUPPORTED_CNCF_KUBERNETES}, found {CNCF_KUBERNETES_VERSION}: install a supported version "
        f"(pip install 'apache-airflow-providers-cncf-kubernetes{SUPPORTED_CNCF_KUBERNETES}') or a "
        "containerkit release that supports it"
    )

XCOM_SIDECAR_PRESET = "xs"
"""Resource preset of the xcom sidecar (it only sleeps and cats one file)."""

_TEMPLATED_IMAGE = "containerkit.invalid/templated-image:rendered-at-run-time"


class _SidecarHardeningHook(KubernetesHook):
    """Connection settings for the xcom sidecar win; without them it gets containerkit's defaults."""

    sidecar_defaults: tuple[dict[str, Any], dict[str, Any]] = ({}, {})

    def get_xcom_sidecar_container_resources(self) -> Any:
        return super().get_xcom_sidecar_container_resources() or self.sidecar_defaults[0]

    def get_xcom_sidecar_container_security_context(self) -> Any:
        return super().get_xcom_sidecar_container_security_context() or self.sidecar_defaults[1]


class _FailFastPodManager(PodManager):
    async def await_pod_start(
        self, pod: V1Pod, schedule_timeout: int = 120, startup_timeout: int = 120, check_interval: int = 1
    ) -> None:
        from containerkit.triggers.kubernetes import await_pod_start

        async def read() -> Any:
            return self.read_pod(pod)

        async def events() -> Sequence[Any]:
            return self.read_pod_events(pod).items or []

        try:
            await await_pod_start(
                read_pod=read,
                read_events=events,
                log=self.log,
                schedule_timeout=schedule_timeout,
                startup_timeout=startup_timeout,
                check_interval=check_interval,
            )
        finally:
            self.stop_watching_events = True


def check_pod(pod: V1Pod | Mapping[str, Any], **kwargs: Any) -> list[Finding]:
    """:func:`containerkit.policy.enforce.check_pod`, imported on first use."""
    from containerkit.policy.enforce import check_pod as check

    return check(pod, **kwargs)


def _sidecar_defaults(profile: SecurityProfile) -> tuple[dict[str, Any], dict[str, Any]]:
    """Resources and security context for the xcom sidecar, rendered from the same profile and presets."""
    from containerkit.kubernetes.manifests import to_dict
    from containerkit.kubernetes.pod import render_pod
    from containerkit.spec import ContainerSpec

    pod = render_pod(
        ContainerSpec(
            image=PodDefaults.SIDECAR_CONTAINER.image, resources=XCOM_SIDECAR_PRESET, security=profile
        ),
        name=None,
    )
    container = pod.spec.containers[0]
    return to_dict(container.resources), to_dict(container.security_context)


class SecureKubernetesPodOperator(KubernetesPodOperator):
    """Run a task in a hardened, sized, policy-checked pod; fail fast with a diagnosis.

    Takes every :class:`~airflow.providers.cncf.kubernetes.operators.pod.KubernetesPodOperator`
    parameter, plus:

    :param spec: a full :class:`~containerkit.spec.ContainerSpec`; ``resources``, ``security``,
        ``secret_refs`` and ``config_map_refs`` given here replace its fields (``image``, a stock
        parameter, wins over the spec's as any stock parameter does).
    :param resources: a preset name (``"xs"`` .. ``"xl"``, default ``"s"``), a mapping of overrides
        (``{"preset": "m", "memory": "3Gi"}``) or :class:`~containerkit.spec.Resources`: requests and
        limits of the base container.
    :param security: ``"restricted"`` (default), ``"baseline"`` or a
        :class:`~containerkit.spec.SecurityProfile`.
    :param secret_refs: :class:`~containerkit.spec.SecretRef` keys delivered as env vars or files.
    :param config_map_refs: :class:`~containerkit.spec.ConfigMapRef` keys delivered as env vars or files.
    :param policy_exemptions: ``{rule_id: reason}``: policy rules this task is exempt from, each with why.
    :param policy_mode: ``enforce`` (error findings fail DAG import), ``warn`` or ``off``; default
        ``[containerkit] policy_mode``.
    :param pin_image_digest: pre-flight: before the pod is created, resolve the (rendered) image tag to a
        digest with the registry (``containerkit.hooks.preflight.pin_image``), fail fast with a
        diagnosis (``ImagePull:not-found`` / ``:unauthorized`` / ``:rate-limited`` / ``:unreachable``)
        and no pod if it cannot be pulled, and launch exactly ``repo@sha256:...`` (policy checks that).
    :param registry_conn_id: the ``containerkit_registry`` connection the pre-flight uses (None:
        anonymous access to the registry the image names). The kubelet still pulls with the pod's
        ``image_pull_secrets``.
    :param fail_fast: stop waiting as soon as the pod's status and events show it can never start.

    Defaults that differ from the stock operator: ``log_events_on_failure=True``,
    ``log_pod_spec_on_failure=False`` (the error carries a diagnosis, not a pod dump) and
    ``startup_check_interval_seconds=2``.
    """

    template_fields: Sequence[str] = tuple(KubernetesPodOperator.template_fields)

    def __init__(
        self,
        *,
        spec: ContainerSpec | None = None,
        resources: str | Mapping[str, Any] | Resources | None = None,
        security: str | SecurityProfile | None = None,
        secret_refs: Sequence[SecretRef] | None = None,
        config_map_refs: Sequence[ConfigMapRef] | None = None,
        policy_exemptions: Mapping[str, str] | None = None,
        policy_mode: Literal["enforce", "warn", "off"] | None = None,
        pin_image_digest: bool = False,
        registry_conn_id: str | None = None,
        fail_fast: bool = True,
        log_events_on_failure: bool = True,
        log_pod_spec_on_failure: bool = False,
        startup_check_interval_seconds: int = 2,
        **kwargs: Any,
    ) -> None:
        from containerkit.operators.validation import check_common, check_env, check_timeout

        check_common(image=kwargs.get("image"), secret_refs=secret_refs, config_map_refs=config_map_refs)
        check_env("env_vars", kwargs.get("env_vars"))
        super().__init__(
            log_events_on_failure=log_events_on_failure,
            log_pod_spec_on_failure=log_pod_spec_on_failure,
            startup_check_interval_seconds=startup_check_interval_seconds,
            **kwargs,
        )
        check_timeout("execution_timeout", self.execution_timeout)
        check_timeout("startup_timeout_seconds", self.startup_timeout_seconds)
        self.policy_mode = policy_mode
        self.policy_exemptions: dict[str, str] = dict(policy_exemptions or {})
        self.pin_image_digest = pin_image_digest
        self.registry_conn_id = registry_conn_id
        self.fail_fast = fail_fast
        self.container_spec = self._make_spec(spec, resources, security, secret_refs, config_map_refs)
        self._diagnosis: Diagnosis | None = None
        self._event_status: str | None = None
        if self.container_spec is not None:
            from containerkit.kubernetes.pod import full_pod_spec

            rendered = full_pod_spec(self.container_spec)
            self._check_policy(self._with_env_vars(rendered), stage="DAG parse (rendered spec)")
            if str(self.container_spec.image) == _TEMPLATED_IMAGE:
                # The image comes from templating, pod_template_file or the user's full_pod_spec: the
                # placeholder must not reach the pod (in the stock merge it would beat the template's).
                rendered.spec.containers[0].image = None
            # The stock precedence holds: operator params > full_pod_spec > pod_template_file;
            # a user's own full_pod_spec is laid over the containerkit render.
            self.full_pod_spec = PodGenerator.reconcile_pods(rendered, self.full_pod_spec)

    def _make_spec(
        self,
        spec: ContainerSpec | None,
        resources: str | Mapping[str, Any] | Resources | None,
        security: str | SecurityProfile | None,
        secret_refs: Sequence[SecretRef] | None,
        config_map_refs: Sequence[ConfigMapRef] | None,
    ) -> ContainerSpec | None:
        from containerkit.spec import ContainerSpec

        changes = spec_changes(
            resources=resources, security=security, secret_refs=secret_refs, config_map_refs=config_map_refs
        )
        if spec is not None:
            return spec.replace(**changes) if changes else spec
        if self.image is None and not changes:
            return None  # the pod comes from pod_template_file / full_pod_spec only: checked at run time
        image = self.image if self.image and "{{" not in self.image else _TEMPLATED_IMAGE
        return ContainerSpec(image=image, **changes)

    def _with_env_vars(self, rendered: V1Pod) -> V1Pod:
        """The rendered pod plus the literal ``env_vars``, so a literal secret is refused at parse too."""
        from containerkit.operators.validation import env_items

        literal = [(n, v) for n, v in env_items(self.env_vars) if isinstance(v, str)]
        if not literal:
            return rendered
        from kubernetes.client import V1EnvVar

        probe = copy.deepcopy(rendered)
        base = probe.spec.containers[0]
        base.env = [*(base.env or []), *(V1EnvVar(name=n, value=v) for n, v in literal)]
        return probe

    # --- policy -------------------------------------------------------------------------------

    def _check_policy(self, pod: V1Pod | Mapping[str, Any], *, stage: str) -> None:
        from containerkit.policy.model import ObjectRef

        ref = ObjectRef(
            kind="Pod",
            name=self.name or self.task_id,
            namespace=self.namespace,
            dag_id=getattr(self, "dag_id", None) or None,
            task_id=self.task_id,
        )
        exemptions = dict(self.policy_exemptions)
        if stage.startswith("DAG parse") and (
            "{{" in (self.image or "") or str(getattr(self.container_spec, "image", "")) == _TEMPLATED_IMAGE
        ):
            # The image is only known after templating or the merge with a pod template: its rules run
            # on the final pod.
            from containerkit.policy.engine import load_rules
            from containerkit.policy.model import REGISTRY

            load_rules("Pod")
            for rule in REGISTRY:
                if rule.id not in exemptions and "Pod" in rule.targets and "image" in rule.title:
                    exemptions[rule.id] = "image known at run time: checked on the final pod"
        check_pod(
            pod,
            mode=self.policy_mode,
            exemptions=exemptions,
            where=f"task {self.task_id!r} pod at {stage}",
            obj=ref,
        )

    @cached_property
    def hook(self) -> KubernetesHook:  # type: ignore[override]
        hook = _SidecarHardeningHook(
            conn_id=self.kubernetes_conn_id,
            in_cluster=self.in_cluster,
            config_file=self.config_file,
            cluster_context=self.cluster_context,
        )
        from containerkit.spec import SecurityProfile

        profile = self.container_spec.security if self.container_spec else SecurityProfile()
        hook.sidecar_defaults = _sidecar_defaults(profile)
        return hook

    def build_pod_request_obj(self, context: Context | None = None, *, dry_run: bool = False) -> V1Pod:
        if self.pin_image_digest and context is not None and not dry_run:
            from containerkit.hooks.preflight import preflight_image

            # Before the build, so the stock merge, pod_mutation_hook and policy all see the pinned image.
            self.image = preflight_image(
                self._base_image(),
                pin_image_digest=self.pin_image_digest,
                registry_conn_id=self.registry_conn_id,
                task_id=self.task_id,
            )
        pod = super().build_pod_request_obj(context, dry_run=dry_run)
        self._check_policy(pod, stage="run time (final pod after merge and pod_mutation_hook)")
        return pod

    def _base_image(self) -> str:
        """The base container's image as the stock merge resolves it: ``image``, else the templates'."""
        if self.image:
            return str(self.image)
        templates = [self.full_pod_spec]
        if self.pod_template_file:
            templates.append(PodGenerator.deserialize_model_file(self.pod_template_file))
        elif self.pod_template_dict:
            templates.append(PodGenerator.deserialize_model_dict(self.pod_template_dict))
        for template in templates:
            for container in (template.spec.containers if template and template.spec else None) or []:
                if container.name == self.base_container_name and container.image not in (
                    None,
                    _TEMPLATED_IMAGE,
                ):
                    return str(container.image)
        from containerkit.errors import SpecError

        raise SpecError(
            "image",
            None,
            "pin_image_digest needs the base container's image",
            "pass image= (or give the base container an image in the spec or pod template)",
        )

    def await_pod_start(self, pod: V1Pod) -> None:
        super().await_pod_start(pod)
        from containerkit.usage.capture import start_pod_usage

        start_pod_usage(self, pod)  # usage sampling while the pod runs (sync mode); never raises

    # --- fail fast ----------------------------------------------------------------------------

    @cached_property
    def pod_manager(self) -> PodManager:
        if not self.fail_fast:
            return PodManager(kube_client=self.client, callbacks=self.callbacks)
        return _FailFastPodManager(kube_client=self.client, callbacks=self.callbacks)

    def defer(
        self, *, trigger: BaseTrigger, method_name: str, kwargs: Any = None, timeout: Any = None
    ) -> Any:
        if type(trigger) is KubernetesPodTrigger:
            from containerkit.triggers.kubernetes import SecureKubernetesPodTrigger

            trigger = SecureKubernetesPodTrigger.from_trigger(trigger, fail_fast=self.fail_fast)
        return super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    # --- evidence and diagnosis ---------------------------------------------------------------

    def _read_remote(self, pod: V1Pod | None) -> V1Pod | None:
        if pod is None or pod.metadata is None or not pod.metadata.name:
            return None
        try:
            return self.client.read_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _evidence(self, remote: V1Pod) -> tuple[list[Any], str | None]:
        """The pod's events and the tail of the base container's log, best effort."""
        from containerkit.diagnostics.kubernetes import LOG_TAIL_LINES

        events: list[Any] = []
        logs: str | None = None
        try:
            events = list(self.pod_manager.read_pod_events(remote).items or [])
        except Exception as exc:
            self.log.warning("Could not read the events of pod %s: %s", remote.metadata.name, exc)
        try:
            logs = self.client.read_namespaced_pod_log(
                remote.metadata.name,
                remote.metadata.namespace,
                container=self.base_container_name,
                tail_lines=LOG_TAIL_LINES,
            )
        except (ApiException, Exception) as exc:
            self.log.debug("No log tail for pod %s: %s", remote.metadata.name, exc)
        return events, logs if isinstance(logs, str) else None

    def _diagnose(self, remote: V1Pod | None, in_flight: BaseException | None) -> Diagnosis:
        """What went wrong: a fail-fast diagnosis, else one from the pod's evidence, else the exception."""
        from containerkit.diagnostics.kubernetes import diagnose_pod
        from containerkit.diagnostics.model import Diagnosis
        from containerkit.triggers.kubernetes import FatalStartup

        if isinstance(in_flight, FatalStartup):
            return in_flight.diagnosis
        if self._diagnosis is not None:
            return self._diagnosis
        timeout_cause = self._timeout_cause(in_flight)
        found = None
        evidence: tuple[str, ...] = ()
        if remote is not None:
            events, logs = self._evidence(remote)
            found = diagnose_pod(remote, events, logs, container=self.base_container_name)
            evidence = tuple(f"event {e.reason}: {e.message}" for e in events[-5:])
        if timeout_cause and (found is None or found.transient):
            cause, summary, fix = timeout_cause
            state = f" ({found.cause}: {found.summary})" if found else ""
            return Diagnosis(cause=cause, summary=summary + state, fix=fix, evidence=evidence)
        if found is not None:
            return found
        message = str(in_flight) if in_flight else "the pod did not succeed"
        phase = remote.status.phase if remote is not None and remote.status else "gone"
        return Diagnosis(
            cause="PodFailed",
            summary=f"pod phase {phase}: {message.splitlines()[0] if message else ''}".strip(),
            fix="read the pod events and task log above",
            evidence=evidence,
        )

    def _timeout_cause(self, in_flight: BaseException | None) -> tuple[str, str, str] | None:
        from airflow.sdk.exceptions import AirflowTaskTimeout

        if isinstance(in_flight, AirflowTaskTimeout) or self._event_status == "timeout":
            from containerkit.diagnostics.timeouts import execution_timeout_diagnosis

            cleaned, left = self._finish_action_outcome()
            found = execution_timeout_diagnosis(self.execution_timeout, cleaned_up=cleaned, left_behind=left)
            return (found.cause, found.summary, found.fix)
        if isinstance(in_flight, PodLaunchTimeoutException):
            return (
                "StartupTimeout",
                f"the pod did not start within {self.startup_timeout_seconds}s",
                "read the pod events; raise startup_timeout_seconds if image pulls are slow",
            )
        return None

    def _finish_action_outcome(self) -> tuple[list[str], list[str]]:
        """What ``on_finish_action`` does to a pod stopped while running: (cleaned up, left behind)."""
        pod = self.pod
        if pod is None or pod.metadata is None:
            return ["no pod had been created yet"], []
        action = str(getattr(self.on_finish_action, "value", self.on_finish_action))
        name = f"pod {pod.metadata.namespace}/{pod.metadata.name}"
        if action in ("delete_pod", "delete_active_pod"):
            return [f"{name} deleted (on_finish_action={action})"], []
        return [], [f"{name} kept (on_finish_action={action})"]

    def _fail(self, diagnosis: Diagnosis) -> ContainerTaskFailed:
        from containerkit.diagnostics.model import ContainerTaskFailed

        self.log.error("containerkit diagnosis:\n%s", diagnosis.render())
        return ContainerTaskFailed(diagnosis, where=f"task {self.task_id}")

    # --- cleanup: evidence first, then the stock deletion, then one exception type -----------

    def cleanup(
        self,
        pod: V1Pod,
        remote_pod: V1Pod,
        xcom_result: dict[Any, Any] | None = None,
        context: Context | None = None,
    ) -> None:
        if self._killed or (pod is None and remote_pod is None):
            # Killed: on_kill removed the pod. No pod: nothing was created (e.g. a policy violation).
            return super().cleanup(pod, remote_pod, xcom_result, context)
        in_flight = sys.exc_info()[1]
        # The stock code passes the pod as it was at creation on the failure path: read it again.
        remote = self._read_remote(remote_pod or pod)
        from containerkit.usage.capture import record_pod_usage

        record_pod_usage(self, remote)  # before the pod is deleted; never raises
        succeeded = (
            remote is not None and remote.status is not None and remote.status.phase == PodPhase.SUCCEEDED
        )
        diagnosis = None
        if in_flight is not None or not succeeded:
            diagnosis = self._diagnose(remote, in_flight)
        try:
            super().cleanup(pod, remote or remote_pod, xcom_result, context)
        except AirflowSkipException:
            raise
        except AirflowException as exc:
            raise self._fail(diagnosis or self._diagnose(remote, exc)) from exc
        if (
            in_flight is not None
            and diagnosis is not None
            and not isinstance(in_flight, AirflowSkipException)
        ):
            raise self._fail(diagnosis) from in_flight

    def trigger_reentry(self, context: Context, event: dict[str, Any]) -> Any:
        from containerkit.diagnostics.model import ContainerTaskFailed
        from containerkit.triggers.kubernetes import diagnosis_from_dict

        self._event_status = event.get("status")
        if event.get("diagnosis"):
            self._diagnosis = diagnosis_from_dict(event["diagnosis"])
            self._fail_fast_reentry(event)
        try:
            return super().trigger_reentry(context, event)
        except (AirflowSkipException, ContainerTaskFailed):
            raise
        except AirflowException as exc:
            remote = self._read_remote(self.pod)
            raise self._fail(self._diagnose(remote, exc)) from exc

    def _fail_fast_reentry(self, event: dict[str, Any]) -> None:
        """The trigger stopped a pod that cannot start: log, delete per on_finish_action, raise."""
        assert self._diagnosis is not None
        try:
            self.pod = self.hook.get_pod(event["name"], event["namespace"])
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.pod = None
        if self.pod is not None:
            if self.log_events_on_failure:
                self._read_pod_container_states(self.pod, reraise=False)
                self._read_pod_events(self.pod, reraise=False)
            self.patch_already_checked(self.pod, reraise=False)
            self.process_pod_deletion(self.pod, reraise=False)
        raise self._fail(self._diagnosis)

    def on_kill(self) -> None:
        if self.pod is not None and not self._killed:
            from containerkit.diagnostics.kubernetes import diagnose_pod

            remote = self._read_remote(self.pod)
            if remote is not None:
                events, logs = self._evidence(remote)
                found = diagnose_pod(remote, events, logs, container=self.base_container_name)
                phase = remote.status.phase if remote.status else "?"
                self.log.warning("Task killed; pod %s was %s", remote.metadata.name, phase)
                for e in events:
                    self.log.info("Pod Event: %s - %s", e.reason, e.message)
                if found:
                    self.log.warning("containerkit diagnosis at kill:\n%s", found.render())
        super().on_kill()
