"""The gateway config passes `nginx -t`, and a real nginx routes as the public API says.

Each upstream is a tiny aiohttp app that answers with its own name, the path it saw and the
request id it got. A missing nginx fails these tests (with the install command) on purpose:
the Makefile installs it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from devstack.nginx import (
    WEB_CLIENT_PATH,
    NginxSite,
    check_config,
    nginx_command,
    render_nginx_conf,
    repo_root,
    write_nginx_conf,
)
from devstack.waiting import until

PROBLEM = "application/problem+json"
NOT_FOUND = {
    "type": "about:blank",
    "title": "Not Found",
    "status": 404,
    "detail": "No route for this path",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _start_upstream(name: str) -> tuple[web.AppRunner, int]:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "service": name,
                "path": request.path_qs,
                "requestId": request.headers.get("X-Request-Id"),
            },
            headers={"X-Request-Id": "set-by-upstream-" + name},
        )

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        socket_ = web.WebSocketResponse()
        await socket_.prepare(request)
        async for message in socket_:
            await socket_.send_str(f"{name}:{message.data}")
        return socket_

    app = web.Application()
    app.router.add_get("/socket.io/ws", websocket)
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, int(runner.addresses[0][1])


@contextlib.asynccontextmanager
async def _running_nginx(conf: Path, port: int) -> AsyncIterator[None]:
    stderr_path = conf.parent / "nginx.stderr"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(*nginx_command(conf), stderr=stderr)

        async def listening() -> bool:
            if process.returncode is not None:
                pytest.fail(f"nginx exited {process.returncode}: {stderr_path.read_text()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.close()
            return True

        try:
            await until(
                listening,
                timeout=10,
                what=lambda: f"nginx to listen on {port}: {stderr_path.read_text()}",
            )
            yield
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGQUIT)  # graceful: finish in-flight requests
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()  # this pid only
                    await process.wait()


@dataclass
class Gateway:
    base: str
    run_dir: Path
    session: aiohttp.ClientSession

    async def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, str, dict[str, object]]:
        async with self.session.get(self.base + path, headers=headers) as response:
            return response.status, response.content_type, await response.json(content_type=None)


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    names = ("auth", "chat", "gateway-0", "gateway-1", "workers")
    upstreams = dict([await _start_upstream(name) for name in names])
    ports = dict(zip(names, upstreams.values(), strict=True))
    run_dir = tmp_path_factory.mktemp("nginx")
    listen_port = _free_port()
    conf = write_nginx_conf(
        NginxSite(
            listen_host="127.0.0.1",
            listen_port=listen_port,
            run_dir=run_dir,
            auth=[ports["auth"]],
            chat=[ports["chat"]],
            gateway=[ports["gateway-0"], ports["gateway-1"]],
            workers=[ports["workers"]],
            max_body="4k",
            media_max_body="64k",
        )
    )
    try:
        async with _running_nginx(conf, listen_port), aiohttp.ClientSession() as session:
            yield Gateway(f"http://127.0.0.1:{listen_port}", run_dir, session)
    finally:
        for runner in upstreams:
            await runner.cleanup()


def test_rendered_config_passes_nginx_t(tmp_path: Path) -> None:
    ports = [_free_port() for _ in range(5)]
    conf = write_nginx_conf(
        NginxSite(
            listen_host="127.0.0.1",
            listen_port=ports[0],
            run_dir=tmp_path / "run",
            auth=[ports[1]],
            chat=[ports[2]],
            gateway=[ports[3], ports[4]],
            workers=[ports[4]],
        )
    )
    text = conf.read_text()
    assert "${" not in text
    assert "client_max_body_size 1m;" in text
    assert "client_max_body_size 11m;" in text  # POST /api/media only
    assert f"listen 127.0.0.1:{ports[0]};" in text
    assert "hash $remote_addr consistent;" in text
    check_config(conf)


def test_render_rejects_an_empty_upstream(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chat needs at least one port"):
        render_nginx_conf(
            NginxSite(
                listen_host="::1",
                listen_port=1,
                run_dir=tmp_path,
                auth=[2],
                chat=[],
                gateway=[3],
                workers=[4],
            )
        )


@pytest.mark.parametrize(
    ("path", "service", "seen"),
    [
        ("/api/auth/login", "auth", "/api/auth/login"),
        ("/api/users/x?q=ad", "auth", "/api/users/x?q=ad"),
        ("/api/users", "auth", "/api/users"),
        ("/api/chat", "chat", "/api/chat"),
        ("/api/chat/c1/messages?after=3", "chat", "/api/chat/c1/messages?after=3"),
        ("/api/media/1", "chat", "/api/media/1"),
        ("/api/notifications", "workers", "/api/notifications"),
        ("/api/auth/healthz", "auth", "/healthz"),
        ("/api/auth/readyz", "auth", "/readyz"),
        ("/api/chat/healthz", "chat", "/healthz"),
        ("/api/chat/readyz", "chat", "/readyz"),
        ("/api/gateway/healthz", "gateway", "/healthz"),
        ("/api/gateway/readyz", "gateway", "/readyz"),
        ("/api/workers/healthz", "workers", "/healthz"),
        ("/api/workers/readyz", "workers", "/readyz"),
        ("/socket.io/?EIO=4&transport=polling", "gateway", "/socket.io/?EIO=4&transport=polling"),
    ],
)
async def test_routes(gateway: Gateway, path: str, service: str, seen: str) -> None:
    status, _, body = await gateway.get(path)
    assert status == 200
    assert str(body["service"]).startswith(service)
    assert body["path"] == seen


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "/nope",
        "/api/usersfoo",
        "/api/gateway/x",
        "/api/chatroom",
        "/package.json",
        "/node_modules/socket.io-client/package.json",
        "/vendor/",
        "/app.js.map",
        "/nginx.conf",
    ],
)
async def test_unrouted_paths_are_problem_404s(gateway: Gateway, path: str) -> None:
    status, content_type, body = await gateway.get(path)
    assert (status, content_type, body) == (404, PROBLEM, NOT_FOUND)


@pytest.mark.parametrize(
    ("path", "content_type", "holds"),
    [
        ("/", "text/html", b'<script type="module" src="/app.js">'),
        ("/index.html", "text/html", b'<script type="module" src="/app.js">'),
        ("/app.js", "application/javascript", b'from "/session.js"'),
        ("/api.js", "application/javascript", b"export class Api"),
        ("/realtime.js", "application/javascript", b'from "/vendor/socket.io.esm.min.js"'),
        ("/style.css", "text/css", b".messages"),
        ("/vendor/socket.io.esm.min.js", "application/javascript", b"export"),
    ],
)
async def test_the_web_client_is_served_at_the_root(
    gateway: Gateway, path: str, content_type: str, holds: bytes
) -> None:
    async with gateway.session.get(gateway.base + path) as response:
        assert response.status == 200
        assert response.content_type == content_type
        assert holds in await response.read()


async def test_every_file_of_the_web_client_is_served_as_it_is(gateway: Gateway) -> None:
    public = repo_root() / WEB_CLIENT_PATH / "public"
    files = sorted(path for path in public.rglob("*") if path.is_file())
    assert len(files) > 4
    for path in files:
        url = gateway.base + "/" + path.relative_to(public).as_posix()
        async with gateway.session.get(url) as response:
            assert response.status == 200, url
            assert await response.read() == path.read_bytes(), url


async def test_oversize_body_is_a_problem_413(gateway: Gateway) -> None:
    async with gateway.session.post(gateway.base + "/api/chat", data=b"x" * 8192) as response:
        assert response.status == 413
        assert response.content_type == PROBLEM
        body = await response.json(content_type=None)
    assert (body["status"], body["title"]) == (413, "Content Too Large")


async def test_uploads_have_a_larger_body_limit_on_their_route_only(gateway: Gateway) -> None:
    async with gateway.session.post(gateway.base + "/api/media", data=b"x" * 32768) as response:
        assert response.status == 200
        assert (await response.json())["path"] == "/api/media"
    async with gateway.session.post(gateway.base + "/api/media", data=b"x" * 70000) as response:
        assert response.status == 413
        assert response.content_type == PROBLEM
    for path in ("/api/chat", "/api/media/" + "0" * 36):
        async with gateway.session.post(gateway.base + path, data=b"x" * 32768) as response:
            assert response.status == 413, path


async def test_a_stopped_upstream_is_a_problem_502(tmp_path: Path) -> None:
    runner, dead_port = await _start_upstream("workers")
    await runner.cleanup()
    listen_port = _free_port()
    conf = write_nginx_conf(
        NginxSite(
            listen_host="127.0.0.1",
            listen_port=listen_port,
            run_dir=tmp_path,
            auth=[dead_port],
            chat=[dead_port],
            gateway=[dead_port],
            workers=[dead_port],
        )
    )
    url = f"http://127.0.0.1:{listen_port}/api/notifications"
    async with (
        _running_nginx(conf, listen_port),
        aiohttp.ClientSession() as session,
        session.get(url) as response,
    ):
        assert response.status == 502
        assert response.content_type == PROBLEM
        body = await response.json(content_type=None)
    assert (body["status"], body["title"]) == (502, "Bad Gateway")


async def test_request_id_is_forwarded_logged_and_returned(gateway: Gateway) -> None:
    async with gateway.session.get(
        gateway.base + "/api/chat", headers={"X-Request-Id": "client-id-123"}
    ) as response:
        body = await response.json()
        assert response.headers.getall("X-Request-Id") == ["client-id-123"]
    assert body["requestId"] == "client-id-123"

    def logged() -> list[dict[str, object]]:
        lines = (gateway.run_dir / "access.log").read_text().splitlines()
        return [json.loads(line) for line in lines]

    # nginx writes the line once the response is done, a moment after the client has it.
    await until(
        lambda: any(e["requestId"] == "client-id-123" and e["status"] == 200 for e in logged()),
        timeout=5,
    )

    async with gateway.session.get(gateway.base + "/api/chat") as response:
        body = await response.json()
        generated = response.headers["X-Request-Id"]
    assert len(generated) == 32
    assert body["requestId"] == generated

    # An id that could forge log lines is replaced.
    _, _, body = await gateway.get("/api/chat", headers={"X-Request-Id": 'x" y'})
    assert body["requestId"] != 'x" y'


async def test_socket_io_upgrades_and_sticks_to_one_instance(gateway: Gateway) -> None:
    instances = {str((await gateway.get("/socket.io/?EIO=4"))[2]["service"]) for _ in range(8)}
    assert len(instances) == 1
    async with gateway.session.ws_connect(gateway.base + "/socket.io/ws") as ws:
        await ws.send_str("ping")
        assert await ws.receive_str() == f"{instances.pop()}:ping"
