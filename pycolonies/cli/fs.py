"""``colonies fs``: colony files under labels, snapshots, and syncing a directory with a label.

The bytes go to and come from the server's embedded blob store (files stored in S3 by the
reference's tools are listed, but this CLI does not fetch them yet)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from pycolonies.cli.common import (
    CliError,
    ColonyOption,
    JsonOption,
    checked_id,
    confirm_destructive,
    console,
    fail,
    info,
    pick,
    print_details,
    print_json,
    print_listing,
    print_table,
    session,
)
from pycolonies.client import Colonies
from pycolonies.filesync import SyncPlan, Transfer
from pycolonies.models import normalize_label

app = typer.Typer(no_args_is_help=True, help="Colony files: labels, snapshots, sync.")
label_app = typer.Typer(no_args_is_help=True, help="File labels (virtual directories).")
snapshot_app = typer.Typer(no_args_is_help=True, help="Snapshots: frozen revisions of a label's files.")
app.add_typer(label_app, name="label")
app.add_typer(snapshot_app, name="snapshot")

LabelOption = Annotated[str, typer.Option("--label", "-l", help="Label, e.g. /data/raw")]
NameOption = Annotated[str | None, typer.Option("--name", "-n", help="File name under --label")]
FileIdOption = Annotated[str | None, typer.Option("--fileid", "-i", help="File (revision) id")]
DirOption = Annotated[Path, typer.Option("--dir", "-d", help="Local directory")]
SnapshotIdOption = Annotated[str | None, typer.Option("--snapshotid", "-i", help="Snapshot id")]
SnapshotNameOption = Annotated[str | None, typer.Option("--snapshotname", "-n", help="Snapshot name")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")]


def _checked_id(value: str | None, flag: str) -> str:
    """A given id option (checked), or "" when not given."""
    if value is None:
        return ""
    try:
        return checked_id(value, flag)
    except CliError as exc:
        fail(str(exc))


def _one_file(name: str | None, fileid: str | None, label: str | None) -> None:
    _checked_id(fileid, "--fileid")
    if bool(name) == bool(fileid):
        fail("give either --fileid, or --label and --name")
    if name and not label:
        fail("--name needs --label")


@app.command("ls")
def fs_ls(label: LabelOption = "/", colony: ColonyOption = None, json_output: JsonOption = False) -> None:
    """List the files under a label: each one's latest revision (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        colonyname, key = settings.colony(colony), settings.key()
        files = client.get_files(label, colonyname, key)
        rows = []
        for item in files:
            revisions = client.get_file(colonyname, key, label=label, filename=item["name"], latest=False)
            latest = revisions[0] if revisions else {}
            rows.append({**item, "fileid": latest.get("fileid", ""), "added": latest.get("added", ""),
                         "revisions": len(revisions)})
    print_listing(rows, [("filename", pick("name")), ("size", pick("size")), ("latest id", pick("fileid")),
                         ("added", pick("added")), ("revisions", pick("revisions"))],
                  json_output=json_output, empty=f"No files under label {normalize_label(label)}")


@app.command("info")
def fs_info(label: LabelOption = "", name: NameOption = None, fileid: FileIdOption = None,
            colony: ColonyOption = None, json_output: JsonOption = False) -> None:
    """Show a file's latest revision, or a revision by id."""
    _one_file(name, fileid, label)
    with session() as (settings, client):
        found = client.get_file(settings.colony(colony), settings.key(), label=label, fileid=fileid,
                                filename=name)
    file = found[0]
    if json_output:
        print_json(file)
        return
    print_details([("Id", file["fileid"]), ("Label", file["label"]), ("Name", file["name"]),
                   ("Size", file["size"]), ("Sequence nr", file["sequencenr"]),
                   ("Checksum", f"{file['checksumalg']}:{file['checksum']}"), ("Added", file["added"]),
                   ("Stored", (file.get("ref") or {}).get("protocol", ""))])


@app.command("get")
def fs_get(label: LabelOption = "", name: NameOption = None, fileid: FileIdOption = None,
           directory: DirOption = Path("."), colony: ColonyOption = None) -> None:
    """Download a file (its latest revision, or a revision by id) into --dir."""
    _one_file(name, fileid, label)
    directory.mkdir(parents=True, exist_ok=True)
    with session() as (settings, client):
        path = client.download_file(settings.colony(colony), settings.key(), dst=str(directory), label=label,
                                    fileid=fileid, filename=name)
    typer.echo(path)


