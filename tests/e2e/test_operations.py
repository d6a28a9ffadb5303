"""Operating the bot, end to end: check-config, sync-commands, /healthz and /metrics, alerts to the
admins' channel, pruning and backup, JSON logs without secrets. The bot and its command line run
as child processes against the Discord double and the proxy simulator."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.conftest import PROXY_SECRET
from tests.e2e.flavours import AUTH
from tests.e2e.harness import (
    ROOT,
    alerts,
    answer_to,
    eventually,
    free_port,
    imagine_grid,
    wait_final,
    wait_public,
    write_config,
)


async def cli(*args: str, timeout: float = 60.0) -> tuple[int, str]:
    """``python -m bot <args>`` as a child process (the double and the simulator live in this event
    loop, so the test must not block on it); its exit code and output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, output.decode()


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def config_lines(text: str) -> dict[str, str]:
    """check-config's output: each check's name -> its line."""
    return {line.split()[1]: line for line in text.splitlines() if line.startswith(("ok", "FAIL"))}


def set_discord_option(config_path: Path, line: str) -> None:
    """Add a line to the config's [discord] table (the harness writes that table itself)."""
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(text.replace("[discord]\n", f"[discord]\n{line}\n", 1), encoding="utf-8")


# --- check-config -----------------------------------------------------------------------------------


async def test_check_config_with_a_good_and_a_bad_secret_on_every_server(dd: DiscordDouble, tmp_path: Path):
    for flavour, auth in AUTH.items():
        async with ProxySim(secret=PROXY_SECRET, flavour=flavour) as sim:
            path = write_config(
                tmp_path / f"{flavour}.toml", dd, sim, tmp_path / f"{flavour}.sqlite3", secret=PROXY_SECRET, auth=auth
            )
            code, output = await cli("check-config", "--config", str(path))
            lines = config_lines(output)
            assert code == 0, output
            assert list(lines) == ["config", "discord", "proxy", "database"], output
            assert all(line.startswith("ok") for line in lines.values()), output
            assert "logged in as" in lines["discord"] and "answers" in lines["proxy"]
            assert "schema version" in lines["database"] and (tmp_path / f"{flavour}.sqlite3").is_file()

            wrong = "wrong-secret-check-5e1d"
            write_config(path, dd, sim, tmp_path / f"{flavour}.sqlite3", secret=wrong, auth=auth)
            code, output = await cli("check-config", "--config", str(path))
            lines = config_lines(output)
            assert code == 1, output
            assert lines["proxy"].startswith("FAIL") and "the proxy rejected the secret" in lines["proxy"]
            assert lines["discord"].startswith("ok") and lines["database"].startswith("ok")
            assert wrong not in output and PROXY_SECRET not in output and dd.bot_token not in output


async def test_check_config_names_a_rejected_token_an_unreachable_proxy_and_bad_keys(
    dd: DiscordDouble, sim: ProxySim, config_path: Path
):
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(text.replace(dd.bot_token, "not-the-bot-token-0c4f"), encoding="utf-8")
    await sim.set_down(True)
    code, output = await cli("check-config", "--config", str(config_path))
    lines = config_lines(output)
    assert code == 1
    assert lines["discord"].startswith("FAIL") and "Discord rejected the token (discord.token)" in lines["discord"]
    assert lines["proxy"].startswith("FAIL") and "ConnectError" in lines["proxy"]
    assert "not-the-bot-token-0c4f" not in output

    config_path.write_text(text.replace("[storage]\n", "[storage]\nkeep_dayz = 3\n"), encoding="utf-8")
    code, output = await cli("check-config", "--config", str(config_path))
    line_of_typo = text.splitlines().index("[storage]") + 2
    assert code == 1 and output.startswith("FAIL  config")
    assert f"storage.keep_dayz (line {line_of_typo}): unknown key" in output


# --- sync-commands -----------------------------------------------------------------------------------


async def test_sync_commands_registers_them_when_automatic_sync_is_off(start_bot, dd: DiscordDouble, config_path: Path):
    set_discord_option(config_path, "sync_commands = false")
    await start_bot()
    assert not dd.find_requests("PUT", r"/commands$")  # setup is done before the gateway login
    code, output = await cli("sync-commands", "--config", str(config_path), "--guild", str(dd.guild_id))
    assert code == 0, output
    assert f"commands to guild {dd.guild_id}" in output
    assert dd.command("imagine", dd.guild_id) and dd.command("show", dd.guild_id)


# --- /metrics and /healthz ---------------------------------------------------------------------------


