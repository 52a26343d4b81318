"""``python -m devstack``: help and mistakes are answered without starting anything."""

from __future__ import annotations

import pytest

from devstack import __main__ as cli


@pytest.fixture(autouse=True)
def no_fleet(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[str] = []

    def record() -> None:
        started.append("fleet")

    monkeypatch.setattr(cli, "run_fleet", record)
    return started


@pytest.mark.parametrize("argv", [["--help"], ["up", "--help"], ["up", "-h"]])
def test_help_prints_usage_and_starts_nothing(
    argv: list[str], no_fleet: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 0
    assert "python -m devstack" in capsys.readouterr().out
    assert no_fleet == []


@pytest.mark.parametrize("argv", [["down"], ["up", "--now"]])
def test_an_unknown_command_or_option_is_refused(argv: list[str], no_fleet: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert no_fleet == []


@pytest.mark.parametrize("argv", [[], ["up"]])
def test_up_and_no_command_start_the_fleet(argv: list[str], no_fleet: list[str]) -> None:
    cli.main(argv)
    assert no_fleet == ["fleet"]
