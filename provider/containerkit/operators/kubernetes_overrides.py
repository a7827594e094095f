"""Every stock method the Kubernetes operator, trigger and pod managers still override, and why.

The one list: ``tests/unit/test_kpo_overrides.py`` checks that each class defines no other stock
name, and pins a hash of each overridden stock method's source for the supported stock versions,
so an upgrade of ``apache-airflow-providers-cncf-kubernetes`` (or of Airflow's task SDK, for
``resume_execution``) fails that test at every override to re-read. After re-reading, add the new
version's hashes (``python -m containerkit.operators.kubernetes_overrides`` prints them).

Where the stock provider has an extension point it is used instead of an override: the final-pod
policy check is a ``KubernetesPodOperatorCallback.on_pod_manifest_created``
(:class:`~containerkit.operators.kubernetes.FinalPodPolicy`).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import version

__all__ = ["OVERRIDES", "PINNED", "Override", "source_hash", "stock_versions"]

_KPO = "airflow.providers.cncf.kubernetes.operators.pod:KubernetesPodOperator"
_TRIGGER = "airflow.providers.cncf.kubernetes.triggers.pod:KubernetesPodTrigger"
_HOOK = "airflow.providers.cncf.kubernetes.hooks.kubernetes:KubernetesHook"
_MANAGER = "airflow.providers.cncf.kubernetes.utils.pod_manager:PodManager"
_ASYNC_MANAGER = "airflow.providers.cncf.kubernetes.utils.pod_manager:AsyncPodManager"
_BASE_OPERATOR = "airflow.sdk.bases.operator:BaseOperator"

_OPERATOR = "containerkit.operators.kubernetes:SecureKubernetesPodOperator"
_SECURE_TRIGGER = "containerkit.triggers.kubernetes:SecureKubernetesPodTrigger"
_SIDECAR_HOOK = "containerkit.operators.kubernetes:_SidecarHardeningHook"
_FAIL_FAST = "containerkit.triggers.kubernetes:FailFastPodManager"
_ASYNC_FAIL_FAST = "containerkit.triggers.kubernetes:FailFastAsyncPodManager"

PROVIDER = "apache-airflow-providers-cncf-kubernetes"
TASK_SDK = "apache-airflow-task-sdk"


@dataclass(frozen=True)
class Override:
    """``ours`` (``module:Class``) overrides ``stock`` (``module:Class``) ``.name``, for ``reason``."""

    ours: str
    stock: str
    name: str
    reason: str
    distribution: str = PROVIDER

    @property
    def key(self) -> str:
        return f"{self.stock.rsplit(':', 1)[1]}.{self.name}"


OVERRIDES: tuple[Override, ...] = (
    Override(
        _OPERATOR,
        _KPO,
        "__init__",
        "renders the ContainerSpec into full_pod_spec, checks parameters and policy at DAG parse, "
        "registers FinalPodPolicy",
    ),
    Override(_OPERATOR, _KPO, "hook", "the xcom sidecar gets the spec's security context and xs resources"),
    Override(
        _OPERATOR,
        _KPO,
        "build_pod_request_obj",
        "the image pre-flight (pin_image_digest) runs on the rendered image before the stock merge, so "
        "the merge, pod_mutation_hook and policy see the pinned image (no extension point before the merge)",
    ),
    Override(_OPERATOR, _KPO, "await_pod_start", "starts usage sampling once the pod runs (sync mode)"),
    Override(_OPERATOR, _KPO, "pod_manager", "the fail-fast pod manager (FailFastPodManager)"),
    Override(
        _OPERATOR,
        _BASE_OPERATOR,
        "defer",
        "swaps the stock trigger for SecureKubernetesPodTrigger",
        distribution=TASK_SDK,
    ),
    Override(
        _OPERATOR, _KPO, "execute", "the entry point a sync or deferring failure leaves through: diagnosed"
    ),
    Override(
        _OPERATOR,
        _KPO,
        "trigger_reentry",
        "fail-fast events end in their diagnosis; failures are diagnosed, from the trigger's final "
        "event when the pod is gone",
    ),
    Override(
        _OPERATOR,
        _KPO,
        "get_or_create_pod",
        "worker loss: logs the evidence of pods earlier tries left, deletes them or says it re-attaches",
    ),
    Override(
        _OPERATOR,
        _KPO,
        "cleanup",
        "reads the pod's evidence (status, events, log tail) and usage before the stock deletion",
    ),
    Override(_OPERATOR, _KPO, "on_kill", "logs the pod's evidence before the stock deletion"),
    Override(
        _OPERATOR,
        _BASE_OPERATOR,
        "partial",
        "dynamic task mapping: resources travels as spec_resources; BaseOperator's own resources "
        "(executor resources) would deserialize a preset name and break the DAG",
        distribution=TASK_SDK,
    ),
    Override(
        _OPERATOR,
        _BASE_OPERATOR,
        "resume_execution",
        "__fail__ (trigger timeout or crash): the stock path raises and leaves the pod; it is read and "
        "deleted first",
        distribution=TASK_SDK,
    ),
    Override(
        _SIDECAR_HOOK,
        _HOOK,
        "get_xcom_sidecar_container_resources",
        "containerkit's sidecar resources unless the connection sets them",
    ),
    Override(
        _SIDECAR_HOOK,
        _HOOK,
        "get_xcom_sidecar_container_security_context",
        "containerkit's sidecar security context unless the connection sets it",
    ),
    Override(_FAIL_FAST, _MANAGER, "await_pod_start", "stops at the first fatal diagnosis (sync adapter)"),
    Override(
        _ASYNC_FAIL_FAST,
        _ASYNC_MANAGER,
        "await_pod_start",
        "stops at the first fatal diagnosis (deferrable adapter)",
    ),
    Override(
        _SECURE_TRIGGER, _TRIGGER, "__init__", "takes fail_fast (stop at the first fatal diagnosis, or not)"
    ),
    Override(_SECURE_TRIGGER, _TRIGGER, "serialize", "its own classpath and fail_fast"),
    Override(_SECURE_TRIGGER, _TRIGGER, "pod_manager", "the fail-fast async pod manager"),
    Override(
        _SECURE_TRIGGER, _TRIGGER, "_wait_for_pod_start", "turns FatalStartup into a failed container state"
    ),
    Override(
        _SECURE_TRIGGER,
        _TRIGGER,
        "run",
        "failed events carry the fail-fast or final diagnosis (for a reentry whose pod is gone)",
    ),
    Override(
        _SECURE_TRIGGER,
        _TRIGGER,
        "on_kill",
        "a user's cancel logs the pod's evidence, keeps it for keep_pod, else deletes it",
    ),
)

PINNED: dict[str, dict[str, str]] = {
    "apache-airflow-providers-cncf-kubernetes==10.25.0": {
        "AsyncPodManager.await_pod_start": "144cf49e84016f3b",
        "KubernetesHook.get_xcom_sidecar_container_resources": "9a1a2c717a94cf80",
        "KubernetesHook.get_xcom_sidecar_container_security_context": "ded9a3fbf7f2a50d",
        "KubernetesPodOperator.__init__": "042c03ff526d213a",
        "KubernetesPodOperator.await_pod_start": "488d69ab159edefd",
        "KubernetesPodOperator.build_pod_request_obj": "555ac78f3dac1ed2",
        "KubernetesPodOperator.cleanup": "7feaea493517ce23",
        "KubernetesPodOperator.execute": "cac5eecac0ad7d41",
        "KubernetesPodOperator.get_or_create_pod": "33994f1fad30683b",
        "KubernetesPodOperator.hook": "6d1b8878492571a1",
        "KubernetesPodOperator.on_kill": "9d72b38e54dedb03",
        "KubernetesPodOperator.pod_manager": "949ec821a404ea7b",
        "KubernetesPodOperator.trigger_reentry": "0ffa7eaa65d41d2d",
        "KubernetesPodTrigger.__init__": "d585fe6fb14219f6",
        "KubernetesPodTrigger._wait_for_pod_start": "404e636cf9b83d02",
        "KubernetesPodTrigger.on_kill": "b33e69687e4dc524",
        "KubernetesPodTrigger.pod_manager": "884aac6d19abcaf5",
        "KubernetesPodTrigger.run": "fb3cc510c9ef971a",
        "KubernetesPodTrigger.serialize": "414e29f8b13d66fd",
        "PodManager.await_pod_start": "a3623f2e0955d48f",
    },
    "apache-airflow-task-sdk==1.3.2": {
        "BaseOperator.defer": "ddfa0545e56bdbc1",
        "BaseOperator.partial": "9a11257094db76ab",
        "BaseOperator.resume_execution": "4c0db3b83420817c",
    },
}
"""sha256 (first 16 hex) of each overridden stock member's source, per stock distribution version."""


