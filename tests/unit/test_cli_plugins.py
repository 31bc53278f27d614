"""The commands contributed to ``colonies`` through the ``colonies.commands`` entry-point group."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import typer
from typer.testing import CliRunner

from pycolonies.cli import plugins


def contributed() -> dict[str, metadata.EntryPoint]:
    return {entry.name: entry for entry in metadata.entry_points(group=plugins.GROUP)}


def test_the_server_and_the_executors_contribute_their_commands() -> None:
    entries = contributed()
    assert {name: entry.value for name, entry in entries.items()} == {
        "server.start": "server.commands:start [server]",
        "database": "server.commands:database_app [server]",
        "dev": "server.dev:dev [server]",
        "executor.start": "executors.commands:executor_start",
    }
    assert entries["server.start"].extras == ["server"] and entries["executor.start"].extras == []


def test_an_installed_extra_has_nothing_missing() -> None:
    assert plugins.missing_requirements(metadata.distribution(plugins.DISTRIBUTION), ["server"]) == []


def fake_distribution(tmp_path: Path, *requires: str) -> metadata.Distribution:
    """A real distribution read from a ``.dist-info`` directory written here."""
    info = tmp_path / "example-1.0.dist-info"
    info.mkdir()
    lines = ["Metadata-Version: 2.1", "Name: example", "Version: 1.0",
             *(f"Requires-Dist: {requirement}" for requirement in requires)]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    return metadata.PathDistribution(info)


def test_missing_requirements_are_those_of_the_extra_that_are_not_installed(tmp_path: Path) -> None:
    dist = fake_distribution(
        tmp_path,
        "typer>=0.12",  # not of an extra
        'no-such-package-for-colonies>=1; extra == "server"',
        'typer>=0.12; extra == "server"',  # installed
        "another-missing-package; extra == 'other'",
    )
    assert plugins.missing_requirements(dist, ["server"]) == ["no-such-package-for-colonies"]
    assert plugins.missing_requirements(dist, ["other"]) == ["another-missing-package"]
    assert plugins.missing_requirements(dist, []) == []


def test_an_unavailable_command_fails_in_one_line_whatever_its_arguments() -> None:
    app = typer.Typer()
    app.command("other")(lambda: None)
    app.command("start", context_settings=plugins._ANY_ARGUMENTS)(
        plugins._unavailable("server start", "needs the server extra: install colonies-py[server]"))
    result = CliRunner().invoke(app, ["start", "--port", "1", "extra"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: 'colonies server start' needs the server extra: install colonies-py[server]"]