async def test_metrics_move_when_a_job_runs(start_bot, configure, dd: DiscordDouble, sim: ProxySim):
    port = free_port()
    configure(extra=f'[http]\nlisten = "127.0.0.1:{port}"\n')
    await start_bot()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        scraped = await http.get("/metrics")
        assert scraped.headers["content-type"].startswith("text/plain; version=")
        before = samples(scraped.text)

        dd.fail_next(method="PATCH", status=429)  # the job's first edit is rate limited, then retried
        _, grid = await imagine_grid(dd, sim, "a fox for the metrics")
        sim.fail_next("/submit/imagine", "code:24", description="Banned prompt", properties={"bannedWord": "gore"})
        assert "does not allow" in await answer_to(dd, await dd.slash("imagine", {"prompt": "gore"}))
        after = samples((await http.get("/metrics")).text)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("mjbot_jobs_submitted_total", action="imagine") == 1
    assert moved("mjbot_jobs_finished_total", action="imagine") == 1
    assert moved("mjbot_jobs_failed_total", action="imagine") == 0
    assert moved("mjbot_submit_refusals_total", code="24") == 1
    assert moved("mjbot_tracker_tick_seconds_count") > 0
    assert ("mjbot_unfinished_tasks", frozenset()) in after
    assert moved("mjbot_proxy_request_seconds_count", endpoint="/submit/imagine") == 2
    assert moved("mjbot_proxy_request_seconds_count", endpoint="/task/list-by-condition") > 0
    assert moved("mjbot_discord_write_seconds_count", method="PATCH") >= 2  # the 429 and its retry
    assert moved("mjbot_discord_rate_limited_total", method="PATCH") == 1
    assert value(after, "mjbot_gateway_connected") == 1


async def test_healthz_turns_503_when_the_gateway_drops(start_bot, configure, config_path: Path, dd: DiscordDouble):
    port = free_port()
    configure(extra=f'[http]\nlisten = "127.0.0.1:{port}"\n')
    await start_bot()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

        async def answers(status: int) -> bool:
            return (await http.get("/healthz")).status_code == status

        await eventually(lambda: answers(200), what="/healthz 200 once the gateway is up")
        assert (await http.get("/healthz")).text.startswith("ok: gateway connected")
        assert (await cli("healthcheck", "--config", str(config_path)))[0] == 0

        dd.gateway.accepting = False  # an outage: the bot cannot reconnect
        await dd.drop_gateway()
        await eventually(lambda: answers(503), what="/healthz 503 after the drop")
        answer = await http.get("/healthz")
        assert "unhealthy: the Discord gateway is not connected" in answer.text
        code, output = await cli("healthcheck", "--config", str(config_path))
        assert code == 1 and "gateway is not connected" in output

        dd.gateway.accepting = True
        await eventually(lambda: answers(200), timeout=40, what="/healthz 200 after reconnecting")


# --- alerts ------------------------------------------------------------------------------------------


async def test_a_proxy_outage_is_alerted_once_and_its_end_once(start_bot, configure, dd: DiscordDouble, sim: ProxySim):
    configure(extra=f"[alerts]\nchannel_id = {dd.second_channel_id}\nproxy_down_s = 0.5\n")
    bot = await start_bot()
    await dd.slash("imagine", {"prompt": "a fox through an outage"})
    message = await wait_public(dd, 1)
    task_id = next(iter(sim.tasks))

    await sim.set_down(True)
    await dd.wait_for(lambda: alerts(dd), what="the outage alert")
    assert len(alerts(dd)) == 1
    assert "The Midjourney proxy has been failing for" in alerts(dd)[0] and "ConnectError" in alerts(dd)[0]
    # The tracker keeps failing well after the alert: no second post.
    failures = bot.log_text().count("tracking 1 tasks failed")
    await eventually(
        lambda: bot.log_text().count("tracking 1 tasks failed") >= failures + 2, what="two more failed passes"
    )
    assert len(alerts(dd)) == 1

    await sim.set_down(False)
    await dd.wait_for(lambda: len(alerts(dd)) == 2, what="the recovery alert")
    assert "answers again" in alerts(dd)[1]
    sim.succeed(task_id)
    await wait_final(dd, message)
    assert len(alerts(dd)) == 2


async def test_a_run_of_failures_with_one_reason_is_alerted_once(
    start_bot, configure, dd: DiscordDouble, sim: ProxySim
):
    configure(extra=f"[alerts]\nchannel_id = {dd.second_channel_id}\nfailure_run = 2\n")
    await start_bot()
    for number in range(3):
        await dd.slash("imagine", {"prompt": f"fox {number}"})
        message = await wait_public(dd, number + 1)
        sim.fail(next(t for t in sim.tasks if sim.tasks[t].prompt == f"fox {number}"), "account banned")
        await dd.wait_for(lambda message=message: "account banned" in message.content, what=f"job {number} failed")
        if number == 1:
            await dd.wait_for(lambda: alerts(dd), what="the failure-run alert")
    assert alerts(dd) == [
        "⚠️ The last 2 jobs failed with the same reason: account banned. Check the proxy's accounts (credit, bans)."
    ]
    await imagine_grid(dd, sim, "a fox that works")
    await dd.wait_for(lambda: len(alerts(dd)) == 2, what="the all-clear")
    assert alerts(dd)[1] == "✅ Jobs succeed again (they had been failing with: account banned)."