def _resolve(path: str) -> type:
    module, name = path.split(":")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type)
    return cls


def _stock_member(override: Override) -> object:
    member = vars(_resolve(override.stock)).get(override.name)
    if member is None:  # defined further up: name the class that defines it
        raise LookupError(f"{override.stock} does not itself define {override.name!r}")
    if isinstance(member, cached_property):
        return member.func
    if isinstance(member, property):
        return member.fget
    wrapped = getattr(member, "class_method", None)  # BaseOperator.partial: a descriptor around one
    if isinstance(wrapped, classmethod):
        member = wrapped
    if isinstance(member, staticmethod | classmethod):
        return member.__func__
    return member


def source_hash(override: Override) -> str:
    """The stock member's source, hashed (the pin the unit test compares)."""
    source = inspect.getsource(_stock_member(override))  # type: ignore[arg-type]
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def stock_versions() -> dict[str, str]:
    """The installed version of each stock distribution an override reads: ``{name: "name==x.y.z"}``."""
    return {dist: f"{dist}=={version(dist)}" for dist in {o.distribution for o in OVERRIDES}}


def current_hashes() -> dict[str, dict[str, str]]:
    installed = stock_versions()
    out: dict[str, dict[str, str]] = {}
    for override in OVERRIDES:
        out.setdefault(installed[override.distribution], {})[override.key] = source_hash(override)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(current_hashes(), indent=4, sort_keys=True))
