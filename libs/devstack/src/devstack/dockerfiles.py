"""The services' Dockerfiles, rendered from one template.

Every service image is built the same way; only the name, the port and (for the services that
keep media files) a volume mount point differ. ``deploy/docker/service.Dockerfile.template``
holds the one text; ``python -m devstack.dockerfiles`` writes ``services/<svc>/Dockerfile``
from it, and ``make deploy-check`` fails when a committed Dockerfile is not its rendering.
"""

from __future__ import annotations

import sys
from pathlib import Path

from devstack.nginx import repo_root

TEMPLATE = Path("deploy/docker/service.Dockerfile.template")
PORTS = {"auth": 8001, "chat": 8002, "gateway": 8003, "workers": 8004}
MEDIA_SERVICES = frozenset({"chat", "workers"})
_MEDIA_ROOT = (
    "# MEDIA_ROOT's mount point, owned by the service user so a fresh named volume inherits it.\n"
    "RUN install -d -o 10001 -g 10001 /var/lib/chat-media\n"
)


def render_dockerfile(service: str, root: Path | None = None) -> str:
    text = ((root or repo_root()) / TEMPLATE).read_text()
    media = _MEDIA_ROOT if service in MEDIA_SERVICES else ""
    return (
        text.replace("@@MEDIA_ROOT@@\n", media)
        .replace("@@SERVICE@@", service)
        .replace("@@PORT@@", str(PORTS[service]))
    )


def dockerfile_path(service: str, root: Path | None = None) -> Path:
    return (root or repo_root()) / "services" / service / "Dockerfile"


def main() -> int:
    for service in PORTS:
        path = dockerfile_path(service)
        path.write_text(render_dockerfile(service))
        print(f"wrote {path.relative_to(repo_root())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