@app.command("remove")
def fs_remove(label: LabelOption = "", name: NameOption = None, fileid: FileIdOption = None,
              colony: ColonyOption = None) -> None:
    """Remove a revision (--fileid), or every revision of a file (--label and --name)."""
    _one_file(name, fileid, label)
    with session() as (settings, client):
        client.delete_file(settings.colony(colony), settings.key(), label=label, fileid=fileid, filename=name)
    info(f"Removed {fileid or name}")


MetaOption = Annotated[list[str] | None, typer.Option(
    "--meta", "-m", help="Metadata KEY=VALUE (repeatable)")]


def _metadata(pairs: list[str] | None) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--meta {pair!r}: give KEY=VALUE")
        metadata[key] = value
    return metadata


@app.command("put")
def fs_put(
    file: Annotated[Path, typer.Option("--file", "-f", help="Local file to upload")],
    label: LabelOption,
    meta: MetaOption = None,
    processid: Annotated[str | None, typer.Option(help="The process that produced the file")] = None,
    colony: ColonyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Upload one file as a new revision under --label, with metadata (our extension)."""
    if not file.is_file():
        fail(f"--file {file} is not a file")
    metadata, producer = _metadata(meta), _checked_id(processid, "--processid")
    with session() as (settings, client):
        record = client.upload_file(settings.colony(colony), settings.key(), filepath=str(file), label=label,
                                    metadata=metadata, processid=producer)
    if json_output:
        print_json(record)
    else:
        typer.echo(f"FileId: {record['fileid']}")


@app.command("search")
def fs_search(
    label: LabelOption = "",
    name: Annotated[str, typer.Option("--name", "-n", help="File name")] = "",
    meta: MetaOption = None,
    processid: Annotated[str | None, typer.Option(help="Produced by this process")] = None,
    count: Annotated[int, typer.Option(help="At most this many (1-100), newest first")] = 100,
    colony: ColonyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Find revisions by label (and below it), name, metadata and producing process."""
    producer = _checked_id(processid, "--processid")
    with session() as (settings, client):
        found = client.search_files(settings.colony(colony), settings.key(), label=label, name=name,
                                    metadata=_metadata(meta), processid=producer, count=count)
    print_listing(found, [("label", pick("label")), ("name", pick("name")), ("size", pick("size")),
                          ("id", pick("fileid")), ("metadata", pick("metadata")), ("added", pick("added"))],
                  json_output=json_output, empty="No files found")


@app.command("sync")
def fs_sync(
    directory: DirOption,
    label: LabelOption,
    keeplocal: Annotated[bool, typer.Option(
        "--keeplocal/--keepremote",
        help="On a conflict keep the local bytes (upload them) or the label's")] = True,
    dry: Annotated[bool, typer.Option("--dry", help="Show the plan, transfer nothing")] = False,
    yes: YesOption = False,
    colony: ColonyOption = None,
) -> None:
    """Make --dir and --label hold the same files.

    Uploads what only the directory has and downloads what only the label has; on a conflict
    --keeplocal (default) uploads the local bytes as a new revision, --keepremote replaces the
    local file (asks first, unless --yes)."""
    if directory.exists() and not directory.is_dir():
        fail(f"--dir {directory} is not a directory")
    if not dry:
        directory.mkdir(parents=True, exist_ok=True)
    with session() as (settings, client):
        colonyname, key = settings.colony(colony), settings.key()
        plan = client.sync_plan(str(directory), label, keeplocal, colonyname, key)
        _print_plan(plan)
        if dry or plan.empty:
            return
        if any(t.conflict for t in plan.downloads):
            confirm_destructive("replace local files with the label's revisions", yes)
        _apply(client, plan, colonyname, key)
    info(f"Synced {directory} with {plan.label}: {len(plan.uploads)} uploaded, {len(plan.downloads)} "
         f"downloaded, {plan.unchanged} unchanged")


def _print_plan(plan: SyncPlan) -> None:
    rows = [{"file": t.name, "size": t.size, "label": t.label,
             "action": action + (" (conflict)" if t.conflict else "")}
            for action, transfers in (("upload", plan.uploads), ("download", plan.downloads))
            for t in transfers]
    if not rows:
        info(f"Nothing to sync: {plan.unchanged} file(s) the same on both sides")
        return
    print_table(rows, [("file", pick("file")), ("size", pick("size")), ("label", pick("label")),
                       ("action", pick("action"))])


def _apply(client: Colonies, plan: SyncPlan, colonyname: str, key: str) -> None:
    total = sum(t.size for t in plan.uploads + plan.downloads)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), console=console(),
                  disable=not console().is_terminal, transient=True) as bar:
        task = bar.add_task("sync", total=total)

        def step(transfer: Transfer) -> None:
            bar.update(task, description=transfer.name)
            bar.advance(task, transfer.size)

        client.apply_sync(plan, colonyname, key, progress=step)


