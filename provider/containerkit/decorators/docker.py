"""``@task.secure_docker``: run a Python function in a hardened container, its code and arguments private.

The stock ``@task.docker`` passes the pickled arguments and the generated script base64-encoded in
environment variables, so ``docker inspect`` (and anyone with access to the engine's API) reads them.
Here they are files: after the container is created and before it starts, the script and the
serialized arguments are copied (``put_archive``) into a private anonymous volume at
``/run/containerkit/job`` (mode 0700, files 0400, owned by the container user), which the read-only
root filesystem allows. The container's command only names those files. The function's return value
is written to a file in the same volume and read back (``get_archive``) before the container and its
volume are removed, then pushed as XCom (``multiple_outputs`` works as with any TaskFlow task).

The image needs a Python of the worker's minor version (pickle protocol and bytecode): the Airflow
image or ``python:3.x-slim`` of the same ``3.x``. Serializers are the stock ones: ``pickle``
(default), ``cloudpickle`` or ``dill`` (the latter two installed in the worker and the image).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.common.compat.standard.utils import write_python_script
from airflow.providers.docker.decorators.docker import _SERIALIZERS
from airflow.sdk.bases.decorator import DecoratedOperator, task_decorator_factory

from containerkit.errors import SpecError
from containerkit.operators.docker import STAGING_DIR, SecureDockerOperator, StagedFile

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.bases.decorator import TaskDecorator

Serializer = Literal["pickle", "cloudpickle", "dill"]

JOB_DIR = "job"
SCRIPT, INPUT, OUTPUT, ERROR = "script.py", "input.bin", "output.bin", "error.txt"


def job_path(name: str) -> str:
    """The in-container path of a job file."""
    return f"{STAGING_DIR}/{JOB_DIR}/{name}"


class _SecureDockerDecoratedOperator(DecoratedOperator, SecureDockerOperator):
    """Runs the decorated callable inside a SecureDockerOperator container.

    :param python_command: the Python executable in the image (default ``python3``).
    :param serializer: ``pickle`` (default), ``cloudpickle`` or ``dill`` for arguments and result.
    :param expect_airflow: whether the image has Airflow (then plugin macros are loaded, as stock).
    """

    custom_operator_name = "@task.secure_docker"
    template_fields: Sequence[str] = (*SecureDockerOperator.template_fields, "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_command: str = "python3",
        serializer: Serializer | None = None,
        expect_airflow: bool = False,
        **kwargs: Any,
    ) -> None:
        serializer = serializer or "pickle"
        if serializer not in _SERIALIZERS:
            raise SpecError(
                "serializer", serializer, "unknown serializer", f"use one of {', '.join(_SERIALIZERS)}"
            )
        for stock in ("command", "retrieve_output", "retrieve_output_path"):
            if stock in kwargs:
                raise SpecError(
                    stock, kwargs[stock], "@task.secure_docker sets this itself", f"remove {stock}="
                )
        self.python_command = python_command
        self.serializer: Serializer = serializer
        self.expect_airflow = expect_airflow
        command = [
            python_command,
            job_path(SCRIPT),
            job_path(INPUT),
            job_path(OUTPUT),
            "none",
            job_path(ERROR),
        ]
        super().__init__(
            command=command, retrieve_output=True, retrieve_output_path=job_path(OUTPUT), **kwargs
        )

    @property
    def pickling_library(self) -> Any:
        """The serializer module; the stock result reader (``_copy_from_docker``) loads the output with it."""
        return _SERIALIZERS[self.serializer]

    def execute(self, context: Context) -> Any:
        with TemporaryDirectory(prefix="ck-task-") as tmp:
            script = os.path.join(tmp, SCRIPT)
            has_args = bool(self.op_args or self.op_kwargs)
            write_python_script(
                jinja_context={
                    "op_args": self.op_args,
                    "op_kwargs": self.op_kwargs,
                    "pickling_library": self.pickling_library.__name__,
                    "python_callable": self.python_callable.__name__,
                    "python_callable_source": self.get_python_source(),
                    "expect_airflow": self.expect_airflow,
                    "string_args_global": False,
                },
                filename=script,
            )
            with open(script, "rb") as file:
                script_bytes = file.read()
        payload = (
            self.pickling_library.dumps({"args": self.op_args, "kwargs": self.op_kwargs}) if has_args else b""
        )
        self.staged_files = [
            StagedFile(f"{JOB_DIR}/{SCRIPT}", script_bytes),
            StagedFile(f"{JOB_DIR}/{INPUT}", payload),
        ]
        return super().execute(context)


def secure_docker_task(
    python_callable: Callable | None = None,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> TaskDecorator:
    """Wrap a function into a :class:`~containerkit.operators.docker.SecureDockerOperator` task.

    Takes every ``SecureDockerOperator`` argument (``image``, ``resources``, ``security``,
    ``secret_refs``, ``pin_image_digest`` …) plus ``python_command``, ``serializer`` and ``expect_airflow``.

    :param python_callable: the function to run in the container.
    :param multiple_outputs: push each key of a returned dict as its own XCom.
    """
    from containerkit.operators.spec_params import for_mapping

    for_mapping(kwargs)  # BaseOperator's own ``resources`` would take it when the task is mapped
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_SecureDockerDecoratedOperator,
        **kwargs,
    )


__all__ = ["secure_docker_task"]
