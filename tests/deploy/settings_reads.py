"""What the code reads is never listed by hand: ``names_read`` runs each service's own
``load_settings`` on a recording mapping, and the deploy checks compare that with what compose,
kustomize and ``.env.example`` provide."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import import_module

from servicekit.settings import SettingsError
from tests.deploy.rendered import ROOT


class RecordingEnviron(Mapping[str, str]):
    """An environment that records every name asked for and answers only what it was given."""

    def __init__(self, given: dict[str, str]) -> None:
        self.given = given
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self.given[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.given)

    def __len__(self) -> int:
        return len(self.given)


@dataclass(frozen=True)
class SettingsReads:
    names: frozenset[str]
    """Read with only the required variables set."""
    required: frozenset[str]
    default_port: int
    conditional: frozenset[str]
    """Read only once an optional variable is set: what a feature it switches on needs
    (``VAPID_SUBJECT`` once ``VAPID_PRIVATE_KEY`` is)."""
    switched_on: Mapping[str, str]
    """An environment that loads with every such feature on (each value ``x`` * 48)."""


PLACEHOLDER = "x" * 48


def load_filling_required(
    service: str, load: Callable[[Mapping[str, str]], object], given: dict[str, str]
) -> set[str] | None:
    """Loads the settings from ``given``, adding each required variable it asks for; the
    names it read, or None when it refused a value of ``given``."""
    for _ in range(50):
        environ = RecordingEnviron(given)
        try:
            load(environ)
        except SettingsError as error:
            missing = re.match(r"(\w+) is required", str(error))
            if missing is None:
                return None
            given[missing.group(1)] = PLACEHOLDER
            continue
        return environ.asked
    raise AssertionError(f"{service}: load_settings keeps asking for more required variables")


@cache
def names_read(service: str) -> SettingsReads:
    """Every variable ``<service>.config.load_settings`` reads, which have no default, and
    which it reads only once an optional one is set (found by setting each in turn)."""
    config = import_module(f"{service}.config")
    load: Callable[[Mapping[str, str]], object] = config.load_settings
    given: dict[str, str] = {}
    names = load_filling_required(service, load, given)
    if names is None:
        raise AssertionError(f"{service}: load_settings refuses its own defaults")
    required = set(given)
    read = set(names)
    tried: set[str] = set()
    while untried := sorted(read - set(given) - tried):
        for name in untried:
            tried.add(name)
            trial = {**given, name: PLACEHOLDER}
            asked = load_filling_required(service, load, trial)
            if asked is not None and asked - read:  # it switched something on
                read |= asked
                given = trial
    return SettingsReads(
        names=frozenset(names),
        required=frozenset(required),
        default_port=config.DEFAULT_PORT,
        conditional=frozenset(read - names),
        switched_on=given,
    )


def env_example_names() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.M))


def must_be_set_in_containers(name: str, reads: SettingsReads) -> bool:
    """Required names, and those whose default only fits a developer's machine: every URL
    (defaults point at 127.0.0.1) and every path (defaults are relative to a checkout)."""
    return name in reads.required or name.endswith(("_URL", "_ROOT"))
