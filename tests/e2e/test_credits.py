"""Credits end to end: the bot process against the Discord double and the simulator. Refusals are
private and submit nothing; /balance, /jobs and the admins' commands; and SIGKILL at each point of
a charge's life leaves every job charged or refunded exactly once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from bot.storage.ledger import ORDER_SQL
from tests.e2e.harness import answer_to, eventually, public_messages, task_for, wait_final, wait_public


@pytest.fixture
def bot_config(dd: DiscordDouble) -> dict:
    alice, _ = dd.members
    return {
        "extra": f"""
[access]
admin_user_ids = [{alice}]

[credits]
enabled = true
starting_balance = 0.1
prices = {{ mj_imagine = 0.1, mj_upscale = 0.05 }}
allowances = [{{ role_id = {dd.role_id}, amount = 1, every = "day" }}]
"""
    }


def ledger(tmp_path: Path) -> list[tuple[int, str, int]]:
    """(member, kind, amount) of every ledger row, oldest first, read from the bot's SQLite file."""
    with sqlite3.connect(f"file:{tmp_path / 'mjbot.sqlite3'}?mode=ro", uri=True) as db:
        return db.execute(f"SELECT member_id, kind, amount FROM ledger ORDER BY {ORDER_SQL}").fetchall()


def kinds(tmp_path: Path, member: int) -> list[str]:
    return [kind for who, kind, _ in ledger(tmp_path) if who == member]


def balance(tmp_path: Path, member: int) -> int:
    return sum(amount for who, _, amount in ledger(tmp_path) if who == member)


async def test_a_member_short_of_credits_is_refused_privately(bot, dd: DiscordDouble, sim: ProxySim, tmp_path):
    _, bob = dd.members  # no role: no allowance, only the starting 0.1
    await dd.slash("imagine", {"prompt": "first fox"}, user=bob)
    await wait_public(dd, 1)
    refused = await dd.slash("imagine", {"prompt": "second fox"}, user=bob)
    text = await answer_to(dd, refused)
    assert "costs 0.1 credits" in text and "balance is 0 credits" in text and "ask an admin" in text
    assert sim.count("/submit/imagine") == 1 and len(public_messages(dd)) == 1
    chinese = await dd.slash("imagine", {"prompt": "third fox"}, user=bob, locale="zh-CN")
    assert "此操作需要 0.1 credits" in await answer_to(dd, chinese)
    assert kinds(tmp_path, bob) == ["grant", "hold"]


async def test_balance_jobs_and_the_charge_of_a_finished_job(bot, dd: DiscordDouble, sim: ProxySim, tmp_path):
    alice, _ = dd.members  # the Moderator role: 1 credit a day
    await dd.slash("imagine", {"prompt": "paid fox"})
    message = await wait_public(dd, 1)
    sim.succeed(task_for(sim, "paid fox"))
    await wait_final(dd, message)
    await eventually(lambda: "settle" in kinds(tmp_path, alice), what="the settle")
    text = await answer_to(dd, await dd.slash("balance"))
    # 0.1 to start; the day's refill stops at the cap (1); 0.1 charged.
    assert "Your balance: 0.9 credits" in text and "1 credits every day, up to 1" in text
    assert "charged" in text and "refill" in text and "<t:" in text
    jobs = await dd.slash("jobs")
    await dd.wait_for(lambda: jobs.original and jobs.original.current.embeds, what="the /jobs list")
    assert "0.1 credits" in jobs.original.current.embeds[0]["description"]


