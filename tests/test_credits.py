"""Credits on both engines (a real SQLite file, a real PostgreSQL server) against the simulator: a
price held before the proxy is asked, settled or refunded once whatever crashes or races, refills
once per period, admins' changes, reports, and bad input."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
import time
from pathlib import Path

import pytest

from bot.core.config import AlertsSettings, load_settings
from bot.core.credits import SCALE, format_amount, next_period_start, price_name, to_units
from bot.core.errors import (
    AdminOnly,
    BadAmount,
    BannedPrompt,
    ConfigError,
    NotEnoughCredits,
    TakeTooMuch,
)
from bot.core.models import Action, Job, Phase, Status, Submission, TaskButton
from bot.ops.alerts import AlertMonitor
from bot.ops.spend_alert import SpendAlert
from bot.ops.spend_report import COLUMNS as SPEND_COLUMNS
from bot.sandbox.proxy_sim import ProxySim
from bot.storage import Store, ledger
from bot.storage.ledger import ORDER_SQL, Charge
from tests.service_harness import ADMIN, GUILD, OWNER, ROLE, Harness, who
from tests.test_cli import ROOT, run_cli

ONE = SCALE  # one credit, in units
CREDITS = {"enabled": True, "starting_balance": 1, "prices": {"mj_imagine": 0.1, "mj_upscale": 0.05}}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "credits.sqlite3")
    return request.getfixturevalue("pg_dsn")


@pytest.fixture
async def services(sim: ProxySim, db_url: str):
    """Services over one database: each is a process of its own as far as the database can tell."""
    made: list[Harness] = []

    async def make(**settings) -> Harness:
        settings.setdefault("credits", CREDITS)
        harness = Harness(sim, db_url, access={"admin_user_ids": [ADMIN]}, **settings)
        made.append(harness)
        await harness.start()
        return harness

    yield make
    for harness in made:
        await harness.stop()


async def ledger_rows(harness: Harness, nonce: str | None = None) -> list[tuple[str, int]]:
    where, params = ("WHERE nonce = ?", (nonce,)) if nonce is not None else ("", ())
    sql = f"SELECT kind, amount FROM ledger {where} ORDER BY {ORDER_SQL}"
    return [(kind, int(amount)) for kind, amount in await harness.store.database.fetch(sql, params)]


async def finished(harness: Harness, task_id: str) -> Job:
    async def done() -> Job | None:
        job = await harness.store.get_job(task_id)
        return job if job is not None and job.finished else None

    deadline = time.monotonic() + 10
    while (job := await done()) is None:
        assert time.monotonic() < deadline, f"task {task_id} did not finish"
        await harness.jobs.wait_ticks(1)
    return job


# --- holding before the proxy is asked ----------------------------------------------------------


async def test_100_concurrent_imagines_with_credit_for_10_submit_exactly_10(services, sim: ProxySim):
    harness = await services()
    results = await asyncio.gather(
        *(harness.jobs.imagine(f"fox {n}", who()) for n in range(100)), return_exceptions=True
    )
    submitted = [r for r in results if isinstance(r, Job)]
    refused = [r for r in results if isinstance(r, NotEnoughCredits)]
    assert (len(submitted), len(refused)) == (10, 90), [
        r for r in results if not isinstance(r, (Job, NotEnoughCredits))
    ]
    assert sim.count("/submit/imagine") == 10
    account = await harness.jobs.account(who())
    assert account.balance == 0
    assert refused[0].params["price"] == "0.1" and refused[0].params["balance"] == "0"
    assert refused[0].key == "credits.not_enough_no_refill"  # no allowance: "ask an admin"


async def test_the_refusal_names_the_next_refill(services):
    allowance = {"role_id": ROLE, "amount": 0.1, "every": "day"}
    harness = await services(credits={**CREDITS, "starting_balance": 0, "allowances": [allowance]})
    member = who(role_ids=frozenset({ROLE}))
    await harness.jobs.imagine("fox", member)  # the day's 0.1
    with pytest.raises(NotEnoughCredits) as refused:
        await harness.jobs.imagine("another fox", member)
    assert refused.value.key == "credits.not_enough"
    assert refused.value.params["refill_at"] == int(next_period_start("day", harness.now))
    assert refused.value.params["refill"] == "0.1"


async def test_admins_are_never_refused_but_their_spend_is_recorded(services, sim: ProxySim):
    harness = await services(credits={**CREDITS, "starting_balance": 0})
    job = await harness.jobs.imagine("admin fox", who(ADMIN))
    sim.succeed(job.task_id)
    await finished(harness, job.task_id)
    assert await ledger_rows(harness, job.nonce) == [("hold", -1000), ("settle", 0)]
    assert (await harness.jobs.account(who(ADMIN))).balance == -1000


async def test_a_button_press_costs_its_own_price(services, sim: ProxySim):
    harness = await services()
    grid = await harness.jobs.imagine("fox", who())
    sim.succeed(grid.task_id)
    await finished(harness, grid.task_id)
    upscale = await harness.jobs.change(grid.task_id, Action.UPSCALE, 2, who())
    assert await ledger_rows(harness, upscale.nonce) == [("hold", -500)]
    costs = await harness.jobs.job_costs([grid, upscale])
    assert (costs[grid.task_id].state, costs[grid.task_id].price) == ("settle", 1000)
    assert (costs[upscale.task_id].state, costs[upscale.task_id].price) == ("held", 500)


# --- settle or refund, exactly once ---------------------------------------------------------------


async def test_a_refused_submit_is_refunded(services, sim: ProxySim):
    harness = await services()
    sim.fail_next("/submit/imagine", "code:24", properties={"bannedWord": "gore"})
    with pytest.raises(BannedPrompt):
        await harness.jobs.imagine("gore", who())
    assert [kind for kind, _ in await ledger_rows(harness)] == ["grant", "hold", "refund"]
    assert (await harness.jobs.account(who())).balance == ONE


async def test_a_failure_seen_by_a_push_and_by_another_process_poll_is_refunded_once(services, sim: ProxySim):
    first = await services()
    job = await first.jobs.imagine("doomed fox", who())
    second = await services()  # another process: it tracks the same unfinished job
    assert job.task_id in second.jobs.tracked_ids
    sim.fail(job.task_id, "banned prompt")
    first.jobs.signal_push(job.task_id)
    await asyncio.gather(finished(first, job.task_id), second.jobs.wait_ticks(2))
    await first.jobs.wait_ticks(2)
    assert await ledger_rows(first, job.nonce) == [("hold", -1000), ("refund", 1000)]
    assert (await first.jobs.account(who())).balance == ONE


@pytest.mark.parametrize("end", ["succeed", "fail", "cancel"])
async def test_each_end_is_written_with_the_final_state(services, sim: ProxySim, end: str):
    harness = await services()
    job = await harness.jobs.imagine("fox", who())
    getattr(sim, end)(job.task_id)
    final = await finished(harness, job.task_id)
    # The same transaction: whoever sees the final state sees its settle or refund.
    kinds = [kind for kind, _ in await ledger_rows(harness, job.nonce)]
    assert kinds == ["hold", "settle" if final.status is Status.SUCCESS else "refund"]


async def test_a_job_past_its_deadline_is_refunded(services, sim: ProxySim):
    harness = await services(deadline_s=60)
    job = await harness.jobs.imagine("stuck fox", who())
    harness.now += 61
    await finished(harness, job.task_id)
    assert [kind for kind, _ in await ledger_rows(harness, job.nonce)] == ["hold", "refund"]


async def test_a_crash_between_hold_and_submit_is_refunded_after_the_restart(services, sim: ProxySim):
    harness = await services()
    await harness.stop()
    # What a crash leaves between the hold and the submit: the submission and its hold, no task.
    submission = harness_submission(harness)
    await harness.store.open()
    await harness.store.insert_submission(submission, None, Charge("mj_imagine", 1000, starting_balance=ONE))
    await harness.store.close()
    await harness.start()
    harness.now += 60  # past the proxy's timeout: the submission counts as cut off
    await harness.jobs.wait_ticks(2)
    assert await ledger_rows(harness, submission.nonce) == [("hold", -1000), ("refund", 1000)]
    assert sim.count("/submit/imagine") == 0


def harness_submission(harness: Harness) -> Submission:
    return Submission(
        nonce="mjbot:crashed", action="IMAGINE", prompt="fox", owner_id=OWNER, guild_id=GUILD,
        channel_id=1, parent_task_id=None, parent_index=None, created_at=harness.now,
    )  # fmt: skip


async def test_the_safety_net_ends_a_hold_left_without_an_end_once(services, sim: ProxySim):
    harness = await services()
    job = await harness.jobs.imagine("fox", who())
    sim.succeed(job.task_id)
    await finished(harness, job.task_id)
    # As if the settle had been lost: only the safety net can bring it back.
    await harness.store.database.run([("DELETE FROM ledger WHERE entry_key = ?", [(f"end:{job.nonce}",)])])
    assert await harness.store.credits.reconcile() == 1
    assert await harness.store.credits.reconcile() == 0
    assert await ledger_rows(harness, job.nonce) == [("hold", -1000), ("settle", 0)]


# --- allowances -----------------------------------------------------------------------------------


async def test_refills_happen_once_per_period_across_processes_and_restarts(services, sim: ProxySim):
    allowance = {"role_id": ROLE, "amount": 2, "every": "day", "cap": 5}
    credits = {**CREDITS, "starting_balance": 0, "allowances": [allowance]}
    first, second = await services(credits=credits), await services(credits=credits)
    member = who(role_ids=frozenset({ROLE}))
    accounts = await asyncio.gather(*(h.jobs.account(member) for h in (first, second) for _ in range(10)))
    assert {account.balance for account in accounts} == {2 * ONE}
    await first.stop()
    await first.start()
    assert (await first.jobs.account(member)).balance == 2 * ONE
    refills = [row for row in await ledger_rows(first) if row[0] == "refill"]
    assert refills == [("refill", 2 * ONE)]

    for harness in (first, second):
        harness.now += 86_400
    assert (await second.jobs.account(member)).balance == 4 * ONE
    assert (await first.jobs.account(member)).balance == 4 * ONE
    # Three days away add up, to the cap.
    for harness in (first, second):
        harness.now += 3 * 86_400
    assert (await first.jobs.account(member)).balance == 5 * ONE
    assert [amount for kind, amount in await ledger_rows(first) if kind == "refill"] == [2 * ONE, 2 * ONE, ONE]


async def test_the_best_role_wins(services):
    allowances = [
        {"role_id": GUILD, "amount": 1, "every": "day"},  # @everyone
        {"role_id": ROLE, "amount": 20, "every": "day"},
        {"role_id": ROLE + 1, "amount": 100, "every": "month"},  # less per day than 20 a day
    ]
    harness = await services(credits={**CREDITS, "starting_balance": 0, "allowances": allowances})
    assert (await harness.jobs.account(who())).balance == ONE
    supporter = who(OWNER + 50, role_ids=frozenset({ROLE, ROLE + 1}))
    account = await harness.jobs.account(supporter)
    assert account.balance == 20 * ONE and account.allowance is not None and account.allowance.every == "day"


# --- admins -------------------------------------------------------------------------------------


async def test_admins_give_and_take_and_every_change_is_a_row(services, sim: ProxySim):
    harness = await services()
    admin = who(ADMIN)
    assert await harness.jobs.adjust_credits(admin, OWNER, frozenset(), "2.5", "contest prize", give=True) == (
        25_000,
        35_000,  # the starting balance came first
    )
    harness.now += 1
    assert await harness.jobs.adjust_credits(admin, OWNER, frozenset(), "0.5", "typo", give=False) == (5_000, 30_000)
    with pytest.raises(TakeTooMuch):
        await harness.jobs.adjust_credits(admin, OWNER, frozenset(), "4", "too much", give=False)
    for bad in ("ten", "NaN", "1e12", "0.00001", "0", "-3", "inf"):
        with pytest.raises(BadAmount):
            await harness.jobs.adjust_credits(admin, OWNER, frozenset(), bad, "bad", give=True)
    with pytest.raises(AdminOnly):
        await harness.jobs.adjust_credits(who(OWNER), OWNER, frozenset(), "5", "myself", give=True)
    account = await harness.jobs.account(who())
    assert account.balance == 3 * ONE
    assert [e.kind for e in account.entries] == ["adjust", "adjust", "grant"]
    assert account.entries[1].admin_id == ADMIN and account.entries[1].reason == "contest prize"
    # The balance is the ledger's sum, nothing else.
    assert sum(amount for _, amount in await ledger_rows(harness)) == account.balance


async def test_spend_by_action_and_member(services, sim: ProxySim):
    harness = await services(credits={**CREDITS, "starting_balance": 5})
    for owner, prompt in ((OWNER, "a"), (OWNER, "b"), (OWNER + 1, "c")):
        job = await harness.jobs.imagine(prompt, who(owner))
        sim.succeed(job.task_id) if prompt != "b" else sim.fail(job.task_id)
        await finished(harness, job.task_id)
    spend = await harness.jobs.spend(who(ADMIN), "today")
    assert [(line.key, line.jobs, line.total) for line in spend.by_action] == [("mj_imagine", 2, 2000)]
    assert {(line.key, line.total) for line in spend.top_members} == {(OWNER, 1000), (OWNER + 1, 1000)}
    assert (spend.refunded.jobs, spend.refunded.total, spend.held.jobs) == (1, 1000, 0)
    assert await harness.store.credits.spent_since(0) == 2000
    with pytest.raises(AdminOnly):
        await harness.jobs.spend(who(), "today")


# --- amounts, prices and settings ------------------------------------------------------------------


def test_amounts_are_exact():
    assert to_units("0.1") * 3 == to_units("0.3") and format_amount(to_units(0.1) * 3) == "0.3"
    assert to_units("1,000") == 1000 * SCALE and format_amount(-25_000) == "-2.5"


def test_each_job_has_a_price_name():
    button = TaskButton
    assert price_name(Action.IMAGINE) == "mj_imagine" and price_name(Action.ZOOM) == "mj_zoom"
    assert price_name(Action.UPSCALE, button("MJ::JOB::upsample_v6_2x_subtle::1::abc")) == "mj_upscale_subtle"
    assert price_name(Action.UPSCALE, button("MJ::JOB::upsample_v6_2x_creative::1::abc")) == "mj_upscale_creative"
    assert price_name(Action.VARIATION, button("MJ::JOB::high_variation::1::abc")) == "mj_high_variation"
    assert price_name(Action.VARIATION, button("MJ::JOB::low_variation::1::abc")) == "mj_low_variation"
    assert price_name(Action.ZOOM, button("MJ::CustomZoom::abc")) == "mj_custom_zoom"
    assert price_name(Action.ACTION, button("MJ::JOB::animate_high::1::abc::SOLO")) == "mj_video"
    assert price_name(Action.ACTION, button("MJ::BOOKMARK::abc")) == "mj_other"


@pytest.mark.parametrize(
    ("prices", "named"),
    [
        ("mj_imagine = -1", "credits.prices.mj_imagine"),
        ("mj_imagine = nan", "credits.prices.mj_imagine"),
        ("mj_imagine = 0.00001", "credits.prices.mj_imagine"),
        ("mj_imagin = 1", "unknown action mj_imagin"),
    ],
)
def test_check_config_names_a_bad_price(tmp_path: Path, prices: str, named: str):
    config = tmp_path / "config.toml"
    config.write_text(f"[credits]\nenabled = true\n[credits.prices]\n{prices}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as bad:
        load_settings(config)
    assert named in str(bad.value)


def test_an_allowance_needs_a_known_period(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text('[credits]\nallowances = [{ role_id = 1, amount = 1, every = "year" }]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="credits.allowances.0.every"):
        load_settings(config)


async def test_jobs_without_credits_cost_nothing_and_leave_no_rows(services, sim: ProxySim):
    harness = await services(credits={"enabled": False})
    job = await harness.jobs.imagine("free fox", who())
    sim.succeed(job.task_id)
    await harness.jobs.wait_ticks(2)
    await harness.view.wait_for(lambda: (s := harness.view.last(job.task_id)) and s.display.phase is Phase.DONE)
    assert await ledger_rows(harness) == []


async def test_two_processes_share_one_balance(services, sim: ProxySim):
    """Two services over one database (each with its own connections, as two processes would be):
    100 imagines between them, credit for 10, exactly 10 submitted."""
    first, second = await services(), await services()
    results = await asyncio.gather(
        *(h.jobs.imagine(f"fox {n}", who()) for n in range(50) for h in (first, second)), return_exceptions=True
    )
    assert sum(isinstance(r, Job) for r in results) == 10
    assert sum(isinstance(r, NotEnoughCredits) for r in results) == 90
    assert sim.count("/submit/imagine") == 10


# --- reports and alerts ------------------------------------------------------------------------


async def test_the_spend_alert_is_posted_once_a_day(services, sim: ProxySim):
    harness = await services(credits={**CREDITS, "starting_balance": 5, "daily_alert": 0.15})
    posted: list[str] = []

    async def post(text: str) -> None:
        posted.append(text)

    alerts = AlertMonitor(AlertsSettings(channel_id=1), post=post, probe=harness.proxy.ping)

    def spend_alert() -> SpendAlert:  # a process's, made again at each restart
        return SpendAlert(to_units("0.15"), "credits", harness.store.credits, alerts, clock=lambda: harness.now)

    watcher = spend_alert()
    for prompt in ("a", "b"):
        assert not await watcher.check()  # 0, then 0.1: under the level
        job = await harness.jobs.imagine(prompt, who())
        sim.succeed(job.task_id)
        await finished(harness, job.task_id)
    assert await watcher.check()
    assert not await watcher.check() and not await spend_alert().check()  # once, restarts included
    await alerts.flush()
    assert len(posted) == 1 and "0.15" in posted[0] and "0.2 credits" in posted[0]
    harness.now += 86_400
    assert not await spend_alert().check()  # a new day, nothing spent yet


async def test_spend_report_csv_for_accounting(services, sim: ProxySim, db_url: str, tmp_path: Path):
    harness = await services()
    job = await harness.jobs.imagine("reported fox", who())
    sim.succeed(job.task_id)
    await finished(harness, job.task_id)
    config = tmp_path / "report.toml"
    storage = f'url = "{db_url}"' if db_url.startswith("postgresql") else f'path = "{db_url}"'
    config.write_text(f'[storage]\n{storage}\n[credits]\nunit = "¥"\n', encoding="utf-8")
    report = run_cli("spend-report", "--since", "2020-01-01", "--config", str(config))
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert [(r["kind"], r["amount"], r["unit"]) for r in rows] == [
        ("grant", "1", "¥"),
        ("hold", "-0.1", "¥"),
        ("settle", "0", "¥"),
    ]
    assert rows[2]["task_id"] == job.task_id and rows[2]["price"] == "0.1" and rows[2]["member_id"] == str(OWNER)
    later = run_cli("spend-report", "--since", "2099-01-01", "--config", str(config))
    assert later.returncode == 0 and later.stdout.strip() == ",".join(SPEND_COLUMNS)
    bad = run_cli("spend-report", "--since", "last tuesday", "--config", str(config))
    assert bad.returncode == 2 and "'last tuesday' is not a date" in bad.stderr


async def test_two_os_processes_on_postgresql_share_one_balance(sim: ProxySim, pg_dsn: str):
    """The same over two real processes: 50 imagines each, at once, credit for 10 in all."""
    store = Store(pg_dsn)
    await store.open()  # migrated once, before both start
    await store.close()
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.credits_worker",
            pg_dsn,
            sim.base_url,
            "50",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )  # fmt: skip
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert await asyncio.wait_for(worker.stdout.readline(), 30) == b"ready\n"
        for worker in workers:
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
        outcomes = [json.loads(await asyncio.wait_for(worker.stdout.readline(), 60)) for worker in workers]
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
            await worker.wait()
    assert [o["other"] for o in outcomes] == [[], []]
    assert sum(o["submitted"] for o in outcomes) == 10 and sum(o["refused"] for o in outcomes) == 90
    assert sim.count("/submit/imagine") == 10


def test_the_readme_example_for_a_community_loads(tmp_path: Path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Credits") :]
    example = section[section.index("```toml") + len("```toml") : section.index("```", section.index("```toml") + 7)]
    config = tmp_path / "config.toml"
    config.write_text(example, encoding="utf-8")
    credits = load_settings(config).credits
    free, supporter = (a.allowance() for a in credits.allowances)
    assert (free.amount, supporter.amount, supporter.cap) == (ONE, 20 * ONE, 20 * ONE)
    assert credits.price_of("mj_imagine") == ONE and credits.price_of("mj_describe") == to_units("0.05")


async def test_a_refill_seen_by_a_refused_submit_is_kept(services, sim: ProxySim):
    """The refusal commits the period's refill: refused today, the member can afford it tomorrow."""
    allowance = {"role_id": ROLE, "amount": 0.05, "every": "day", "cap": 0.2}
    harness = await services(credits={**CREDITS, "starting_balance": 0, "allowances": [allowance]})
    member = who(role_ids=frozenset({ROLE}))
    with pytest.raises(NotEnoughCredits):
        await harness.jobs.imagine("too soon", member)
    harness.now += 86_400
    job = await harness.jobs.imagine("next day", member)
    assert await ledger_rows(harness, job.nonce) == [("hold", -1000)]


async def test_an_adjustment_retried_after_its_commit_is_made_once(services):
    harness = await services()

    async def give(tx):
        return await ledger.adjust(
            tx, "adjust:retried", GUILD, OWNER, ONE, reason="r", admin_id=ADMIN, now=harness.now,
            allowance=None, starting=0,
        )  # fmt: skip

    assert await harness.store.database.transact(give) == ONE
    assert await harness.store.database.transact(give) == ONE  # what a retry after the COMMIT does
    assert await ledger_rows(harness) == [("adjust", ONE)]