@label_app.command("ls")
def label_ls(colony: ColonyOption = None, json_output: JsonOption = False) -> None:
    """List the colony's labels with their number of files."""
    with session() as (settings, client):
        labels = client.get_file_labels(settings.colony(colony), settings.key())
    print_listing(labels, [("label", pick("name")), ("files", pick("files"))],
                  json_output=json_output, empty="No labels found")


@label_app.command("remove")
def label_remove(label: LabelOption, yes: YesOption = False, colony: ColonyOption = None) -> None:
    """Remove every file under a label (not the labels below it)."""
    confirm_destructive(f"remove every file under label {normalize_label(label)}", yes)
    with session() as (settings, client):
        colonyname, key = settings.colony(colony), settings.key()
        files = client.get_files(label, colonyname, key)
        for file in files:
            client.delete_file(colonyname, key, label=label, filename=file["name"])
    info(f"Removed {len(files)} file(s) under {normalize_label(label)}")


def _snapshot_choice(snapshotid: str | None, name: str | None) -> None:
    """Exactly one of --snapshotid (well formed) and --snapshotname."""
    _checked_id(snapshotid, "--snapshotid")
    if bool(snapshotid) == bool(name):
        fail("give either --snapshotid or --snapshotname")


def _snapshot(client: Colonies, colonyname: str, key: str, snapshotid: str | None, name: str | None) -> Any:
    _snapshot_choice(snapshotid, name)
    if snapshotid:
        return client.get_snapshot_by_id(colonyname, snapshotid, key)
    return client.get_snapshot_by_name(colonyname, name or "", key)


@snapshot_app.command("create")
def snapshot_create(label: LabelOption,
                    name: Annotated[str, typer.Option("--snapshotname", "-n", help="Snapshot name")],
                    colony: ColonyOption = None) -> None:
    """Freeze the latest revision of every file under --label (and below it)."""
    with session() as (settings, client):
        snapshot = client.create_snapshot(settings.colony(colony), label, name, settings.key())
    typer.echo(f"SnapshotId: {snapshot['snapshotid']}")
    info(f"Snapshot {name} holds {len(snapshot['fileids'])} file(s)")


@snapshot_app.command("ls")
def snapshot_ls(colony: ColonyOption = None, json_output: JsonOption = False) -> None:
    with session() as (settings, client):
        snapshots = client.get_snapshots(settings.colony(colony), settings.key())
    print_listing(snapshots, [("name", pick("name")), ("label", pick("label")), ("id", pick("snapshotid")),
                              ("files", lambda s: len(s.get("fileids") or [])), ("added", pick("added"))],
                  json_output=json_output, empty="No snapshots found")


@snapshot_app.command("info")
def snapshot_info(snapshotid: SnapshotIdOption = None, name: SnapshotNameOption = None,
                  colony: ColonyOption = None, json_output: JsonOption = False) -> None:
    with session() as (settings, client):
        snapshot = _snapshot(client, settings.colony(colony), settings.key(), snapshotid, name)
    if json_output:
        print_json(snapshot)
        return
    print_details([("Id", snapshot["snapshotid"]), ("Name", snapshot["name"]), ("Label", snapshot["label"]),
                   ("Files", len(snapshot["fileids"])), ("Added", snapshot["added"])])


@snapshot_app.command("download")
def snapshot_download(directory: DirOption, snapshotid: SnapshotIdOption = None,
                      name: SnapshotNameOption = None, colony: ColonyOption = None) -> None:
    """Download every file a snapshot holds into --dir, in the label's tree below its label."""
    with session() as (settings, client):
        colonyname, key = settings.colony(colony), settings.key()
        _snapshot_choice(snapshotid, name)
        written = client.download_snapshot(colonyname, key, str(directory), snapshotid=snapshotid, name=name)
    info(f"Downloaded {len(written)} file(s) into {directory}")


@snapshot_app.command("remove")
def snapshot_remove(snapshotid: SnapshotIdOption = None, name: SnapshotNameOption = None,
                    colony: ColonyOption = None) -> None:
    with session() as (settings, client):
        colonyname, key = settings.colony(colony), settings.key()
        snapshot = _snapshot(client, colonyname, key, snapshotid, name)
        client.remove_snapshot_by_id(colonyname, snapshot["snapshotid"], key)
    info(f"Removed snapshot {snapshot['name']}")


@snapshot_app.command("removeall")
def snapshot_removeall(yes: YesOption = False, colony: ColonyOption = None) -> None:
    confirm_destructive("remove every snapshot of the colony", yes)
    with session() as (settings, client):
        client.remove_all_snapshots(settings.colony(colony), settings.key())
    info("Removed all snapshots")
