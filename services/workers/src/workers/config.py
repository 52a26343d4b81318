"""Workers settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from servicekit.settings import (
    Environment,
    ExtendsServiceSettings,
    ServiceSettings,
    read_service_settings,
)

SERVICE = "workers"
DEFAULT_PORT = 8004


@dataclass(frozen=True, slots=True)
class MediaSettings:
    root: Path
    """The blob store's directory, shared with chat (``MEDIA_ROOT``)."""
    max_pixels: int
    thumbnail_size: int
    concurrency: int
    decode_budget_bytes: int
    """Bytes of decoded images held at once (each image's estimated peak)."""


# Hosts of the browsers' push services (Chrome, Firefox, Edge, Safari): a subscription
# endpoint elsewhere is refused, so the workers never POST to an address a client chose.
DEFAULT_WEB_PUSH_HOSTS = (
    "fcm.googleapis.com,updates.push.services.mozilla.com,notify.windows.com,push.apple.com"
)


@dataclass(frozen=True, slots=True)
class WebPushSettings:
    vapid_private_key: str
    """The application server's P-256 key: PEM, or the raw key in base64url."""
    vapid_subject: str
    """``mailto:`` or ``https:`` contact the push services may use."""
    allowed_hosts: tuple[str, ...]
    """Endpoint hosts accepted (each also matches its subdomains)."""


@dataclass(frozen=True, slots=True)
class FcmSettings:
    service_account: str
    """The Firebase service account's JSON (project, client email, private key, token URI)."""
    url: str


@dataclass(frozen=True, slots=True)
class ApnsSettings:
    private_key: str
    """The ``.p8`` signing key's PEM (``APNS_PRIVATE_KEY``: see ``private_key_pem``)."""
    key_id: str
    team_id: str
    topic: str
    """The app's bundle id."""
    url: str


@dataclass(frozen=True, slots=True)
class PushSettings:
    """Each platform is on when its credentials are set; a device of a platform that is off
    cannot be registered."""

    web_push: WebPushSettings | None
    fcm: FcmSettings | None
    apns: ApnsSettings | None
    max_attempts: int
    """Sends per device and notification, the first included, when the service answers 429
    or 5xx (waiting as ``Retry-After`` says, at most ``MAX_RETRY_WAIT`` seconds)."""


@dataclass(frozen=True, slots=True)
class WorkersSettings(ExtendsServiceSettings):
    service: ServiceSettings
    media: MediaSettings
    notification_push_interval: float
    """Seconds between two ``notification.created`` of one notification (0: every change)."""
    push: PushSettings


def load_settings(environ: Mapping[str, str] | None = None) -> WorkersSettings:
    env = Environment(environ)
    return WorkersSettings(
        service=read_service_settings(env, SERVICE, DEFAULT_PORT, postgres=False, mongo=True),
        media=MediaSettings(
            root=Path(env.text("MEDIA_ROOT", "./.run/media")),
            max_pixels=env.integer("MEDIA_MAX_PIXELS", 40_000_000, minimum=1),
            thumbnail_size=env.integer("MEDIA_THUMBNAIL_SIZE", 320, minimum=16, maximum=4096),
            concurrency=env.integer("MEDIA_CONCURRENCY", 2, minimum=1, maximum=64),
            decode_budget_bytes=env.integer(
                "MEDIA_DECODE_BUDGET_BYTES", 512 * 1024 * 1024, minimum=1024 * 1024
            ),
        ),
        notification_push_interval=env.number("NOTIFICATION_PUSH_INTERVAL", 2.0),
        push=_push_settings(env),
    )


def private_key_pem(value: str) -> str:
    """A private key as an environment variable can hold it on one line: a PEM whose line
    breaks are written ``\\n``, or only its base64 body (a ``.p8`` file's middle lines)."""
    text = value.replace("\\n", "\n").strip()
    if text.startswith("-----BEGIN"):
        return text + "\n"
    body = "".join(text.split())
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN PRIVATE KEY-----\n{lines}\n-----END PRIVATE KEY-----\n"


def _push_settings(env: Environment) -> PushSettings:
    vapid_key = env.optional_str("VAPID_PRIVATE_KEY")
    fcm_account = env.optional_str("FCM_SERVICE_ACCOUNT")
    apns_key = env.optional_str("APNS_PRIVATE_KEY")
    return PushSettings(
        web_push=None
        if vapid_key is None
        else WebPushSettings(
            vapid_private_key=vapid_key,
            vapid_subject=env.text("VAPID_SUBJECT"),
            allowed_hosts=env.csv("WEB_PUSH_ALLOWED_HOSTS", DEFAULT_WEB_PUSH_HOSTS),
        ),
        fcm=None
        if fcm_account is None
        else FcmSettings(
            service_account=fcm_account,
            url=env.url("FCM_URL", ("https", "http"), "https://fcm.googleapis.com"),
        ),
        apns=None
        if apns_key is None
        else ApnsSettings(
            private_key=private_key_pem(apns_key),
            key_id=env.text("APNS_KEY_ID"),
            team_id=env.text("APNS_TEAM_ID"),
            topic=env.text("APNS_TOPIC"),
            url=env.url("APNS_URL", ("https", "http"), "https://api.push.apple.com"),
        ),
        max_attempts=env.integer("PUSH_MAX_ATTEMPTS", 3, minimum=1, maximum=10),
    )