async def test_admins_give_and_take_with_clear_errors(bot, dd: DiscordDouble, tmp_path):
    alice, bob = dd.members
    outsider = dd.add_user("carol")

    async def admin(sub: str, member: int, amount: str, *, user: int = alice) -> str:
        return await answer_to(
            dd, await dd.slash(f"mj credits {sub}", {"member": member, "amount": amount, "reason": "test"}, user=user)
        )

    assert "Gave 2 credits to <@" in await admin("give", bob, "2") and balance(tmp_path, bob) == 21_000
    assert "balance is now 1.6 credits" in await admin("take", bob, "0.5")
    assert '"ten" is not an amount' in await admin("give", bob, "ten")
    assert "up to 1,000,000,000" in await admin("give", bob, "99999999999")
    assert "more than" not in await admin("give", bob, "1.5")  # a plain success
    assert "not a member of this server" in await admin("give", outsider, "1")
    assert "can't be taken" in await admin("take", bob, "500")
    assert "Only the bot's admins" in await admin("give", bob, "1", user=bob)
    assert kinds(tmp_path, bob) == ["grant", "adjust", "adjust", "adjust"]
    spend = await answer_to(dd, await dd.slash("mj spend", {"period": "today"}))
    assert "Spent today (UTC): 0 credits on 0 jobs" in spend


# --- SIGKILL at each point of a charge ---------------------------------------------------------------


async def test_killed_between_hold_and_submit_is_refunded(start_bot, dd: DiscordDouble, sim: ProxySim, tmp_path):
    _, bob = dd.members
    bot = await start_bot()
    sim.fail_next("/submit/imagine", "hang")  # the request never reaches the proxy's logic
    await dd.slash("imagine", {"prompt": "never sent fox"}, user=bob)
    await sim.wait_for(lambda: sim.count("/submit/imagine") == 1)
    await eventually(lambda: kinds(tmp_path, bob) == ["grant", "hold"], what="the hold")
    await bot.kill()
    await start_bot()
    await eventually(lambda: kinds(tmp_path, bob) == ["grant", "hold", "refund"], what="the refund", timeout=30)
    assert balance(tmp_path, bob) == 1000 and not sim.tasks and public_messages(dd) == []


async def test_killed_between_submit_and_storing_the_answer_is_charged_once(
    start_bot, dd: DiscordDouble, sim: ProxySim, tmp_path
):
    _, bob = dd.members
    bot = await start_bot()
    sim.fail_next("/submit/imagine", "delay:1")
    await dd.slash("imagine", {"prompt": "interrupted fox"}, user=bob)
    await sim.wait_for(lambda: sim.count("/submit/imagine") == 1)
    await bot.kill()
    await sim.wait_for(lambda: any(t.prompt == "interrupted fox" for t in sim.tasks.values()))
    await start_bot()
    message = await wait_public(dd, 1)
    sim.succeed(task_for(sim, "interrupted fox"))
    await wait_final(dd, message)
    await eventually(lambda: kinds(tmp_path, bob) == ["grant", "hold", "settle"], what="one settle")
    assert balance(tmp_path, bob) == 0


@pytest.mark.parametrize("end", ["succeed", "fail"])
async def test_killed_right_after_the_final_state_is_ended_once(
    start_bot, dd: DiscordDouble, sim: ProxySim, tmp_path, end: str
):
    """The settle or refund is written in the transaction of the final state: killed at once after
    it, then restarted (twice), the job is still charged or refunded exactly once."""
    _, bob = dd.members
    bot = await start_bot()
    await dd.slash("imagine", {"prompt": "final fox"}, user=bob)
    message = await wait_public(dd, 1)
    getattr(sim, end)(task_for(sim, "final fox"))
    expected = ["grant", "hold", "settle" if end == "succeed" else "refund"]
    await eventually(lambda: kinds(tmp_path, bob) == expected, what="the final state and its end", timeout=10)
    await bot.kill()
    for _ in range(2):
        bot = await start_bot()
        if end == "succeed":
            await wait_final(dd, message)
        else:
            await dd.wait_for(lambda: "Failed" in message.content, what="the failure shown")
        await bot.stop()
    assert kinds(tmp_path, bob) == expected
    assert balance(tmp_path, bob) == (0 if end == "succeed" else 1000)
