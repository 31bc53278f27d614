"""The dashboard in a real Chromium against a real server and a real executor (the toy kind, over
the wire): sign in with a key, watch a workflow's DAG turn green live, tail a process's logs and
cancel it from the page, and never see what the key may not see.

Screenshots of the overview, a process and a DAG are written to ``$COLONIES_SCREENSHOTS``
(default ``build/screenshots``, ignored by git) for a reviewer to look at.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from executors.config import ExecutorConfig
from pycolonies import Colonies, crypto, wire
from tests.conftest import ColonyEnv, make_colony
from tests.executors.toy_executor import ToyExecutor
from tests.support.browser import PageLog, base_url

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(os.environ.get("COLONIES_SCREENSHOTS", "build/screenshots"))


async def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Any, colony: ColonyEnv, prvkey: str, colonyname: str | None = None) -> None:
    await page.goto(base_url(colony.server) + "/")
    await page.fill("input[name=prvkey]", prvkey)
    await page.fill("input[name=colony]", colonyname or colony.colonyname)
    await page.click("form.signin button[type=submit]")


async def signed_in(page: Any, colony: ColonyEnv, prvkey: str) -> None:
    await sign_in(page, colony, prvkey)
    await page.wait_for_selector(f"[data-who='{crypto.derive_id(prvkey)}']")


@pytest.fixture
def toy(colony: ColonyEnv) -> Iterator[Callable[[], None]]:
    """Start (when the test calls it) a toy executor of the colony in its own thread."""
    started: list[tuple[ToyExecutor, asyncio.AbstractEventLoop, threading.Thread]] = []

    def start() -> None:
        config = ExecutorConfig(host=colony.server.host, port=colony.server.port,
                                colonyname=colony.colonyname, colony_prvkey=colony.colony_prvkey,
                                executortype="toy", heartbeat_interval=0)
        executor = ToyExecutor(config, announce=lambda line: None)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_until_complete, args=(executor.run(),), daemon=True)
        thread.start()
        started.append((executor, loop, thread))

    yield start
    for executor, loop, thread in started:
        loop.call_soon_threadsafe(executor.stop)
        thread.join(30)
        loop.close()


def toy_spec(colony: ColonyEnv, funcname: str, *args: Any, nodename: str = "", parents: tuple = ()) -> dict:
    return {"nodename": nodename, "funcname": funcname, "args": list(args), "maxexectime": -1,
            "maxretries": 0, "conditions": {"colonyname": colony.colonyname, "executortype": "toy",
                           "dependencies": list(parents)}}


async def has_count(locator: Any, count: int) -> None:
    """Wait until ``locator`` matches ``count`` elements (Playwright's expect; the page's CSP
    forbids the eval that ``wait_for_function`` with a string needs)."""
    from playwright.async_api import expect

    await expect(locator).to_have_count(count)


async def until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Wait (without blocking the page's event loop) until ``check()`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(check):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_sign_in_shows_who_you_are_and_the_overview(page: Any, page_log: PageLog,
                                                          colony: ColonyEnv) -> None:
    for n in range(3):
        colony.client.submit_func_spec(toy_spec(colony, "echo", n), colony.user_prvkey)
    await signed_in(page, colony, colony.user_prvkey)
    who = await page.text_content(".who")
    assert f"user {colony.username}" in who and f"colony {colony.colonyname}" in who
    await page.wait_for_selector("[data-total=waiting] strong >> text=3")
    assert "toy" in await page.text_content("section.view table")
    await screenshot(page, "overview")
    assert page_log.errors == []


async def test_a_workflow_turns_green_live_as_an_executor_runs_it(
    page: Any, page_log: PageLog, colony: ColonyEnv, toy: Callable[[], None],
) -> None:
    specs = [toy_spec(colony, "echo", "x", nodename="extract"),
             toy_spec(colony, "echo", nodename="left", parents=("extract",)),
             toy_spec(colony, "echo", nodename="right", parents=("extract",)),
             toy_spec(colony, "echo", nodename="join", parents=("left", "right"))]
    graph = colony.client.submit_workflow({"colonyname": colony.colonyname, "functionspecs": specs},
                                          colony.user_prvkey)
    await signed_in(page, colony, colony.user_prvkey)
    await page.click("nav.main >> text=Workflows")
    await page.click("nav.tabs >> text=waiting")
    await page.click(f"a[href='#/workflow/{graph.processgraphid}']")
    await page.wait_for_selector("[data-live=yes]")
    nodes = page.locator("svg.dag g.node")
    assert await nodes.count() == 4
    assert await page.locator("svg.dag g.node[data-state=waiting]").count() == 4
    toy()  # the executor starts only now: every change below reaches the page live
    await page.wait_for_selector("svg.dag g.node[data-name=join][data-state=successful]")
    assert await page.locator("svg.dag g.node[data-state=successful]").count() == 4
    assert page.url.endswith(f"#/workflow/{graph.processgraphid}")  # no reload, no navigation
    await screenshot(page, "workflow-dag")
    await page.click("svg.dag g.node[data-name=extract]")
    await page.wait_for_selector("[data-field=output] >> text=x")
    assert page_log.errors == []


async def test_logs_appear_live_and_cancel_from_the_page_cancels_on_the_server(
    page: Any, page_log: PageLog, colony: ColonyEnv, toy: Callable[[], None],
) -> None:
    process = colony.client.submit_func_spec(toy_spec(colony, "sleep", 60), colony.user_prvkey)
    await signed_in(page, colony, colony.user_prvkey)
    await page.goto(base_url(colony.server) + f"/#/process/{process.processid}")
    await page.wait_for_selector(".title .badge[data-state=waiting]")
    toy()
    await page.wait_for_selector(".title .badge[data-state=running]")
    await page.wait_for_selector("pre.logs >> text=tick 3")  # ticks arrive while it runs
    assert colony.client.get_process(process.processid, colony.user_prvkey).state == wire.RUNNING
    await screenshot(page, "process")
    cancel = page.locator("button[data-action=cancel]")
    await cancel.click()
    await cancel.click()  # the second click confirms
    await until(lambda: colony.client.get_process(process.processid, colony.user_prvkey).state
                == wire.CANCELLED, "the process to be cancelled on the server")
    await page.wait_for_selector(".title .badge[data-state=cancelled]")
    assert page_log.errors == []


async def test_a_wrong_key_gets_a_clear_message_and_no_data(page: Any, colony: ColonyEnv) -> None:
    colony.client.submit_func_spec(toy_spec(colony, "echo"), colony.user_prvkey)
    stranger = crypto.generate_private_key()
    await sign_in(page, colony, stranger)
    error = page.locator(".signin-status .message.error")
    await error.wait_for()
    assert "not a member" in await error.text_content()
    assert crypto.derive_id(stranger)[:12] in await error.text_content()
    assert await page.locator(".shell").count() == 0
    await sign_in(page, colony, "not a key")
    await page.wait_for_selector(".signin-status >> text=Invalid private key")
    assert await page.locator(".shell").count() == 0


async def test_another_colonys_data_is_never_shown(page: Any, colony: ColonyEnv) -> None:
    mine = colony.client.submit_func_spec(toy_spec(colony, "echo", "mine"), colony.user_prvkey)
    with Colonies(colony.server.host, colony.server.port) as client:
        other = make_colony(client, colony.server, "other")
        theirs = client.submit_func_spec({**toy_spec(other, "echo", "theirs")}, other.user_prvkey)
    await signed_in(page, colony, colony.user_prvkey)
    await page.goto(base_url(colony.server) + "/#/processes?state=0")
    await page.wait_for_selector(f"a[href='#/process/{mine.processid}']")
    assert await page.locator(f"a[href='#/process/{theirs.processid}']").count() == 0
    await page.goto(base_url(colony.server) + f"/#/process/{theirs.processid}")
    await page.wait_for_selector(".message.error >> text=not a member")
    assert "theirs" not in await page.content()
    # This colony's key is no member of the other colony either.
    await page.click("button.signout")
    await sign_in(page, colony, colony.user_prvkey, "other")
    await page.wait_for_selector(".signin-status .message.error >> text=not a member")


async def test_the_owner_approves_a_pending_executor(page: Any, colony: ColonyEnv) -> None:
    colony.add_executor("newcomer", "toy", approve=False)
    await signed_in(page, colony, colony.colony_prvkey)
    await page.wait_for_selector("text=newcomer")
    row = page.locator("tr", has_text="newcomer")
    await row.locator("button >> text=Approve").click()
    await page.wait_for_selector("tr:has-text('newcomer') .badge.executor-approved")
    executors = colony.client.list_executors(colony.colonyname, colony.user_prvkey)
    assert {e["executorname"]: e["state"] for e in executors}["newcomer"] == wire.APPROVED


async def test_submit_from_the_registry_then_resubmit_and_remove_a_failure(
    page: Any, page_log: PageLog, colony: ColonyEnv, toy: Callable[[], None],
) -> None:
    toy()  # registers its functions, then runs what is submitted
    await signed_in(page, colony, colony.user_prvkey)
    await page.click("nav.main >> text=Submit")
    select = page.locator("select[name=function]")
    await page.wait_for_selector("select[name=function] option >> text=fail (toy)", state="attached")
    await select.select_option(label="fail (toy)")
    await page.fill("textarea[name=args]", "not json")
    await page.click("form.submit button[type=submit]")
    await page.wait_for_selector(".message.error >> text=args")  # refused in the page, nothing sent
    await page.fill("textarea[name=args]", '["disk full"]')
    await page.click("form.submit button[type=submit]")
    await page.wait_for_selector(".title .badge[data-state=failed]")
    assert "disk full" in await page.text_content("[data-field=errors]")
    first = page.url.rsplit("/", 1)[-1]
    await page.click("button[data-action=resubmit]")
    await page.wait_for_url(lambda url: not url.endswith(first))
    second = page.url.rsplit("/", 1)[-1]
    await page.wait_for_selector(".title .badge[data-state=failed]")
    again = colony.client.get_process(second, colony.user_prvkey)
    assert again.spec.funcname == "fail" and again.spec.args == ["disk full"]
    remove = page.locator("button[data-action=remove]")
    await remove.click()
    await remove.click()
    await page.wait_for_url(lambda url: "#/processes" in url)
    await until(lambda: not [p for p in colony.client.list_processes(colony.colonyname, 100, wire.FAILED,
                                                                    colony.user_prvkey)
                             if p["processid"] == second], "the resubmitted process to be removed")
    # The page asked for nothing it may not have: Chromium logs no failed request.
    assert page_log.errors == []


async def test_process_pages_and_filters(page: Any, colony: ColonyEnv) -> None:
    for n in range(53):
        spec = {**toy_spec(colony, "echo", n), "label": "batch" if n % 2 else "other"}
        colony.client.submit_func_spec(spec, colony.user_prvkey)
    await signed_in(page, colony, colony.user_prvkey)
    await page.goto(base_url(colony.server) + "/#/processes?state=0")
    rows = page.locator("section.view table tbody tr")
    await has_count(rows, 50)
    await page.click("text=Next →")
    await has_count(rows, 3)
    await page.click("text=← Previous")
    await has_count(rows, 50)
    await page.fill("form.filters input[name=label]", "batch")
    await page.click("form.filters button >> text=Apply")
    await has_count(rows, 26)
