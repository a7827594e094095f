"""``SecureDockerOperator``: the stock ``DockerOperator`` with hardened, sized, policy-checked containers.

What it adds to the stock operator (whose every parameter keeps working):

- the container is rendered from a :class:`~containerkit.spec.ContainerSpec` by
  :func:`containerkit.docker.run_settings.render_docker`: non-root user, read-only root filesystem
  with a tmpfs ``/tmp``, ``cap_drop=ALL``, ``no-new-privileges``, a pids limit, hard memory (no swap)
  and CPU (``nano_cpus``) limits, log rotation and an init process. The stock operator has no
  parameter for most of these, so the container is created here, not by the stock code;
- no host temp-dir bind mount by default (``mount_tmp_dir=False``);
- policy (``containerkit.policy.enforce``) runs on the *final* settings, after stock parameters are
  applied on top of the rendered ones, at DAG parse time and again at run time (templated values);
- the container is inspected before it is removed, so a failure raises
  :class:`~containerkit.diagnostics.model.ContainerTaskFailed` with a Diagnosis (OOMKilled with the
  limit, exit code and last log lines, read-only filesystem, permission denied, signal, image errors);
- the container is removed after success, failure, timeout and kill (``on_kill`` stops and removes it).

It overrides internals of ``apache-airflow-providers-docker`` (``execute``'s pull step,
``_run_image_with_mounts`` and ``on_kill``); :data:`SUPPORTED_DOCKER_PROVIDER` pins the versions whose
internals it was written against, checked at import.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Literal

from containerkit.docker.labels import (
    DAG_ID,
    MAP_INDEX,
    RUN_ID,
    TASK_INSTANCE,
    TRY_NUMBER,
    task_instance_labels,
)
from containerkit.operators.spec_params import for_mapping, one_resources, spec_changes
from containerkit.operators.templating import TEMPLATED_IMAGE, is_templated
from containerkit.operators.versions import version_in

SUPPORTED_DOCKER_PROVIDER = ">=4.6.1,<4.7"
"""apache-airflow-providers-docker versions whose ``DockerOperator`` internals this module overrides."""


def _check_docker_provider(spec: str = SUPPORTED_DOCKER_PROVIDER) -> str:
    try:
        found = version("apache-airflow-providers-docker")
    except PackageNotFoundError:
        raise ImportError(
            "containerkit.operators.docker needs apache-airflow-providers-docker "
            f"({spec}): pip install 'apache-airflow-providers-docker{spec}'"
        ) from None
    if not version_in(found, spec):
        raise ImportError(
            f"containerkit.operators.docker overrides DockerOperator internals of "
            f"apache-airflow-providers-docker {spec}, but {found} is installed. Install a supported "
            f"version (pip install 'apache-airflow-providers-docker{spec}') or a containerkit release "
            f"that supports {found}."
        )
    return found


DOCKER_PROVIDER_VERSION = _check_docker_provider()

from airflow.providers.docker.exceptions import DockerContainerFailedSkipException  # noqa: E402
from airflow.providers.docker.operators.docker import DockerOperator, fetch_logs  # noqa: E402
from airflow.sdk.exceptions import AirflowTaskTimeout  # noqa: E402
from docker.errors import DockerException, NotFound  # noqa: E402

if TYPE_CHECKING:
    from airflow.sdk import Context

    from containerkit.diagnostics.model import Diagnosis
    from containerkit.docker.run_settings import DockerRunSettings
    from containerkit.docker.run_view import DockerRun
    from containerkit.spec import ConfigMapRef, ContainerSpec, Resources, SecretRef, SecurityProfile

# Only what the class definitions need is imported above (the stock operator's own modules); the spec,
# renderer, policy and diagnostics modules load on first use, so importing this module for a DAG file
# adds little on top of importing DockerOperator.

STAGING_DIR = "/run/containerkit"
"""Where staged files (TaskFlow payloads) appear: a per-container anonymous volume, removed with it."""

# Log lines the diagnosis quotes, in units of the diagnostics' LOG_TAIL_LINES; the stock operator already
# streamed every line to the task log.
_DIAGNOSIS_LOG_TAILS = 5


@dataclass(frozen=True)
class StagedFile:
    """A file copied into the container before it starts (never in its config, env or command).

    :param path: path relative to :data:`STAGING_DIR`.
    :param content: the bytes.
    :param mode: permission bits; the owner is the container user.
    """

    path: str
    content: bytes
    mode: int = 0o400


def _new_spec(**fields: Any) -> ContainerSpec:
    from containerkit.spec import ContainerSpec

    return ContainerSpec(**fields)


class SecureDockerOperator(DockerOperator):
    """Run a command in a hardened, sized Docker container; fail with a Diagnosis; never leave it behind.

    Takes every :class:`~airflow.providers.docker.operators.docker.DockerOperator` parameter; a stock
    parameter you pass explicitly (``user``, ``mem_limit``, ``privileged``, ``cap_add``, ``network_mode``,
    ``mounts``, ``log_opts_max_size`` …) is applied on top of the rendered settings, and policy then
    checks the result, so a weakening is caught (and can be exempted by rule id with a reason).

    :param image: the image (templated); required unless ``spec`` names it.
    :param spec: a full :class:`~containerkit.spec.ContainerSpec`; ``image``, ``resources``, ``security``,
        ``secret_refs`` and ``config_map_refs`` given here replace its fields.
    :param resources: a preset name (``"xs"`` .. ``"xl"``, default ``"s"``), a mapping of overrides
        (``{"preset": "m", "memory": "3Gi"}``) or :class:`~containerkit.spec.Resources`: hard memory
        (no swap), CPU (``nano_cpus``) and pids limits.
    :param spec_resources: the same as ``resources``; :meth:`partial` stores ``resources`` under this
        name, because a mapped task's serialized ``resources`` is read as Airflow's executor resources.
    :param security: ``"restricted"`` (default: uid 50000:0, read-only root, tmpfs /tmp, cap_drop ALL,
        no-new-privileges), ``"baseline"`` or a :class:`~containerkit.spec.SecurityProfile`.
    :param secret_refs: :class:`~containerkit.spec.SecretRef` keys, delivered as read-only file mounts of
        ``<secrets_dir>/<secret>/<key>`` (``path=``) or, read at run time, as env vars (``env=``).
    :param config_map_refs: :class:`~containerkit.spec.ConfigMapRef` keys, the same way from ``config_dir``.
    :param secrets_dir: host directory holding ``<secret>/<key>`` files (on the Docker engine's host).
    :param config_dir: host directory holding ``<configmap>/<key>`` files.
    :param policy_exemptions: ``{rule_id: reason}``: policy rules this task is exempt from, each with why.
    :param policy_mode: ``enforce`` (error findings fail DAG import), ``warn`` or ``off``; default
        ``[containerkit] policy_mode``.
    :param pin_image_digest: pre-flight: before pulling, resolve the (rendered) image tag to a digest
        with the registry (``containerkit.hooks.preflight.pin_image``), fail fast with a diagnosis
        (``ImagePull:not-found`` / ``:unauthorized`` / ``:rate-limited`` / ``:unreachable``) if it
        cannot be pulled, and run exactly ``repo@sha256:...``.
    :param registry_conn_id: the ``containerkit_registry`` connection the pre-flight uses (None:
        anonymous access to the registry the image names).
    :param mount_tmp_dir: as stock, but default ``False``: no host temp directory is bind-mounted.
    :param auto_remove: as stock, but default ``"force"``: the container is removed after success,
        failure and kill. ``"success"`` keeps failed containers, ``"never"`` keeps all (debugging).
    :param stop_timeout: seconds ``on_kill`` gives the process between SIGTERM and SIGKILL.
    """

    template_fields: Sequence[str] = (*DockerOperator.template_fields, "secrets_dir", "config_dir")
    ui_color = "#d2e9f7"

    def __init__(
        self,
        *,
        image: str | None = None,
        spec: ContainerSpec | None = None,
        resources: str | Mapping[str, Any] | Resources | None = None,
        spec_resources: str | Mapping[str, Any] | Resources | None = None,
        security: str | SecurityProfile | None = None,
        secret_refs: Sequence[SecretRef] | None = None,
        config_map_refs: Sequence[ConfigMapRef] | None = None,
        secrets_dir: str | None = None,
        config_dir: str | None = None,
        policy_exemptions: Mapping[str, str] | None = None,
        policy_mode: Literal["enforce", "warn", "off"] | None = None,
        pin_image_digest: bool = False,
        registry_conn_id: str | None = None,
        mount_tmp_dir: bool = False,
        auto_remove: Literal["never", "success", "force"] = "force",
        stop_timeout: int = 10,
        **kwargs: Any,
    ) -> None:
        image = image if image is not None else (str(spec.image) if spec is not None else None)
        if not image:
            from containerkit.errors import SpecError

            raise SpecError(
                "image", image, "a container task needs an image", "pass image='repo:tag' or spec="
            )
        from containerkit.operators.validation import (
            check_common,
            check_docker_mounts,
            check_env,
            check_timeout,
        )

        check_common(image=image, secret_refs=secret_refs, config_map_refs=config_map_refs)
        check_docker_mounts("mounts", kwargs.get("mounts"))
        check_env("environment", kwargs.get("environment"))
        check_env("private_environment", kwargs.get("private_environment"))
        check_timeout("stop_timeout", stop_timeout)
        # Stock parameters passed explicitly win over the rendered settings (and policy checks them).
        self._explicit: frozenset[str] = frozenset(kwargs)
        super().__init__(image=image, mount_tmp_dir=mount_tmp_dir, auto_remove=auto_remove, **kwargs)
        check_timeout("execution_timeout", self.execution_timeout)
        resources = one_resources(resources, spec_resources)
        changes = spec_changes(
            resources=resources, security=security, secret_refs=secret_refs, config_map_refs=config_map_refs
        )
        parse_image = TEMPLATED_IMAGE if is_templated(image) else image
        self.container_spec: ContainerSpec = (
            spec.replace(image=parse_image, **changes) if spec else _new_spec(image=parse_image, **changes)
        )
        self.secrets_dir = secrets_dir
        self.config_dir = config_dir
        self.policy_exemptions: dict[str, str] = dict(policy_exemptions or {})
        self.policy_mode = policy_mode
        self.pin_image_digest = pin_image_digest
        self.registry_conn_id = registry_conn_id
        self.stop_timeout = stop_timeout
        self.staged_files: list[StagedFile] = []
        self._kill_diagnosis: Diagnosis | None = None
        self._removed = False
        self._run_labels: dict[str, str] = {}
        if not any(is_templated(v) for v in (image, secrets_dir, config_dir)):
            # Parse time: fail DAG import under `enforce` for what is already known.
            self.check_policy(self.run_view().policy)

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:  # type: ignore[override]
        """The stock ``partial`` (dynamic task mapping), with ``resources`` kept as the container's
        (it travels as ``spec_resources``, :data:`~containerkit.operators.spec_params.MAPPED_RESOURCES`)."""
        return super().partial(**for_mapping(kwargs))

    # ------------------------------------------------------------------------------ settings

    def render_settings(self) -> DockerRunSettings:
        """The spec rendered for Docker, with the (templated, possibly pinned) image of this run."""
        from containerkit.docker.run_settings import render_docker

        # Before templating (lint, parse), a templated image stays the spec's parse-time placeholder.
        unchanged = str(self.container_spec.image) == self.image or is_templated(self.image)
        spec = self.container_spec if unchanged else self.container_spec.replace(image=self.image)
        return render_docker(spec, secrets_dir=self.secrets_dir, config_dir=self.config_dir)

    def run_view(self, target_mounts: Iterable[Any] | None = None, *, runtime: bool = False) -> DockerRun:
        """The final container (create and host kwargs) and the one policy view of it.

        Built by :func:`containerkit.docker.run_view.docker_run`, the same merge lint and
        ``task_policy`` use: rendered settings first, then each stock parameter the user passed.
        ``runtime=False`` (parse time, lint) reads no files: env-form secrets and ``env_file`` are left
        out, secret env values stay redacted. ``target_mounts`` defaults to the stock ``mounts``.
        """
        from containerkit.docker.run_view import docker_run, stock_args

        settings = self.render_settings()
        rendered_env = None
        env_file: dict[str, str] = {}
        if runtime:
            rendered_env = settings.runtime_environment()
            self._mask(rendered_env[s.name] for s in settings.secret_environment)
            env_file = self.unpack_environment_variables(self.env_file) if self.env_file else {}
        image = self.image if runtime or not is_templated(self.image) else TEMPLATED_IMAGE
        stock = stock_args(
            self, image=image, mounts=target_mounts, env_file=env_file, explicit=self._explicit
        )
        return docker_run(
            stock,
            settings,
            rendered_environment=rendered_env,
            run_labels=self._run_labels,
            staging_dir=STAGING_DIR if self.staged_files else None,
        )

    def container_config(self, target_mounts: Iterable[Any], *, runtime: bool) -> DockerRun:
        """Deprecated name of :meth:`run_view` (kept for DAGs that call it)."""
        return self.run_view(target_mounts, runtime=runtime)

    @staticmethod
    def _mask(values: Iterable[str]) -> None:
        from airflow.sdk.log import mask_secret

        for value in values:
            mask_secret(value)

    def check_policy(self, policy_data: Mapping[str, Any], *, about: str | None = None) -> None:
        """Evaluate the ``DockerRun`` rules on the final settings; raises under ``enforce``.

        :param about: only the rules whose metadata names this topic (``policy.model.IMAGE``).
        """
        from containerkit.policy.enforce import check_docker_run
        from containerkit.policy.model import ObjectRef

        dag_id = getattr(self, "dag_id", None)
        obj = ObjectRef(kind="DockerRun", name=self.task_id, dag_id=dag_id, task_id=self.task_id)
        check_docker_run(
            policy_data,
            mode=self.policy_mode,
            exemptions=self.policy_exemptions,
            where=f"task {dag_id}.{self.task_id}" if dag_id else f"task {self.task_id}",
            obj=obj,
            about=about,
        )

    # ----------------------------------------------------------------------------- execution

    def execute(self, context: Context) -> list[str] | str | None:
        ti = context.get("ti") if context else None
        self._run_labels = task_instance_labels(
            str(getattr(ti, "dag_id", getattr(self, "dag_id", "")) or ""),
            self.task_id,
            str(getattr(ti, "run_id", "") or ""),
            getattr(ti, "try_number", None),
            getattr(ti, "map_index", -1),
        )
        self._kill_diagnosis = None
        self._removed = False
        self._timeout_evidence: tuple[list[str], int | None] = ([], None)
        self._remove_earlier_tries()
        self._normalize_mounts()
        from containerkit.hooks.preflight import preflight_image

        if str(self.container_spec.image) == TEMPLATED_IMAGE:
            # Templated: parse time saw only the placeholder. The image rules (pinning) run on the
            # rendered reference now, before the pre-flight and before anything is pulled.
            from containerkit.policy.model import IMAGE

            self.check_policy(self.run_view().policy, about=IMAGE)
        try:
            self.image = preflight_image(
                self.image,
                pin_image_digest=self.pin_image_digest,
                registry_conn_id=self.registry_conn_id,
                task_id=self.task_id,
            )
            self._pull_if_needed()
            return self._run_image()
        except AirflowTaskTimeout:
            from containerkit.diagnostics.model import ContainerTaskFailed

            raise ContainerTaskFailed(self._timeout_diagnosis(), where=self._where()) from None

    def _remove_earlier_tries(self) -> None:
        """Worker loss: log the evidence of containers an earlier try of this task left, then remove them.

        A killed worker (``kill -9``, lost node) never ran its cleanup; its container carries the same
        dag/task/run/map-index labels and another try number.
        """
        from containerkit.diagnostics.docker import LOG_TAIL_LINES

        labels = self._run_labels
        if not (labels[DAG_ID] and labels[RUN_ID]):
            return
        try:
            found = self.cli.containers(
                all=True, filters={"label": [f"{k}={labels[k]}" for k in TASK_INSTANCE]}
            )
        except Exception as exc:  # never fail a try over the search (e.g. an engine the client cannot reach)
            self.log.warning("Could not look for containers of earlier tries: %s", exc)
            return
        for summary in found:
            theirs = summary.get("Labels") or {}
            if theirs.get(TRY_NUMBER) == labels[TRY_NUMBER]:
                continue
            if theirs.get(MAP_INDEX, "-1") != labels[MAP_INDEX]:
                continue  # another mapped instance: alive or not, not ours
            short = summary["Id"][:12]
            try:
                state = self.cli.inspect_container(summary["Id"])["State"]
                tail = self.cli.logs(summary["Id"], stdout=True, stderr=True, tail=LOG_TAIL_LINES)
                self.log.warning(
                    "Container %s of earlier try %s was left behind (worker lost?): status %s, exit code "
                    "%s, OOMKilled %s; last log lines:\n%s",
                    short,
                    theirs.get(TRY_NUMBER, "?"),
                    state.get("Status"),
                    state.get("ExitCode"),
                    state.get("OOMKilled"),
                    tail.decode("utf-8", "replace").rstrip("\n"),
                )
                self.cli.remove_container(summary["Id"], force=True, v=True)
                self.log.info("Removed container %s of earlier try %s", short, theirs.get(TRY_NUMBER))
            except NotFound:
                continue
            except DockerException as exc:
                self.log.warning("Could not remove container %s of an earlier try: %s", short, exc)

    def _timeout_diagnosis(self) -> Diagnosis:
        """``execution_timeout`` fired: name it, and say what happened to the container."""
        from containerkit.diagnostics.timeouts import execution_timeout_diagnosis

        evidence, exit_code = self._timeout_evidence
        short = self.container["Id"][:12] if self.container else None
        left: list[str] = []
        if short is None:
            cleaned = ["no container had been created yet"]
        elif self._removed:
            cleaned = [f"container {short} stopped and removed"]
        else:
            cleaned, left = [], [f"container {short} kept (auto_remove={self.auto_remove})"]
        return execution_timeout_diagnosis(
            self.execution_timeout,
            cleaned_up=cleaned,
            left_behind=left,
            evidence=evidence,
            container=short,
            exit_code=exit_code,
        )

    def _stop_for_timeout(self, container_id: str) -> None:
        """Stop the container (SIGTERM, then SIGKILL) and keep its exit code and last log lines."""
        from containerkit.diagnostics.docker import LOG_TAIL_LINES

        try:
            self.cli.stop(container_id, timeout=self.stop_timeout)
            state = self.cli.inspect_container(container_id)["State"]
            logs = self.cli.logs(container_id, stdout=True, stderr=True, tail=LOG_TAIL_LINES)
        except DockerException as exc:
            self._timeout_evidence = ([f"could not stop container {container_id[:12]}: {exc}"], None)
            return
        exit_code = int(state.get("ExitCode", 0))
        lines = [f"container {container_id[:12]}: exit code {exit_code} after docker stop"]
        lines += [f"log: {line}" for line in logs.decode("utf-8", "replace").splitlines()]
        self._timeout_evidence = (lines, exit_code)

    def _pull_if_needed(self) -> None:
        """The stock pull step, with errors (raised, or reported inside the stream) diagnosed."""
        from containerkit.diagnostics.docker import diagnose_docker_error
        from containerkit.diagnostics.model import ContainerTaskFailed

        try:
            if not self.force_pull and self.cli.images(name=self.image):
                return
            self.log.info("Pulling docker image %s", self.image)
            for item in self.cli.pull(self.image, stream=True, decode=True):
                if isinstance(item, Mapping) and item.get("error"):
                    raise _StreamError(str(item["error"]))
                if isinstance(item, Mapping) and "status" in item and "id" not in item:
                    self.log.info("%s", item["status"])
        except (DockerException, _StreamError) as exc:
            raise ContainerTaskFailed(
                diagnose_docker_error(exc, image=self.image, where="pull"), where=self._where()
            ) from None

    def _where(self) -> str:
        return f"task {self.task_id}"

    def _run_image_with_mounts(
        self, target_mounts: list[Any], add_tmp_variable: bool
    ) -> list[str] | str | None:
        if add_tmp_variable:
            self.environment["AIRFLOW_TMP_DIR"] = self.tmp_dir
        else:
            self.environment.pop("AIRFLOW_TMP_DIR", None)
        from containerkit.diagnostics.docker import diagnose_docker_error
        from containerkit.diagnostics.model import ContainerTaskFailed

        run = self.run_view(target_mounts, runtime=True)
        create, host = run.create, run.host
        self.check_policy(run.policy)
        self._check_secret_files(create.get("user"))
        try:
            self.container = self.cli.create_container(
                **create, host_config=self.cli.create_host_config(**host)
            )
        except DockerException as exc:
            raise ContainerTaskFailed(
                diagnose_docker_error(exc, image=self.image, where="create"), where=self._where()
            ) from None
        container_id = self.container["Id"]
        self.log.info("Created container %s from %s", container_id[:12], self.image)
        failed = True
        usage = None
        from containerkit.usage import capture as usage_capture  # never raises into the task

        try:
            self._stage_files(container_id, create.get("user"))
            log_stream = self.cli.attach(container=container_id, stdout=True, stderr=True, stream=True)
            try:
                self.cli.start(container_id)
            except DockerException as exc:
                raise ContainerTaskFailed(
                    diagnose_docker_error(exc, image=self.image, where="start"), where=self._where()
                ) from None
            usage = usage_capture.start_docker_usage(self, container_id)
            log_lines = fetch_logs(log_stream, self.log)
            result = self._finish(container_id, log_lines)
            failed = False
            return result
        except AirflowTaskTimeout:
            self._stop_for_timeout(container_id)
            raise
        finally:
            usage_capture.record_docker_usage(self, usage, container_id)
            self._cleanup(container_id, failed=failed)

    def _check_secret_files(self, user: str | None) -> None:
        """Pre-flight: every mounted secret file is readable by the container's uid, before create."""
        from pathlib import Path

        from containerkit.diagnostics.model import ContainerTaskFailed
        from containerkit.operators.validation import secret_file_diagnosis, unreadable_by

        uid, gid = _numeric_user(user)
        if uid is None or gid is None or not self.secrets_dir:
            return  # a named user: its uid is only known inside the image
        unreadable: dict[str, str] = {}
        for ref in self.container_spec.secrets:
            path = Path(self.secrets_dir, ref.secret, ref.key)
            if ref.path and path.is_file():  # a missing file fails the mount with its own error
                why = unreadable_by(path, uid, gid)
                if why:
                    unreadable[str(path)] = why
        if unreadable:
            raise ContainerTaskFailed(secret_file_diagnosis(unreadable, uid, gid), where=self._where())

    def _finish(self, container_id: str, log_lines: list[str]) -> list[str] | str | None:
        """Wait, read the evidence, then decide: diagnosis on failure, XCom value on success."""
        from containerkit.diagnostics.docker import LOG_TAIL_LINES, diagnose_container
        from containerkit.diagnostics.model import ContainerTaskFailed

        try:
            status = self.cli.wait(container_id)
            inspect = self.cli.inspect_container(container_id)
        except NotFound:
            # on_kill removed the container while we streamed its logs; it kept the evidence.
            raise ContainerTaskFailed(self._kill_diagnosis or _killed(), where=self._where()) from None
        exit_code = int(status.get("StatusCode", inspect["State"].get("ExitCode", 0)))
        if exit_code in self.skip_on_exit_code:
            raise DockerContainerFailedSkipException(
                f"Docker container returned exit code {exit_code}. Skipping.",
                logs=list[str | bytes](log_lines),
            )
        tail = log_lines[-LOG_TAIL_LINES * _DIAGNOSIS_LOG_TAILS :]
        diagnosis = diagnose_container(inspect, "\n".join(tail))
        if diagnosis is None and exit_code != 0:  # the wait result and inspect disagree: trust the wait
            diagnosis = diagnose_container(
                {**inspect, "State": {**inspect["State"], "ExitCode": exit_code}}, "\n".join(log_lines)
            )
        if diagnosis is not None:
            raise ContainerTaskFailed(diagnosis, where=self._where())
        if self.retrieve_output:
            return self._attempt_to_retrieve_result()
        if self.do_xcom_push and log_lines:
            return log_lines if self.xcom_all else log_lines[-1]
        return None

    def _stage_files(self, container_id: str, user: str | None) -> None:
        """Copy :attr:`staged_files` into the container's private staging volume, owned by its user."""
        if not self.staged_files:
            return
        uid, gid = _numeric_user(user)
        shared = uid is None  # unknown user: readable by whoever the image runs as
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            directories = sorted({p for f in self.staged_files for p in _parents(f.path)})
            for directory in directories:
                info = tarfile.TarInfo(directory)
                info.type = tarfile.DIRTYPE
                info.mode = 0o1777 if shared else 0o700
                info.uid, info.gid = uid or 0, gid or 0
                tar.addfile(info)
            for staged in self.staged_files:
                info = tarfile.TarInfo(staged.path)
                info.size = len(staged.content)
                info.mode = staged.mode | (0o044 if shared else 0)
                info.uid, info.gid = uid or 0, gid or 0
                tar.addfile(info, io.BytesIO(staged.content))
        self.cli.put_archive(container_id, STAGING_DIR, archive.getvalue())

    def _cleanup(self, container_id: str, *, failed: bool) -> None:
        if self._removed or self.auto_remove == "never" or (self.auto_remove == "success" and failed):
            if not self._removed:
                self.log.warning("Keeping container %s (auto_remove=%s)", container_id[:12], self.auto_remove)
            return
        try:
            self.cli.remove_container(container_id, force=True, v=True)
        except NotFound:
            pass
        except DockerException as exc:
            self.log.warning("Could not remove container %s: %s", container_id[:12], exc)
            return
        self._removed = True

    def on_kill(self) -> None:
        """Stop the container (SIGTERM, SIGKILL after ``stop_timeout``), keep its evidence, remove it."""
        if self.container is None or not self.hook.client_created:
            return
        from containerkit.diagnostics.docker import LOG_TAIL_LINES, diagnose_container

        container_id = self.container["Id"]
        try:
            self.log.info("Stopping container %s", container_id[:12])
            self.cli.stop(container_id, timeout=self.stop_timeout)
            inspect = self.cli.inspect_container(container_id)
            logs = self.cli.logs(
                container_id, stdout=True, stderr=True, tail=LOG_TAIL_LINES * _DIAGNOSIS_LOG_TAILS
            )
            self._kill_diagnosis = diagnose_container(inspect, logs.decode("utf-8", "replace"))
        except NotFound:
            return  # already gone: execute's cleanup removed it (execution_timeout path)
        except DockerException as exc:
            self.log.warning("Could not stop container %s: %s", container_id[:12], exc)
        self._cleanup(container_id, failed=True)


class _StreamError(Exception):
    """An error the engine reported inside a pull stream (after answering 200)."""

    def __init__(self, explanation: str) -> None:
        super().__init__(explanation)
        self.explanation = explanation


def _killed() -> Diagnosis:
    from containerkit.diagnostics.model import Diagnosis

    return Diagnosis(
        cause="KilledBySignal:SIGTERM",
        summary="the task was killed and its container stopped before it finished",
        fix="If the task was not stopped on purpose, raise execution_timeout or find who stopped it.",
    )


def _numeric_user(user: str | int | None) -> tuple[int | None, int | None]:
    text = str(user) if user is not None else ""
    uid_text, _, gid_text = text.partition(":")
    uid = int(uid_text) if uid_text.isdigit() else None
    gid = int(gid_text) if gid_text.isdigit() else (0 if uid is not None else None)
    return uid, gid


def _parents(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]
