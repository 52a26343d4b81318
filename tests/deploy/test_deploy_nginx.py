"""nginx: the compose config and the web client's pass `nginx -t`; the compose config has
every location of the fleet's template, and the Ingress and the HTTPRoute route the paths the
template routes, to the same services; each config serving the web client lists exactly its
files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devstack.nginx import NginxSite, check_config
from tests.deploy.rendered import (
    ROOT,
    named,
    of_kind,
    render_kustomize,
)


def nginx_routes(text: str) -> dict[str, str]:
    """``{path prefix: upstream}`` for the API locations of an nginx config."""
    routes: dict[str, str] = {}
    pattern = re.compile(
        r"location ~ \^/api/\(?([a-z|]+)\)?\(/\|\$+\) \{\s*proxy_pass http://(\w+);"
    )
    for match in pattern.finditer(text):
        for name in match.group(1).split("|"):
            routes[f"/api/{name}"] = match.group(2)
    socket = re.search(r"location /socket\.io/ \{\s*proxy_pass http://\$+(\w+);", text)
    if socket:
        routes["/socket.io"] = "gateway" if socket.group(1) == "gateway_pool" else socket.group(1)
    return routes


def nginx_locations(text: str) -> dict[str, list[str]]:
    """Every ``location`` block of the server: its match and its directives, comments dropped."""
    blocks = re.finditer(r"^ {8}location ([^{]+)\{\n(.*?)^ {8}\}", text, flags=re.M | re.S)
    return {
        match.group(1).strip(): [
            line.strip()
            for line in match.group(2).splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        for match in blocks
    }


def test_routes_agree_with_the_nginx_template() -> None:
    template = nginx_routes((ROOT / "deploy/nginx/fleet.conf.template").read_text())
    assert set(template) == {
        "/api/auth",
        "/api/users",
        "/api/chat",
        "/api/media",
        "/api/notifications",
        "/socket.io",
    }
    assert nginx_routes((ROOT / "deploy/compose/nginx.conf").read_text()) == template
    dev = render_kustomize("overlays/dev")
    ingress = {
        path["path"]: path["backend"]["service"]["name"]
        for doc in of_kind(dev, "Ingress")
        for rule in doc["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert ingress == {**template, "/": "web"}
    socket = next(d for d in of_kind(dev, "Ingress") if "/socket.io" in str(d["spec"]))
    annotations = socket["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    # Body limits as nginx's: the API's, and the larger one of `location = /api/media` only.
    site = NginxSite("127.0.0.1", 3000, Path("/run"), (8001,), (8002,), (8003,), (8004,))
    body = "nginx.ingress.kubernetes.io/proxy-body-size"
    limits = {
        (path["path"], path["pathType"]): doc["metadata"]["annotations"][body]
        for doc in of_kind(dev, "Ingress")
        if body in doc["metadata"].get("annotations", {})
        for rule in doc["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert limits[("/api/media", "Exact")] == site.media_max_body
    assert limits[("/api/media", "Prefix")] == site.max_body


def test_gateway_api_route_matches_the_nginx_routes() -> None:
    template = nginx_routes((ROOT / "deploy/nginx/fleet.conf.template").read_text())
    docs = render_kustomize("overlays/prod")
    (route,) = of_kind(docs, "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"]
    found: dict[str, str] = {}
    for rule in route["spec"]["rules"]:
        (backend,) = rule["backendRefs"]
        service = named(docs, "Service", backend["name"])
        assert backend["port"] == service["spec"]["ports"][0]["port"]
        for match in rule["matches"]:
            assert match["path"]["type"] == "PathPrefix"
            found[match["path"]["value"]] = backend["name"]
        if backend["name"] == "gateway":
            assert rule["sessionPersistence"]["type"] == "Cookie"
    assert found == {**template, "/": "web"}


def test_compose_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    """`nginx -t` on the compose config, with its compose host names mapped to loopback and the
    `resolve` parameter (nginx 1.27.3+, newer than the nginx this machine runs) dropped."""
    text = (ROOT / "deploy/compose/nginx.conf").read_text()
    text = re.sub(r" resolve([ ;])", r"\1", text)
    text = re.sub(r"server (?:auth|chat|gateway|gateway-2|workers):", "server 127.0.0.1:", text)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    check_config(conf)


def test_compose_nginx_has_every_location_of_the_template() -> None:
    template = (ROOT / "deploy/nginx/fleet.conf.template").read_text().replace("$$", "$")
    site = NginxSite("127.0.0.1", 3000, Path("/run"), (8001,), (8002,), (8003,), (8004,))
    template = template.replace("${max_body}", site.max_body)
    template = template.replace("${media_max_body}", site.media_max_body)
    template = template.replace("${web_root}", "/srv/web")  # where compose mounts clients/web
    compose = (ROOT / "deploy/compose/nginx.conf").read_text()
    expected = nginx_locations(template)
    assert len(expected) >= 8
    assert nginx_locations(compose) == expected
    limit = re.search(r"^ {4}client_max_body_size (\S+);", compose, flags=re.M)
    assert limit
    assert limit.group(1) == site.max_body


def test_web_client_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    """The image's server block, inside the http block the nginx image gives it."""
    server = (ROOT / "clients/web/nginx.conf").read_text()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path};\n"
        f"  proxy_temp_path {tmp_path};\n  fastcgi_temp_path {tmp_path};\n"
        f"  uwsgi_temp_path {tmp_path};\n  scgi_temp_path {tmp_path};\n{server}\n}}\n"
    )
    check_config(conf)


