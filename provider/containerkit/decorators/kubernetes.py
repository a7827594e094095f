"""``@task.secure_kubernetes``: a TaskFlow function run in a SecureKubernetesPodOperator pod.

The stock ``@task.kubernetes`` puts the function's source and its pickled arguments, base64, into
env vars: anyone who can read the pod spec (``kubectl get pod -o yaml``, the audit log, the events)
can read them, arguments included. Here they travel in a per-task Secret instead:

1. the Secret (``script.py``, ``input.pkl``) is created first, so the pod never starts without it;
2. the pod mounts it read-only (``optional: false``) and runs ``python script.py input.pkl out``;
3. once the pod exists the Secret gets an ``ownerReference`` to it, so Kubernetes garbage-collects the
   Secret with the pod even if the worker dies; the operator also deletes it after the pod.

The pod spec holds only the Secret's name. The return value comes back as XCom through the xcom
sidecar, as with the stock decorator.
"""

from __future__ import annotations

import base64
import pickle
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.python_kubernetes_script import write_python_script
from airflow.providers.common.compat.sdk import DecoratedOperator, TaskDecorator, task_decorator_factory
from kubernetes.client import models as k8s
from kubernetes.client.exceptions import ApiException

from containerkit.operators.kubernetes import SecureKubernetesPodOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["TASK_MOUNT_PATH", "TASK_VOLUME", "secure_kubernetes_task"]

TASK_VOLUME = "containerkit-task"
TASK_MOUNT_PATH = "/containerkit/task"
_SCRIPT_KEY = "script.py"
_INPUT_KEY = "input.pkl"


class _SecureKubernetesDecoratedOperator(DecoratedOperator, SecureKubernetesPodOperator):
    custom_operator_name = "@task.secure_kubernetes"

    template_fields: Sequence[str] = tuple(
        {"op_args", "op_kwargs", *SecureKubernetesPodOperator.template_fields} - {"cmds", "arguments"}
    )
    shallow_copy_attrs: Sequence[str] = ("python_callable",)

    def __init__(self, namespace: str | None = None, **kwargs: Any) -> None:
        op_name = kwargs.pop("name", f"ck-{kwargs['python_callable'].__name__}".replace("_", "-").lower())
        random_name_suffix = kwargs.pop("random_name_suffix", True)
        super().__init__(
            namespace=namespace,
            name=op_name,
            random_name_suffix=random_name_suffix,
            cmds=["python"],
            **kwargs,
        )
        self._task_secret: str | None = None

    def _payload(self) -> dict[str, bytes]:
        with TemporaryDirectory(prefix="ck-task") as tmp:
            script = Path(tmp, _SCRIPT_KEY)
            write_python_script(
                jinja_context={
                    "op_args": self.op_args,
                    "op_kwargs": self.op_kwargs,
                    "pickling_library": "pickle",
                    "python_callable": self.python_callable.__name__,
                    "python_callable_source": self.get_python_source(),
                    "string_args_global": False,
                },
                filename=str(script),
            )
            return {
                _SCRIPT_KEY: script.read_bytes(),
                _INPUT_KEY: pickle.dumps({"args": self.op_args, "kwargs": self.op_kwargs}),
            }

    def execute(self, context: Context) -> Any:
        self._task_secret = f"ck-task-{uuid.uuid4().hex[:12]}"
        output = "/airflow/xcom/return.json" if self.do_xcom_push else "/dev/null"
        self.cmds = ["python", f"{TASK_MOUNT_PATH}/{_SCRIPT_KEY}", f"{TASK_MOUNT_PATH}/{_INPUT_KEY}", output]
        self.arguments = []
        self.volumes = [
            *self.volumes,
            k8s.V1Volume(
                name=TASK_VOLUME,
                secret=k8s.V1SecretVolumeSource(
                    secret_name=self._task_secret, optional=False, default_mode=0o444
                ),
            ),
        ]
        self.volume_mounts = [
            *self.volume_mounts,
            k8s.V1VolumeMount(name=TASK_VOLUME, mount_path=TASK_MOUNT_PATH, read_only=True),
        ]
        return super().execute(context)

    def get_or_create_pod(self, pod_request_obj: k8s.V1Pod, context: Context) -> k8s.V1Pod:
        namespace = pod_request_obj.metadata.namespace
        secret = self._task_secret
        assert secret is not None
        self.client.create_namespaced_secret(
            namespace,
            k8s.V1Secret(
                api_version="v1",
                kind="Secret",
                metadata=k8s.V1ObjectMeta(
                    name=secret,
                    namespace=namespace,
                    labels={
                        **(pod_request_obj.metadata.labels or {}),
                        "containerkit.io/task-payload": "true",
                    },
                ),
                type="Opaque",
                immutable=True,
                data={k: base64.b64encode(v).decode() for k, v in self._payload().items()},
            ),
        )
        try:
            pod = super().get_or_create_pod(pod_request_obj, context)
        except BaseException:
            self._delete_task_secret(namespace, secret)
            raise
        if _task_secret_of(pod) != secret:  # reattached to a pod from an earlier try: it has its own
            self._delete_task_secret(namespace, secret)
            return pod
        remote = self.client.read_namespaced_pod(pod.metadata.name, namespace)
        owner = {"apiVersion": "v1", "kind": "Pod", "name": remote.metadata.name, "uid": remote.metadata.uid}
        self.client.patch_namespaced_secret(secret, namespace, {"metadata": {"ownerReferences": [owner]}})
        return pod

    def _delete_task_secret(self, namespace: str, name: str | None) -> None:
        if not name:
            return
        try:
            self.client.delete_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                self.log.warning("Could not delete task Secret %s/%s: %s", namespace, name, exc)

    def cleanup(self, pod: k8s.V1Pod, remote_pod: k8s.V1Pod, *args: Any, **kwargs: Any) -> None:
        try:
            super().cleanup(pod, remote_pod, *args, **kwargs)
        finally:
            source = remote_pod or pod
            if source is not None and source.metadata is not None:
                self._delete_task_secret(source.metadata.namespace, _task_secret_of(source))

    def trigger_reentry(self, context: Context, event: dict[str, Any]) -> Any:
        try:
            return super().trigger_reentry(context, event)
        finally:
            if self.pod is not None:
                self._delete_task_secret(self.pod.metadata.namespace, _task_secret_of(self.pod))

    def on_kill(self) -> None:
        pod = self.pod
        super().on_kill()
        if pod is not None:
            self._delete_task_secret(pod.metadata.namespace, _task_secret_of(pod))


def _task_secret_of(pod: k8s.V1Pod) -> str | None:
    for volume in (pod.spec.volumes if pod.spec else None) or []:
        if volume.name == TASK_VOLUME and volume.secret is not None:
            return str(volume.secret.secret_name)
    return None


def secure_kubernetes_task(
    python_callable: Callable[..., Any] | None = None,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> TaskDecorator:
    """Run the decorated function in a hardened pod; takes every SecureKubernetesPodOperator parameter.

    :param python_callable: the function to run (its source is shipped, so it must be self-contained).
    :param multiple_outputs: unroll a returned dict into one XCom per key.
    """
    from containerkit.operators.spec_params import for_mapping

    for_mapping(kwargs)  # BaseOperator's own ``resources`` would take it when the task is mapped
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_SecureKubernetesDecoratedOperator,
        **kwargs,
    )
