"""``SecureKubernetesPodOperator``: KubernetesPodOperator with hardened pods, policy and fast diagnoses.

It subclasses the stock operator (every stock parameter keeps working: templating, deferrable mode,
xcom, callbacks, durable reattach, ``pod_template_file``). Where the stock provider has an extension
point it is used (:class:`FinalPodPolicy`, a ``KubernetesPodOperatorCallback``, checks the final pod);
every stock method still overridden, and why, is listed in :mod:`containerkit.operators.kubernetes_overrides`
(a unit test pins each one's stock source). In short:

* ``__init__`` renders a :class:`~containerkit.spec.ContainerSpec` (hardened profile, resource preset)
  as the base ``full_pod_spec`` and enforces policy on it at DAG parse time;
* ``on_pod_manifest_created`` (callback) enforces policy again on the *final* pod (after the stock
  merge, the xcom sidecar and ``pod_mutation_hook``), before the pod is created and so before any pull;
* ``get_or_create_pod`` first deals with the pods earlier tries of the task instance left behind
  (a killed worker): their evidence goes to this try's log, then they are deleted or re-attached;
* the pod manager / the trigger stop at the first fatal diagnosis instead of waiting
  ``startup_timeout_seconds`` (:mod:`containerkit.triggers.kubernetes`);
* ``cleanup`` reads the evidence (status, events, log tail) before the pod is deleted; ``execute``,
  ``trigger_reentry`` and ``resume_execution`` turn every failure into one
  :class:`~containerkit.diagnostics.ContainerTaskFailed`
  (:mod:`containerkit.diagnostics.kubernetes_evidence`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from airflow.providers.cncf.kubernetes import __version__ as CNCF_KUBERNETES_VERSION
from airflow.providers.cncf.kubernetes.callbacks import KubernetesPodOperatorCallback
from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger
from airflow.providers.cncf.kubernetes.utils.pod_manager import PodManager
from airflow.providers.cncf.kubernetes.utils.xcom_sidecar import PodDefaults
from kubernetes.client import V1Pod
from kubernetes.client.exceptions import ApiException

from containerkit.operators.spec_params import for_mapping, one_resources, spec_changes
from containerkit.operators.templating import TEMPLATED_IMAGE, is_templated
from containerkit.operators.versions import version_in

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

    from containerkit.diagnostics.kubernetes_evidence import PodEvidence
    from containerkit.diagnostics.model import ContainerTaskFailed, Diagnosis
    from containerkit.policy.model import Finding
    from containerkit.spec import ConfigMapRef, ContainerSpec, Resources, SecretRef, SecurityProfile

# Only what the class definitions need is imported above (the stock operator's own modules); the spec,
# renderer, policy, diagnostics and trigger modules load on first use, so importing this module for a
# DAG file adds little on top of importing KubernetesPodOperator.

__all__ = ["SUPPORTED_CNCF_KUBERNETES", "FinalPodPolicy", "SecureKubernetesPodOperator"]

SUPPORTED_CNCF_KUBERNETES = ">=10.25.0,<10.26"
"""The provider versions whose internals this module overrides (listed, with their source hashes, in
:mod:`containerkit.operators.kubernetes_overrides`). Widen only after re-reading them."""

if not version_in(CNCF_KUBERNETES_VERSION, SUPPORTED_CNCF_KUBERNETES):
    raise ImportError(
        f"containerkit.operators.kubernetes supports apache-airflow-providers-cncf-kubernetes "
        f"{SUPPORTED_CNCF_KUBERNETES}, found {CNCF_KUBERNETES_VERSION}: install a supported version "
        f"(pip install 'apache-airflow-providers-cncf-kubernetes{SUPPORTED_CNCF_KUBERNETES}') or a "
        "containerkit release that supports it"
    )


_ACTIVE_PHASES = ("Pending", "Running", "Unknown")
_T = TypeVar("_T")


class _SidecarHardeningHook(KubernetesHook):
    """Connection settings for the xcom sidecar win; without them it gets containerkit's defaults."""

    sidecar_defaults: tuple[dict[str, Any], dict[str, Any]] = ({}, {})

    def get_xcom_sidecar_container_resources(self) -> Any:
        return super().get_xcom_sidecar_container_resources() or self.sidecar_defaults[0]

    def get_xcom_sidecar_container_security_context(self) -> Any:
        return super().get_xcom_sidecar_container_security_context() or self.sidecar_defaults[1]