# --- housekeeping ------------------------------------------------------------------------------------


async def test_old_jobs_are_pruned_and_show_says_too_old_and_backup_copies_the_live_database(
    start_bot, dd: DiscordDouble, sim: ProxySim, config_path: Path, tmp_path: Path
):
    bot = await start_bot()
    old_task, old_grid = await imagine_grid(dd, sim, "a fox from long ago")
    recent_task, _ = await imagine_grid(dd, sim, "a recent fox")

    backup = tmp_path / "backups" / "mjbot-backup.sqlite3"
    code, output = await cli("backup", str(backup), "--config", str(config_path))  # while the bot runs
    assert code == 0 and "2 jobs" in output, output
    with sqlite3.connect(backup) as copy:
        assert {row[0] for row in copy.execute("SELECT task_id FROM jobs")} == {old_task, recent_task}
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    await bot.stop()

    database = tmp_path / "mjbot.sqlite3"
    long_ago = time.time() - 40 * 86400
    with sqlite3.connect(database) as db:
        db.execute("UPDATE jobs SET created_at = ?, finished_at = ? WHERE task_id = ?", (long_ago, long_ago, old_task))
    await start_bot()  # keep_days = 30 (the default): pruned at start
    with sqlite3.connect(database) as db:
        assert {row[0] for row in db.execute("SELECT task_id FROM jobs")} == {recent_task}
        assert db.execute("SELECT guild_id FROM pruned WHERE task_id = ?", (old_task,)).fetchone() == (dd.guild_id,)
    assert "too old to show again" in await answer_to(dd, await dd.slash("show", {"job_id": old_task}))
    assert "I don't know that job" in await answer_to(dd, await dd.slash("show", {"job_id": "4242424242"}))
    assert not old_grid.deleted and old_grid.current.attachments  # the message stays on Discord


# --- secrets -----------------------------------------------------------------------------------------


async def test_json_logs_metrics_health_alerts_and_check_config_keep_secrets(
    start_bot, configure, config_path: Path, dd: DiscordDouble, sim: ProxySim, tmp_path: Path
):
    """The new paths in a run where the proxy rejects the secret for a while: JSON log lines, the
    endpoints (on the push receiver's server), the alert posts and check-config's output."""
    secret = "proxy-secret-ops-do-not-leak-3b8e"
    sim.secret = secret
    notify_port = free_port()
    extra = f"""
[logging]
format = "json"
level = "DEBUG"
[notify]
listen = "127.0.0.1:{notify_port}"
public_url = "http://127.0.0.1:{notify_port}/mj/notify"
[alerts]
channel_id = {dd.second_channel_id}
proxy_down_s = 0.3
"""
    configure(secret=secret, extra=extra)
    bot = await start_bot()
    await dd.slash("imagine", {"prompt": "a secretive fox"})
    message = await wait_public(dd, 1)
    sim.secret = "rotated-on-the-proxy-only-91aa"  # the tracker's requests now get 401
    await dd.wait_for(lambda: alerts(dd), what="the outage alert")
    assert "401" in alerts(dd)[0]
    sim.secret = secret
    await dd.wait_for(lambda: len(alerts(dd)) == 2, what="the recovery alert")
    sim.succeed(next(iter(sim.tasks)))
    await wait_final(dd, message)
    with sqlite3.connect(tmp_path / "mjbot.sqlite3") as db:
        (notify_token,) = db.execute("SELECT value FROM meta WHERE key = 'notify_token'").fetchone()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{notify_port}") as http:
        endpoints = (await http.get("/metrics")).text + (await http.get("/healthz")).text
    assert "mjbot_jobs_finished_total" in endpoints
    configure(secret="wrong-secret-in-check-config-44d0", extra=extra)
    code, checked = await cli("check-config", "--config", str(config_path))
    assert code == 1 and "the proxy rejected the secret" in checked
    assert config_lines(checked)["notify"].startswith("ok")  # the running bot's receiver answers
    assert config_lines(checked)["alerts"].startswith("ok    alerts    alerts go to #")
    await bot.stop()

    log = bot.log_text()
    entries = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line is JSON
    submitted = next(e for e in entries if e["message"].startswith("task ") and "submitted" in e["message"])
    assert submitted["task_id"] == next(iter(sim.tasks))
    assert submitted["user_id"] == dd.member_id and submitted["guild_id"] == dd.guild_id
    assert submitted["channel_id"] == dd.channel_id
    finished = next(e for e in entries if "finished: SUCCESS" in e["message"])  # names only the task itself
    assert (finished["guild_id"], finished["channel_id"], finished["user_id"]) == (
        dd.guild_id,
        dd.channel_id,
        dd.member_id,
    )
    written = (
        log
        + endpoints
        + checked
        + "".join(f"{v.content}{v.embeds}{v.components}" for m in dd.messages.values() for v in m.versions)
    )
    for private in (dd.bot_token, secret, notify_token, "wrong-secret-in-check-config-44d0"):
        assert private not in written
