"""``pods/log`` and ``pods/exec`` of the test double, served from the engine's real containers.

Logs are the engine's log stream (``timestamps``, ``tailLines``, ``sinceSeconds``, ``follow`` until the
container stops), with the API's 400 while a container is still waiting. Exec speaks the
``v4.channel.k8s.io`` WebSocket protocol the Kubernetes clients use (channel 0 stdin, 1 stdout,
2 stderr, 3 the final status) over an engine exec in the container, so the KubernetesPodOperator's
XCom sidecar ``cat`` and ``kill`` really run in the sidecar.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import socket
import threading
from typing import TYPE_CHECKING, Any

import aiohttp.web

if TYPE_CHECKING:
    from containerkit.testing.kubelet import Kubelet

__all__ = ["serve_exec", "serve_logs", "status_response"]


def status_response(code: int, reason: str, message: str) -> aiohttp.web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return aiohttp.web.json_response(body, status=code)


def _flag(value: str | None) -> bool:
    """A boolean query parameter: the Python client sends ``True``, Go clients ``true``."""
    return (value or "").lower() in ("true", "1")


def _container_id(
    kubelet: Kubelet, namespace: str, pod: str, container: str | None
) -> tuple[str | None, aiohttp.web.Response | None]:
    obj = kubelet.api.lookup("Pod", namespace, pod)
    if obj is None:
        return None, status_response(404, "NotFound", f'pods "{pod}" not found')
    spec = obj.get("spec") or {}
    names = [c["name"] for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]]
    if not container:
        main = [c["name"] for c in spec.get("containers") or []]
        if len(main) > 1:
            return None, status_response(
                400, "BadRequest", f"a container name must be specified for pod {pod}, choose one of: {main}"
            )
        container = main[0] if main else ""
    if container not in names:
        return None, status_response(400, "BadRequest", f"container {container} is not valid for pod {pod}")
    worker = kubelet.workers.get((namespace, pod))
    cid = worker.ids.get(container) if worker is not None else None
    if cid is None:
        statuses = [
            *(obj.get("status", {}).get("initContainerStatuses") or []),
            *(obj.get("status", {}).get("containerStatuses") or []),
        ]
        state = next((s.get("state") or {} for s in statuses if s.get("name") == container), {})
        reason = (state.get("waiting") or {}).get("reason", "ContainerCreating")
        return None, status_response(
            400, "BadRequest", f'container "{container}" in pod "{pod}" is waiting to start: {reason}'
        )
    return cid, None


async def serve_logs(kubelet: Kubelet, request: Any) -> aiohttp.web.StreamResponse:
    params = request.params
    cid, error = _container_id(
        kubelet, request.namespace or "default", request.name or "", params.get("container")
    )
    if error is not None:
        return error
    follow = _flag(params.get("follow"))
    kwargs: dict[str, Any] = {
        "stdout": True,
        "stderr": True,
        "stream": True,
        "follow": follow,
        "timestamps": _flag(params.get("timestamps")),
    }
    if params.get("tailLines"):
        kwargs["tail"] = int(params["tailLines"])
    if params.get("sinceSeconds"):
        kwargs["since"] = int(datetime.datetime.now(tz=datetime.UTC).timestamp()) - int(
            params["sinceSeconds"]
        )
    elif params.get("sinceTime"):
        kwargs["since"] = datetime.datetime.fromisoformat(params["sinceTime"].replace("Z", "+00:00"))
    limit = int(params["limitBytes"]) if params.get("limitBytes") else None
    loop = asyncio.get_running_loop()
    try:
        stream = await kubelet.docker(kubelet.client.api.logs, cid, **kwargs)
    except Exception as exc:
        return status_response(400, "BadRequest", f"could not read the log: {exc}")
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def pump() -> None:
        try:
            for chunk in stream:
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
        except Exception:  # the stream was closed under us (client gone, container removed)
            pass
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="ck-logs", daemon=True).start()
    response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request._raw_request)
    sent = 0
    try:
        while (chunk := await queue.get()) is not None:
            if limit is not None:
                chunk = chunk[: max(0, limit - sent)]
            await response.write(chunk)
            sent += len(chunk)
            if limit is not None and sent >= limit:
                break
        await response.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            stream.close()
    return response


def _exit_status(code: int | None, command: list[str]) -> dict[str, Any]:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command {command}, "
        f"exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


async def serve_exec(kubelet: Kubelet, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
    parts = raw_request.path.strip("/").split("/")
    namespace, pod = parts[parts.index("namespaces") + 1], parts[parts.index("pods") + 1]
    query = raw_request.query
    command = list(query.getall("command", []))
    stdin, tty = _flag(query.get("stdin")), _flag(query.get("tty"))
    ws = aiohttp.web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"))
    await ws.prepare(raw_request)  # type: ignore[arg-type]
    cid, error = _container_id(kubelet, namespace, pod, query.get("container"))
    if error is not None:
        body = json.loads(error.body)  # type: ignore[arg-type]
        await ws.send_bytes(b"\x03" + json.dumps(body).encode())
        await ws.close()
        return ws
    api = kubelet.client.api
    loop = asyncio.get_running_loop()
    try:
        exec_id = (
            await kubelet.docker(
                api.exec_create, cid, command, stdin=stdin, stdout=True, stderr=True, tty=tty
            )
        )["Id"]
        sock = await kubelet.docker(api.exec_start, exec_id, socket=True, tty=tty)
    except Exception as exc:
        message = str(getattr(exc, "explanation", None) or exc)
        status = {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError"}
        await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        await ws.close()
        return ws
    raw = getattr(sock, "_sock", sock)
    output: asyncio.Queue[bytes | None] = asyncio.Queue()

    def pump() -> None:
        from docker.utils.socket import frames_iter

        try:
            for stream, data in frames_iter(sock, tty):
                if data:
                    loop.call_soon_threadsafe(output.put_nowait, bytes([stream]) + data)
        except Exception:  # the socket was closed under us
            pass
        finally:
            loop.call_soon_threadsafe(output.put_nowait, None)

    threading.Thread(target=pump, name="ck-exec", daemon=True).start()

    async def send_output() -> None:
        while (frame := await output.get()) is not None:
            with contextlib.suppress(Exception):
                await ws.send_bytes(frame)

    async def read_stdin() -> None:
        async for msg in ws:
            if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                if data[:1] == b"\x00" and stdin:
                    await kubelet.docker(raw.sendall, data[1:])
            else:
                break

    reader = asyncio.ensure_future(read_stdin())
    sender = asyncio.ensure_future(send_output())
    await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
    if not sender.done():  # the client hung up: end stdin, give the command a moment to finish
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_WR)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(sender), timeout=5)
    reader.cancel()
    with contextlib.suppress(Exception):
        sock.close()
    code = None
    with contextlib.suppress(Exception):
        code = (await kubelet.docker(api.exec_inspect, exec_id)).get("ExitCode")
    sender.cancel()
    if not ws.closed:
        with contextlib.suppress(Exception):
            await ws.send_bytes(b"\x03" + json.dumps(_exit_status(code, command)).encode())
            await ws.close()
    return ws
