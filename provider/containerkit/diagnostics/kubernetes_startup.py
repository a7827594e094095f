"""Why a pod's container is stuck waiting: image pulls, its configuration, its creation, crash loops.

The image-pull wording is classified once, in :mod:`containerkit.diagnostics.causes`; this module
adds what only a pod shows (the ``Failed`` pull event, the ``imagePullSecrets``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from containerkit.diagnostics.causes import POD_PULL, PullFailure, classify_pull_error, pull_cause
from containerkit.diagnostics.kubernetes_fields import event_messages, memory_limit, spec_container, tail
from containerkit.diagnostics.model import Diagnosis

_IMAGE_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff")
_SECRET_MISSING = re.compile(r'secret "(?P<name>[^"]+)" not found', re.I)
_CONFIGMAP_MISSING = re.compile(r'configmap "(?P<name>[^"]+)" not found', re.I)
_KEY_MISSING = re.compile(
    r"couldn't find key (?P<key>\S+) in (?P<kind>Secret|ConfigMap) (?P<ns>[^/\s]+)/(?P<name>\S+)", re.I
)
_RUN_AS_ROOT = re.compile(r"runAsNonRoot and image (will run as root|has non-numeric user)", re.I)
_CREATE_TRANSIENT = re.compile(r"context deadline exceeded|is reserved for|name is reserved", re.I)


def waiting(
    pod: Mapping[str, Any], cs: Mapping[str, Any], events: list[Mapping[str, Any]], logs: str | None
) -> Diagnosis | None:
    """The diagnosis of one container status in state ``waiting``, or None for a benign wait."""
    state = (cs.get("state") or {}).get("waiting") or {}
    reason = state.get("reason")
    if not reason:
        return None
    name = cs.get("name")
    message = str(state.get("message") or "")
    evidence = (f"container {name} waiting: {reason}: {message}".rstrip(": "),)
    if reason in _IMAGE_PULL_REASONS:
        return image_pull(pod, cs, message, events)
    if reason in ("InvalidImageName", "ErrImageNeverPull"):
        image = spec_container(pod, name).get("image") or cs.get("image")
        fix = (
            "use a valid reference: [registry/]repository[:tag][@sha256:digest], lowercase repository"
            if reason == "InvalidImageName"
            else "the image is not on the node and imagePullPolicy is Never: use IfNotPresent, or "
            "preload the image"
        )
        return Diagnosis(
            cause=reason,
            summary=f"image {image!r} of container {name} cannot be used",
            fix=fix,
            evidence=evidence,
            container=name,
            details={"image": str(image)},
        )
    if reason == "CreateContainerConfigError":
        return config_error(pod, name, message, evidence)
    if reason == "CreateContainerError":
        transient = bool(_CREATE_TRANSIENT.search(message))
        return Diagnosis(
            cause="CreateContainerError",
            summary=f"the container runtime could not create container {name}",
            fix="read the runtime message: a bad command/workingDir, a missing mount source, or a "
            "securityContext the runtime rejects",
            evidence=evidence,
            container=name,
            transient=transient,
        )
    if reason == "CrashLoopBackOff":
        last = (cs.get("lastState") or {}).get("terminated") or {}
        restarts = cs.get("restartCount", 0)
        code = last.get("exitCode")
        last_reason = last.get("reason") or "Error"
        more: tuple[str, ...] = ()
        if last_reason == "OOMKilled":
            more = (f"last exit: OOMKilled at memory limit {memory_limit(pod, name)}",)
        return Diagnosis(
            cause="CrashLoopBackOff",
            summary=f"container {name} keeps crashing: {restarts} restarts, last exit code {code} "
            f"({last_reason})",
            fix="fix the crash shown by the last log lines; task pods should use restartPolicy Never",
            evidence=evidence + more + tail(logs),
            container=name,
            exit_code=code,
            details={"restarts": str(restarts), "last_reason": str(last_reason)},
        )
    return None


_PULL_TEXT = {
    PullFailure.RATE_LIMITED: (
        "the registry rate-limited the pull of {image}",
        "authenticate pulls (imagePullSecrets), mirror the image to your own registry, or pin by digest "
        "with imagePullPolicy IfNotPresent",
    ),
    PullFailure.UNAUTHORIZED: (
        "the registry refused to serve {image} ({secret_note})",
        "give the pod an imagePullSecret (kubernetes.io/dockerconfigjson) with read access to the "
        "repository; on Docker Hub this also means the repository name may be wrong",
    ),
    PullFailure.NOT_FOUND: (
        "image {image} does not exist in the registry",
        "check the repository, tag or digest spelling; push the image before running the task",
    ),
    PullFailure.UNREACHABLE: (
        "the node could not reach the registry for {image}",
        "check the registry host name and the node's network path (proxy, DNS, firewall); "
        "the kubelet keeps retrying",
    ),
}


def image_pull(
    pod: Mapping[str, Any], cs: Mapping[str, Any], message: str, events: list[Mapping[str, Any]]
) -> Diagnosis:
    name = cs.get("name")
    image = spec_container(pod, name).get("image") or cs.get("image") or "?"
    pull_errors = [m for m in event_messages(events, "Failed") if m.startswith("Failed to pull image")]
    # The Failed event carries the registry's answer; the BackOff waiting message often does not.
    text = "\n".join([message, *pull_errors])
    evidence = tuple(dict.fromkeys([f"container {name} waiting: {message}", *pull_errors[-2:]]))
    secrets = [s.get("name") for s in (pod.get("spec") or {}).get("imagePullSecrets") or []]
    details = {"image": str(image), "image_pull_secrets": ",".join(str(s) for s in secrets)}
    failure = classify_pull_error(text)
    if failure is None:
        return Diagnosis(
            cause=f"{POD_PULL}:unknown",
            summary=f"the image {image} cannot be pulled",
            fix="read the pull error in the pod events; check the image reference and pull credentials",
            evidence=evidence,
            container=name,
            details=details,
        )
    secret_note = f"image_pull_secrets={secrets}" if secrets else "no image_pull_secrets set"
    summary, fix = _PULL_TEXT[failure]
    return Diagnosis(
        cause=pull_cause(failure, POD_PULL),
        summary=summary.format(image=image, secret_note=secret_note),
        fix=fix,
        evidence=evidence,
        container=name,
        transient=failure.transient,
        details=details,
    )


def config_error(
    pod: Mapping[str, Any], name: str | None, message: str, evidence: tuple[str, ...]
) -> Diagnosis:
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    if m := _KEY_MISSING.search(message):
        kind, obj, key = m["kind"], m["name"], m["key"]
        slug = "secret" if kind.lower() == "secret" else "configmap"
        return Diagnosis(
            cause=f"CreateContainerConfigError:{slug}-key-missing",
            summary=f"{kind} {m['ns']}/{obj} has no key {key!r} that container {name} references",
            fix=f"add key {key} to the {kind} (kubectl -n {m['ns']} edit {slug} {obj}), or fix the key name "
            "in the task's secret/env reference",
            evidence=evidence,
            container=name,
            details={"kind": kind, "name": obj, "namespace": m["ns"], "key": key},
        )
    for pattern, kind, slug in (
        (_SECRET_MISSING, "Secret", "secret"),
        (_CONFIGMAP_MISSING, "ConfigMap", "configmap"),
    ):
        if m := pattern.search(message):
            return Diagnosis(
                cause=f"CreateContainerConfigError:{slug}-missing",
                summary=f"{kind} {namespace}/{m['name']} referenced by container {name} does not exist",
                fix=f"create the {kind} in namespace {namespace} before the task runs "
                f"(kubectl -n {namespace} create {slug} {m['name']} ...), or fix its name in the task",
                evidence=evidence,
                container=name,
                details={"kind": kind, "name": m["name"], "namespace": namespace},
            )
    if _RUN_AS_ROOT.search(message):
        return Diagnosis(
            cause="CreateContainerConfigError:run-as-root",
            summary=f"container {name} must run as non-root but its image runs as root or a named user",
            fix="set a numeric non-root USER in the image (e.g. USER 50000) or runAsUser in the security "
            "profile",
            evidence=evidence,
            container=name,
        )
    return Diagnosis(
        cause="CreateContainerConfigError",
        summary=f"the kubelet could not build the configuration of container {name}",
        fix="read the message: a missing Secret, ConfigMap, key or service account token",
        evidence=evidence,
        container=name,
    )