WEB_PUBLIC = ROOT / "clients/web/public"
WEB_SERVERS = {  # config -> what it serves besides clients/web/public
    "deploy/nginx/fleet.conf.template": set(),
    "deploy/compose/nginx.conf": set(),
    "clients/web/nginx.conf": {"/vendor/socket.io.esm.min.js"},  # copied next to public/
}


def web_client_files() -> set[str]:
    files = (path for path in WEB_PUBLIC.rglob("*") if path.is_file())
    return {"/" + path.relative_to(WEB_PUBLIC).as_posix() for path in files}


def served_files_pattern(config: str) -> str:
    """The regex of the location that serves the web client's files (it names index.html)."""
    text = (ROOT / config).read_text().replace("$$", "$")
    (pattern,) = re.findall(r"^ *location ~ (\^/\(index\\\.html\|\S*) \{$", text, flags=re.M)
    return str(pattern)


def paths_matched(pattern: str) -> set[str]:
    """Every path a regex of literals, groups and alternatives matches, spelled out."""
    body = pattern.removeprefix("^").removesuffix("$")

    def alternatives(i: int) -> tuple[set[str], int]:
        options: set[str] = set()
        current = {""}
        while i < len(body) and body[i] != ")":
            char = body[i]
            if char == "(":
                inner, i = alternatives(i + 1)
                current = {a + b for a in current for b in inner}
            elif char == "|":
                options |= current
                current = {""}
            else:
                if char == "\\":
                    i += 1
                    char = body[i]
                elif char in ".*+?[]{}^$":
                    raise ValueError(f"not a list of literal paths: {pattern}")
                current = {a + char for a in current}
            i += 1
        return options | current, i

    return alternatives(0)[0]


@pytest.mark.parametrize("config", WEB_SERVERS)
def test_nginx_lists_exactly_the_web_clients_files(config: str) -> None:
    """A module added to (or removed from) clients/web/public is listed in every config, or the
    page would get a problem 404 for it; a listed name with no file would be a stale entry."""
    pattern = served_files_pattern(config)
    listed = paths_matched(pattern)
    assert all(re.fullmatch(pattern, path) for path in listed)
    assert listed == web_client_files() | WEB_SERVERS[config]
    for path in ("/app.js.map", "/package.json", "/nginx.conf", "/public/app.js", "/x/app.js"):
        assert not re.fullmatch(pattern, path), path


def test_paths_matched_spells_out_a_pattern() -> None:
    assert paths_matched(r"^/(a\.html|(b|c-d)\.js)$") == {"/a.html", "/b.js", "/c-d.js"}
    with pytest.raises(ValueError, match="literal"):
        paths_matched(r"^/(a|b.*)$")