class FinalPodPolicy(KubernetesPodOperatorCallback):
    """Policy on the final pod manifest, at the stock ``on_pod_manifest_created`` extension point.

    The stock operator calls it, sync and deferrable, after ``build_pod_request_obj`` and before the
    pod is created: a stock parameter, a pod template or ``pod_mutation_hook`` that weakens the pod,
    or a templated image that renders to ``:latest``, is refused before anything is pulled.
    """

    @staticmethod
    def on_pod_manifest_created(*, pod_request: V1Pod, operator: Any, **kwargs: Any) -> None:
        if isinstance(operator, SecureKubernetesPodOperator):
            operator.check_policy(pod_request, stage="run time (final pod after merge and pod_mutation_hook)")


def check_pod(pod: V1Pod | Mapping[str, Any], **kwargs: Any) -> list[Finding]:
    """:func:`containerkit.policy.enforce.check_pod`, imported on first use."""
    from containerkit.policy.enforce import check_pod as check

    return check(pod, **kwargs)


def _sidecar_defaults(profile: SecurityProfile) -> tuple[dict[str, Any], dict[str, Any]]:
    """Resources and security context for the xcom sidecar, rendered from the same profile and presets."""
    from containerkit.kubernetes.manifests import to_dict
    from containerkit.kubernetes.pod import render_pod
    from containerkit.spec import ContainerSpec
    from containerkit.spec.resources import SIDECAR_PRESET  # the xcom sidecar only sleeps and cats a file

    pod = render_pod(
        ContainerSpec(image=PodDefaults.SIDECAR_CONTAINER.image, resources=SIDECAR_PRESET, security=profile),
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
    :param spec_resources: the same as ``resources``; :meth:`partial` stores ``resources`` under this
        name (``BaseOperator`` has a ``resources`` of its own that a mapped task's would be read as).
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
        spec_resources: str | Mapping[str, Any] | Resources | None = None,
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
        resources = one_resources(resources, spec_resources)
        self.container_spec = self._make_spec(spec, resources, security, secret_refs, config_map_refs)
        self._diagnosis: Diagnosis | None = None
        self._event: dict[str, Any] = {}
        self._evidence: PodEvidence | None = None
        if FinalPodPolicy not in self.callbacks:
            # The final-pod policy check runs at the stock extension point, after the manifest is built
            # (stock merge, xcom sidecar, pod_mutation_hook) and before anything is created.
            self.callbacks = [*self.callbacks, FinalPodPolicy]
        if self.container_spec is not None:
            from containerkit.kubernetes.pod import full_pod_spec

            rendered = full_pod_spec(self.container_spec)
            self.check_policy(self._with_env_vars(rendered), stage="DAG parse (rendered spec)")
            if str(self.container_spec.image) == TEMPLATED_IMAGE:
                # The image comes from templating, pod_template_file or the user's full_pod_spec: the
                # placeholder must not reach the pod (in the stock merge it would beat the template's).
                rendered.spec.containers[0].image = None
            # The stock precedence holds: operator params > full_pod_spec > pod_template_file;
            # a user's own full_pod_spec is laid over the containerkit render.
            self.full_pod_spec = PodGenerator.reconcile_pods(rendered, self.full_pod_spec)

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:  # type: ignore[override]
        """The stock ``partial`` (dynamic task mapping), with ``resources`` kept as the container's
        (it travels as ``spec_resources``, :data:`~containerkit.operators.spec_params.MAPPED_RESOURCES`)."""
        return super().partial(**for_mapping(kwargs))

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
        image = self.image if self.image and not is_templated(self.image) else TEMPLATED_IMAGE
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

    def check_policy(self, pod: V1Pod | Mapping[str, Any], *, stage: str) -> None:
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
            is_templated(self.image) or str(getattr(self.container_spec, "image", "")) == TEMPLATED_IMAGE
        ):
            # The image is only known after templating or the merge with a pod template: its rules run
            # on the final pod.
            from containerkit.policy.engine import load_rules
            from containerkit.policy.model import IMAGE, REGISTRY

            load_rules("Pod")
            for rule in REGISTRY.about(IMAGE, "Pod"):
                exemptions.setdefault(rule.id, "image known at run time: checked on the final pod")
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
        """The stock build, after the image pre-flight (so the merge and policy see the pinned image)."""
        if self.pin_image_digest and context is not None and not dry_run:
            from containerkit.hooks.preflight import preflight_image

            # Before the build, so the stock merge, pod_mutation_hook and policy all see the pinned image.
            self.image = preflight_image(
                self._base_image(),
                pin_image_digest=self.pin_image_digest,
                registry_conn_id=self.registry_conn_id,
                task_id=self.task_id,
            )
        return super().build_pod_request_obj(context, dry_run=dry_run)

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
                    TEMPLATED_IMAGE,
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
        from containerkit.triggers.kubernetes import FailFastPodManager

        return FailFastPodManager(kube_client=self.client, callbacks=self.callbacks)

    def defer(
        self, *, trigger: BaseTrigger, method_name: str, kwargs: Any = None, timeout: Any = None
    ) -> Any:
        if type(trigger) is KubernetesPodTrigger:
            from containerkit.triggers.kubernetes import SecureKubernetesPodTrigger

            trigger = SecureKubernetesPodTrigger.from_trigger(trigger, fail_fast=self.fail_fast)
        return super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    # --- entry points: every failure becomes one ContainerTaskFailed ---------------------------

    def execute(self, context: Context) -> Any:
        self._evidence = None
        return self._diagnosed(lambda: super(SecureKubernetesPodOperator, self).execute(context))

    def trigger_reentry(self, context: Context, event: dict[str, Any]) -> Any:
        from containerkit.triggers.kubernetes import FAIL_FAST_KEY, diagnosis_from_dict

        self._event = dict(event)
        self._evidence = None
        if event.get(FAIL_FAST_KEY):
            self._diagnosis = diagnosis_from_dict(event[FAIL_FAST_KEY])
            self._fail_fast_reentry(event)
        result = self._diagnosed(
            lambda: super(SecureKubernetesPodOperator, self).trigger_reentry(context, event)
        )
        if result is None and self.pod is None and self.do_xcom_push and event.get("status") == "success":
            # The stock reentry returns None when the pod is gone: right for a task without a result,
            # a silent loss of the return value otherwise (apache/airflow #73117). Fail: a retry recreates it.
            raise self._fail(_result_lost(event))
        return result

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """``__fail__`` (the trigger timed out or crashed): the stock path leaves the pod; delete it first."""
        from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR

        if next_method != TRIGGER_FAIL_REPR:
            return super().resume_execution(next_method, next_kwargs, context)
        self._evidence = None
        self._clean_after_trigger_failure(context)
        return self._diagnosed(
            lambda: super(SecureKubernetesPodOperator, self).resume_execution(
                next_method, next_kwargs, context
            )
        )

    def _diagnosed(self, call: Callable[[], _T]) -> _T:
        """Run ``call``; a failure after a pod existed leaves as ContainerTaskFailed with the diagnosis."""
        from airflow.sdk.exceptions import AirflowTaskTerminated, TaskDeferred

        from containerkit.diagnostics.model import ContainerTaskFailed

        try:
            return call()
        except (TaskDeferred, ContainerTaskFailed, AirflowTaskTerminated):
            raise
        except BaseException as exc:
            from airflow.providers.common.compat.sdk import AirflowSkipException

            if isinstance(
                exc, AirflowSkipException | KeyboardInterrupt | SystemExit
            ) or not self._diagnosable(exc):
                raise
            raise self._fail(self._diagnose(exc)) from exc

    def _diagnosable(self, exc: BaseException) -> bool:
        """A pod was created (or the trigger watched one): the failure is the pod's, diagnose it."""
        if self._killed:
            return False  # on_kill already logged the evidence and removed the pod; stock error stays
        if self.pod is not None or self._event or self._evidence is not None:
            return True
        from containerkit.diagnostics.kubernetes_evidence import exception_chain

        return any(getattr(e, "diagnosis", None) is not None for e in exception_chain(exc))

    def _diagnose(self, exc: BaseException | None) -> Diagnosis:
        from containerkit.diagnostics.kubernetes_evidence import (
            diagnose_failure,
            read_evidence,
            timeout_diagnosis,
        )
        from containerkit.triggers.kubernetes import FINAL_KEY, diagnosis_from_dict

        evidence = self._evidence
        if evidence is None and self.pod is not None:
            evidence = read_evidence(self.client, self.pod, container=self.base_container_name)
        known = self._diagnosis
        if known is None and evidence is None and self._event.get(FINAL_KEY):
            # The pod is gone (garbage-collected) by reentry: the trigger's final event says why it failed.
            known = diagnosis_from_dict(self._event[FINAL_KEY])
        timeout = timeout_diagnosis(
            exc,
            event_status=self._event.get("status"),
            event_message=self._event.get("message"),
            execution_timeout=self.execution_timeout,
            startup_timeout_seconds=self.startup_timeout_seconds,
            pod=self.pod or (evidence.pod if evidence is not None else None),
            on_finish_action=self.on_finish_action,
        )
        return diagnose_failure(evidence, exc, timeout=timeout, known=known)

    def _fail(self, diagnosis: Diagnosis) -> ContainerTaskFailed:
        from containerkit.diagnostics.model import ContainerTaskFailed

        self.log.error("containerkit diagnosis:\n%s", diagnosis.render())
        return ContainerTaskFailed(diagnosis, where=f"task {self.task_id}")

    # --- worker loss: pods of earlier tries ------------------------------------------------------

    def get_or_create_pod(self, pod_request_obj: V1Pod, context: Context) -> V1Pod:
        self._handle_earlier_tries(pod_request_obj.metadata.namespace, context)
        return super().get_or_create_pod(pod_request_obj, context)

    def _ti_pods(self, namespace: str, context: Context) -> list[V1Pod]:
        """The unchecked pods of this task instance (any try), by the stock reattach labels."""
        selector = self._build_find_pod_label_selector(context, exclude_checked=True)
        return list(self.client.list_namespaced_pod(namespace=namespace, label_selector=selector).items or [])

    def _handle_earlier_tries(self, namespace: str, context: Context) -> None:
        """Worker loss: log the evidence of every pod an earlier try left, then delete it or re-attach.

        At the start of a try no pod of its own exists yet, so every unchecked pod with this task
        instance's labels (dag_id, task_id, run_id, map_index) was left by an earlier try whose process
        died before its cleanup (``kill -9``, a lost node). The one still running is re-attached when
        stock ``reattach_on_restart`` applies; every other is deleted per ``on_finish_action`` (a
        running one is stopped, unless ``keep_pod``), and a kept one is labelled ``already_checked``
        so that it is neither re-attached nor found again.
        """
        from containerkit.diagnostics.kubernetes_evidence import evidence_of

        try:
            pods = self._ti_pods(namespace, context)
        except ApiException as exc:  # never fail a try over the search
            self.log.warning("Could not look for pods of earlier tries: %s", exc)
            return
        if not pods:
            return
        active = [p for p in pods if _is_active(p)]
        reattach = active[0].metadata.name if self.reattach_on_restart and len(active) == 1 else None
        current = context["ti"].try_number
        for pod in pods:
            labels = pod.metadata.labels or {}
            evidence = evidence_of(self.client, pod, container=self.base_container_name)
            self.log.warning(
                "Found a pod of an earlier try (try_number %s) of this task instance at the start of "
                "try %s (its worker was lost?):\n%s",
                labels.get("try_number", "?"),
                current,
                evidence.describe(),
            )
            if pod.metadata.name == reattach:
                self.log.warning(
                    "Re-attaching to pod %s/%s, still %s, as stock reattach_on_restart does: this try "
                    "follows it to the end instead of starting a new pod",
                    pod.metadata.namespace,
                    pod.metadata.name,
                    pod.status.phase if pod.status else "?",
                )
                continue
            self._remove_earlier_pod(pod)

    def _remove_earlier_pod(self, pod: V1Pod) -> None:
        """Delete a pod nothing watches any more, per ``on_finish_action``; label a kept one checked.

        The ``already_checked`` label goes on first: a deleted pod lingers while it terminates, and
        the stock label search (reattach, ``find_pod``) must not find it again meanwhile.
        """
        name = f"{pod.metadata.namespace}/{pod.metadata.name}"
        action = str(getattr(self.on_finish_action, "value", self.on_finish_action))
        self.patch_already_checked(pod, reraise=False)
        if _is_active(pod) and action != "keep_pod":
            self.log.warning("Deleting pod %s of an earlier try: nothing watches it any more", name)
            try:
                self.pod_manager.delete_pod(pod)
            except ApiException as exc:  # never fail a try over a pod it does not own
                self.log.warning("Could not delete pod %s of an earlier try: %s", name, exc)
            return
        if self.process_pod_deletion(pod, reraise=False):
            self.log.warning("Deleted pod %s of an earlier try (on_finish_action=%s)", name, action)
            return
        self.log.warning(
            "Kept pod %s of an earlier try (on_finish_action=%s), labelled already_checked: delete it "
            "when done with it",
            name,
            action,
        )

    def _clean_after_trigger_failure(self, context: Context) -> None:
        """The trigger timed out or crashed (``__fail__``): read this try's pod, then delete it per policy."""
        from containerkit.diagnostics.kubernetes_evidence import evidence_of

        namespace = self.namespace or self.hook.get_namespace() or "default"
        try:
            ours = [
                p
                for p in self._ti_pods(namespace, context)
                if (p.metadata.labels or {}).get("try_number") == str(context["ti"].try_number)
            ]
        except ApiException as exc:
            self.log.warning("Could not look for the pod of this try after the trigger failed: %s", exc)
            return
        for pod in ours:
            self.pod = pod
            self._evidence = evidence_of(self.client, pod, container=self.base_container_name)
            if self._evidence is not None:
                self.log.warning("The trigger failed; pod evidence:\n%s", self._evidence.describe())
            self._remove_earlier_pod(pod)

    # --- cleanup: evidence first, then the stock deletion ----------------------------------------

    def cleanup(
        self,
        pod: V1Pod,
        remote_pod: V1Pod,
        xcom_result: dict[Any, Any] | None = None,
        context: Context | None = None,
    ) -> None:
        """Read the pod's evidence before the stock cleanup deletes it.

        The diagnosis is made by the entry point the failure leaves through (:meth:`_diagnosed`),
        from this evidence and the exception it catches, so nothing here depends on the caller's
        exception state.
        """
        if self._killed or self.pod is None:
            # Killed: on_kill removed the pod. No pod: nothing was created (e.g. a policy violation).
            return super().cleanup(pod, remote_pod, xcom_result, context)
        from containerkit.diagnostics.kubernetes_evidence import PodEvidence, evidence_of, read_pod
        from containerkit.usage.capture import record_pod_usage

        # The stock code passes the pod as it was at creation on the failure path: read it again.
        remote = read_pod(self.client, remote_pod or pod)
        record_pod_usage(self, remote)  # before the pod is deleted; never raises
        if remote is None:
            self._evidence = None
        elif remote.status is not None and remote.status.phase == "Succeeded":
            self._evidence = PodEvidence(pod=remote, container=self.base_container_name)
        else:
            self._evidence = evidence_of(self.client, remote, container=self.base_container_name)
        super().cleanup(pod, remote or remote_pod, xcom_result, context)

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
            from containerkit.diagnostics.kubernetes_evidence import read_evidence

            evidence = read_evidence(self.client, self.pod, container=self.base_container_name)
            if evidence is not None:
                self.log.warning("Task killed; pod %s was %s", evidence.pod.metadata.name, evidence.phase)
                for e in evidence.events:
                    self.log.info("Pod Event: %s - %s", e.reason, e.message)
                if evidence.diagnosis:
                    self.log.warning("containerkit diagnosis at kill:\n%s", evidence.diagnosis.render())
        super().on_kill()


def _result_lost(event: Mapping[str, Any]) -> Diagnosis:
    from containerkit.diagnostics.model import Diagnosis

    name = f"{event.get('namespace')}/{event.get('name')}"
    return Diagnosis(
        cause="PodGone:result-lost",
        summary=f"pod {name} succeeded (the trigger saw it) but was deleted before its XCom return value "
        "was read",
        fix="a retry runs the pod again; keep completed pods until Airflow reads them (check what deletes "
        "them early: a pod GC or TTL policy, a node drain)",
        evidence=(f"trigger event: status=success for pod {name}",),
    )


def _is_active(pod: V1Pod) -> bool:
    """Not finished: stock reattach follows such a pod; it is not evicted."""
    status = pod.status
    phase = status.phase if status is not None else None
    reason = (status.reason or "").lower() if status is not None else ""
    return (phase in _ACTIVE_PHASES or phase is None) and reason != "evicted"
