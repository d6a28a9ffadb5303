"""Operating the bot, piece by piece: log lines, metrics, health, alerts, pruning, backup, the
push-URL check, the command line, and the Docker files (read, since no Docker engine runs here)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import shlex
import socket
import sqlite3
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.core.access import Requester
from bot.core.config import AlertsSettings, NotifySettings, Settings
from bot.core.errors import BannedPrompt, JobNotFound, JobTooOld, ProxyAuthFailed, ProxyUnreachable
from bot.core.events import Fanout, NoEvents
from bot.core.models import Action, Job, Phase, Status
from bot.core.text import duration_text
from bot.jobs import JobService
from bot.ops import logs
from bot.ops.alerts import AlertMonitor
from bot.ops.checks import check_notify
from bot.ops.housekeeping import DAY_S, Housekeeper
from bot.ops.http import Health, OpsEndpoints, OpsServer
from bot.ops.metrics import Metrics, endpoint_of
from bot.proxy.client import ProxyClient
from bot.sandbox.proxy_sim import ProxySim
from bot.storage import MIGRATIONS, Store, backup_database
from tests.conftest import FAST_WRITES, RecordingView
from tests.test_cli import ROOT, run_cli

MEMBER = Requester(user_id=11, guild_id=22, channel_id=33)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def samples(metrics: Metrics) -> dict[tuple[str, frozenset], float]:
    text = metrics.render()[0].decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def job(task_id: str, status: Status, reason: str | None = None) -> Job:
    return Job(
        task_id=task_id,
        action=Action.IMAGINE,
        prompt="p",
        owner_id=1,
        channel_id=2,
        guild_id=3,
        status=status,
        fail_reason=reason,
    )


# --- logs --------------------------------------------------------------------------------------------


def record_of(logger: str, formatter: logging.Formatter, emit) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log = logging.getLogger(logger)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        emit(log)
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


def test_json_lines_carry_the_context_and_never_a_secret():
    logs.add_secret("discord-token-unit-9c1e")
    logs.add_secret("x")  # too short to mask: it would garble every line

    def emit(log: logging.Logger) -> None:
        log.info("task %s submitted: imagine by user %s in guild %s channel %s", "1712000000000001", 5, 6, 7)
        log.warning("posting failed", extra={"task_id": "abc9", "channel_id": 8})
        try:
            raise RuntimeError("Authorization: Bot discord-token-unit-9c1e")
        except RuntimeError:
            log.exception("crashed while talking to task 42")
        log.info("tracking 3 tasks failed; the task is not ours")

    lines = record_of("bot.test.json", logs.JsonFormatter(), emit).splitlines()
    entries = [json.loads(line) for line in lines]
    assert entries[0]["message"].startswith("task 1712000000000001 submitted")
    assert {k: entries[0][k] for k in ("task_id", "user_id", "guild_id", "channel_id")} == {
        "task_id": "1712000000000001",
        "user_id": 5,
        "guild_id": 6,
        "channel_id": 7,
    }
    assert entries[0]["level"] == "INFO" and entries[0]["logger"] == "bot.test.json" and "time" in entries[0]
    assert entries[1]["task_id"] == "abc9" and entries[1]["channel_id"] == 8  # extras win
    assert entries[2]["task_id"] == "42" and "RuntimeError" in entries[2]["exception"]
    assert "task_id" not in entries[3]  # "tasks" and "task is" name no task
    assert "discord-token-unit-9c1e" not in "".join(lines) and logs.MASK in entries[2]["exception"]


def test_lines_naming_only_a_task_get_its_guild_channel_and_user():
    logs.TaskContext().job_submitted(
        Job(task_id="1712000000000777", action=Action.IMAGINE, prompt="p", owner_id=4, channel_id=6, guild_id=5)
    )

    def emit(log: logging.Logger) -> None:
        log.info("task %s finished: SUCCESS", "1712000000000777")
        log.info("task %s submitted by user %s in guild %s channel %s", "1712000000000777", 4, 5, 6)

    text = record_of("bot.test.known", logs.TextFormatter(), emit).splitlines()
    assert text[0].endswith("task 1712000000000777 finished: SUCCESS [guild 5 channel 6 user 4]")
    assert text[1].endswith("channel 6")  # it says everything itself: nothing added
    entry = json.loads(record_of("bot.test.known", logs.JsonFormatter(), emit).splitlines()[0])
    assert (entry["guild_id"], entry["channel_id"], entry["user_id"]) == (5, 6, 4)


def test_text_lines_mask_secrets_and_setup_quiets_discord():
    logs.add_secret("proxy-secret-unit-71b0")
    text = record_of(
        "bot.test.text",
        logs.TextFormatter(),
        lambda log: log.error("answer was %s", "mj-api-secret: proxy-secret-unit-71b0"),
    )
    assert "proxy-secret-unit-71b0" not in text and "[secret]" in text and "ERROR" in text
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.setup_logging("json", "DEBUG")
        assert isinstance(root.handlers[0].formatter, logs.JsonFormatter) and root.level == logging.DEBUG
        assert logging.getLogger("discord").level == logging.WARNING
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


# --- metrics, through a real service and the simulator -------------------------------------------------


@pytest.fixture
async def observed(settings: Settings) -> AsyncIterator[tuple[JobService, RecordingView, Metrics, Health]]:
    metrics, health = Metrics(), Health(stale_after_s=60)
    proxy, store = ProxyClient(settings.proxy), Store(settings.storage.path)
    proxy.on_request = metrics.proxy_request
    await store.open()
    jobs = JobService(settings, proxy, store, events=Fanout(metrics, health), **FAST_WRITES)
    view = RecordingView()
    await jobs.start(view)
    yield jobs, view, metrics, health
    await jobs.stop()
    await proxy.aclose()
    await store.close()


async def finished(view: RecordingView, task_id: str, phase: Phase) -> None:
    await view.wait_for(lambda: (last := view.last(task_id)) is not None and last.display.phase is phase)


async def test_metrics_count_jobs_refusals_ticks_and_proxy_requests(observed, sim: ProxySim):
    jobs, view, metrics, _ = observed
    good = await jobs.imagine("a fox", MEMBER)
    sim.succeed(good.task_id)
    await finished(view, good.task_id, Phase.DONE)
    bad = await jobs.imagine("a fox that fails", MEMBER)
    sim.fail_next("/task/list-by-condition", "html502")
    sim.fail(bad.task_id, "account banned")
    await finished(view, bad.task_id, Phase.FAILED)
    sim.fail_next("/submit/imagine", "code:24", description="banned", properties={"bannedWord": "fox"})
    with pytest.raises(BannedPrompt):
        await jobs.imagine("a fox", MEMBER)
    await jobs.wait_ticks(2)

    values = samples(metrics)
    assert values[("mjbot_jobs_submitted_total", frozenset({("action", "imagine")}))] == 2
    assert values[("mjbot_jobs_finished_total", frozenset({("action", "imagine")}))] == 1
    assert values[("mjbot_jobs_failed_total", frozenset({("action", "imagine")}))] == 1
    assert values[("mjbot_jobs_submitted_total", frozenset({("action", "upscale")}))] == 0  # there from the start
    assert values[("mjbot_submit_refusals_total", frozenset({("code", "24")}))] == 1
    assert values[("mjbot_unfinished_tasks", frozenset())] == 0
    assert values[("mjbot_tracker_tick_seconds_count", frozenset())] >= 2
    assert values[("mjbot_proxy_request_seconds_count", frozenset({("endpoint", "/submit/imagine")}))] == 3
    assert (
        values[
            ("mjbot_proxy_errors_total", frozenset({("endpoint", "/task/list-by-condition"), ("kind", "bad_response")}))
        ]
        == 1
    )


def test_metric_labels_stay_few():
    assert endpoint_of("/task/1712000000000001/fetch") == "/task/{id}/fetch"
    assert endpoint_of("/submit/imagine?x=1") == "/submit/imagine"
    metrics = Metrics()
    metrics.submit_refused(ProxyAuthFailed("POST /submit/imagine: HTTP 401"))
    assert samples(metrics)[("mjbot_submit_refusals_total", frozenset({("code", "auth")}))] == 1


def test_a_broken_observer_breaks_nothing(caplog: pytest.LogCaptureFixture):
    class Broken(NoEvents):
        def job_finished(self, job: Job) -> None:
            raise RuntimeError("observer bug")

    seen: list[Job] = []

    class Recorder(NoEvents):
        def job_finished(self, job: Job) -> None:
            seen.append(job)

    Fanout(Broken(), Recorder()).job_finished(job("1", Status.SUCCESS))
    assert len(seen) == 1 and "Broken.job_finished failed" in caplog.text


# --- health and the endpoints --------------------------------------------------------------------------


def test_health_needs_the_gateway_and_a_recent_tracker_pass():
    clock = Clock()
    health = Health(stale_after_s=100, clock=clock)
    assert "gateway is not connected" in health.problem()
    health.gateway(True)
    assert health.problem() is None
    clock.advance(101)
    assert health.problem() == "the tracker has not finished a pass for 101 s"
    health.tracker_ticked(0.01, 3)
    assert health.problem() is None
    clock.advance(5)
    health.gateway(False)
    clock.advance(7)
    assert health.problem() == "the Discord gateway is not connected (for 7 s)"


async def test_endpoints_on_their_own_server():
    health, metrics = Health(stale_after_s=60), Metrics()
    server = OpsServer(("127.0.0.1", 0), OpsEndpoints(health, metrics))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            down = await http.get("/healthz")
            assert down.status_code == 503 and down.text.startswith("unhealthy: the Discord gateway")
            health.gateway(True)
            up = await http.get("/healthz")
            assert up.status_code == 200 and up.text.startswith("ok: gateway connected")
            metrics.gateway_connected.set(1)
            scraped = await http.get("/metrics")
            assert scraped.headers["content-type"].startswith("text/plain")
            assert "mjbot_gateway_connected 1.0" in scraped.text
            assert (await http.get("/other")).status_code == 404
    finally:
        await server.stop()


# --- alerts --------------------------------------------------------------------------------------------


class Channel:
    def __init__(self) -> None:
        self.posts: list[str] = []
        self.fail_next = 0

    async def post(self, text: str) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("Discord is away")
        self.posts.append(text)


def monitor(channel: Channel, clock: Clock, *, probes: list | None = None, **settings) -> AlertMonitor:
    async def probe() -> float:
        if probes is not None:
            probes.append(clock())
        raise ProxyUnreachable("POST /task/list-by-condition: ConnectError")

    return AlertMonitor(AlertsSettings(channel_id=5, **settings), post=channel.post, probe=probe, clock=clock)


async def test_a_proxy_outage_is_posted_once_then_its_end_once():
    channel, clock = Channel(), Clock()
    alerts = monitor(channel, clock, proxy_down_s=300)
    error = ProxyUnreachable("POST /task/list-by-condition: ConnectError")
    for _ in range(60):  # an hour of failing passes, one a minute (the tracker's longest back-off)
        alerts.proxy_answered(error)
        await alerts.check()
        clock.advance(60)
    assert channel.posts == [
        "⚠️ The Midjourney proxy has been failing for 5 min: "
        "POST /task/list-by-condition: ConnectError. Jobs wait until it answers again."
    ]
    alerts.proxy_answered(None)
    await alerts.flush()
    alerts.proxy_answered(None)
    await alerts.check()
    assert channel.posts[1:] == ["✅ The Midjourney proxy answers again (it failed for 60 min)."]


async def test_a_short_blip_is_not_an_outage_and_a_failed_post_is_retried():
    channel, clock = Channel(), Clock()
    alerts = monitor(channel, clock, proxy_down_s=300)
    alerts.proxy_answered(ProxyUnreachable("x"))
    clock.advance(200)
    alerts.proxy_answered(None)
    clock.advance(200)
    alerts.proxy_answered(ProxyUnreachable("x"))
    await alerts.check()
    assert channel.posts == []
    channel.fail_next = 1
    clock.advance(300)
    alerts.proxy_answered(ProxyUnreachable("x"))
    await alerts.flush()
    assert channel.posts == []  # Discord failed: kept for the next check
    await alerts.flush()
    assert len(channel.posts) == 1
    channel.fail_next = 1000  # refused for good (no permission): dropped after a few attempts
    alerts.proxy_answered(None)
    for _ in range(20):
        await alerts.flush()
    channel.fail_next = 0
    await alerts.flush()
    assert len(channel.posts) == 1


async def test_the_monitor_asks_an_idle_proxy_itself():
    channel, clock, probes = Channel(), Clock(), []
    alerts = monitor(channel, clock, probes=probes, proxy_down_s=300)
    await alerts.check()
    assert probes == []  # heard from just now (start-up)
    clock.advance(60)
    await alerts.check()
    assert len(probes) == 1  # idle for a minute: asked, and it is down
    for _ in range(62):  # while down it is asked every few seconds
        clock.advance(5)
        await alerts.check()
    assert len(probes) == 63 and len(channel.posts) == 1


async def test_a_run_of_one_failure_reason_is_posted_once_and_its_end_once():
    channel, clock = Channel(), Clock()
    alerts = monitor(channel, clock, failure_run=3)
    for number in range(2):
        alerts.job_finished(job(str(number), Status.FAILURE, "quota exhausted"))
    alerts.job_finished(job("x", Status.FAILURE, "banned prompt"))  # another reason: the run starts again
    alerts.job_finished(job("y", Status.CANCEL, "cancelled"))  # says nothing about the service
    for number in range(5):
        alerts.job_finished(job(f"q{number}", Status.FAILURE, "quota exhausted"))
    await alerts.flush()
    assert channel.posts == [
        "⚠️ The last 3 jobs failed with the same reason: quota exhausted. Check the proxy's accounts (credit, bans)."
    ]
    alerts.job_finished(job("ok", Status.SUCCESS))
    alerts.job_finished(job("ok2", Status.SUCCESS))
    await alerts.flush()
    assert channel.posts[1:] == ["✅ Jobs succeed again (they had been failing with: quota exhausted)."]


async def test_alerts_speak_the_configured_language_and_read_local_reasons():
    channel, clock = Channel(), Clock()
    alerts = AlertMonitor(
        AlertsSettings(channel_id=5, failure_run=1),
        post=channel.post,
        probe=asyncio.sleep,
        language="zh-CN",
        clock=clock,
    )
    alerts.job_finished(job("1", Status.FAILURE, "mjbot:deadline?duration=15 min"))
    await alerts.flush()
    assert channel.posts[0].startswith("⚠️ 最近 1 个任务") and "15 min" in channel.posts[0]
    assert duration_text(90) == "90 s" and duration_text(7300) == "2 h 1 min"


# --- pruning -------------------------------------------------------------------------------------------


async def test_pruning_keeps_unfinished_and_recent_jobs_and_show_says_too_old(service, sim: ProxySim):
    jobs, view = service
    old = await jobs.imagine("an old fox", MEMBER)
    sim.succeed(old.task_id)
    await finished(view, old.task_id, Phase.DONE)
    recent = await jobs.imagine("a recent fox", MEMBER)
    sim.succeed(recent.task_id)
    await finished(view, recent.task_id, Phase.DONE)
    running = await jobs.imagine("a fox still running", MEMBER)
    long_ago = 1000.0  # a real database: age two jobs by hand
    await jobs.store.database.run(
        [
            ("UPDATE jobs SET created_at = ?, finished_at = ? WHERE task_id = ?", [(long_ago, long_ago, old.task_id)]),
            ("UPDATE jobs SET created_at = ? WHERE task_id = ?", [(long_ago, running.task_id)]),
        ]
    )

    housekeeper = Housekeeper(jobs.store, keep_days=30)
    assert await housekeeper.prune() == 1
    assert await housekeeper.prune() == 0
    assert await jobs.store.get_job(old.task_id) is None
    assert await jobs.store.get_job(running.task_id) is not None and await jobs.store.get_job(recent.task_id)
    with pytest.raises(JobTooOld) as too_old:
        await jobs.job_to_show(old.task_id, MEMBER)
    assert too_old.value.key == "show.too_old"
    elsewhere = Requester(user_id=11, guild_id=99, channel_id=33)
    with pytest.raises(JobNotFound) as unknown:
        await jobs.job_to_show(old.task_id, elsewhere)  # another server's job stays unknown
    assert not isinstance(unknown.value, JobTooOld)
    assert await Housekeeper(jobs.store, keep_days=0, clock=lambda: 1000 * DAY_S).prune() == 0  # 0 = forever


# --- backup --------------------------------------------------------------------------------------------


async def test_backup_is_consistent_while_the_bot_writes(tmp_path: Path):
    store = Store(tmp_path / "live.sqlite3")
    await store.open()
    for number in range(50):
        await store.insert_job(job(f"t{number}", Status.SUCCESS))

    async def keep_writing() -> None:
        for number in range(50, 250):
            await store.insert_job(job(f"t{number}", Status.SUBMITTED))

    writer = asyncio.create_task(keep_writing())
    info = await asyncio.to_thread(backup_database, store.path, tmp_path / "copies" / "b.sqlite3")
    await writer
    await store.close()
    with sqlite3.connect(tmp_path / "copies" / "b.sqlite3") as copy:
        count = copy.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert 50 <= count <= 250 and info.jobs == count and info.schema_version == len(MIGRATIONS)
    assert not list((tmp_path / "copies").glob(".*partial"))


def test_backup_refuses_a_missing_database_and_itself(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no database"):
        backup_database(tmp_path / "typo.sqlite3", tmp_path / "b.sqlite3")
    assert not (tmp_path / "typo.sqlite3").exists()  # not created by the attempt
    sqlite3.connect(tmp_path / "live.sqlite3").close()
    with pytest.raises(ValueError, match="another file"):
        backup_database(tmp_path / "live.sqlite3", tmp_path / "." / "live.sqlite3")


# --- the push URL check ----------------------------------------------------------------------------------


async def test_notify_check_follows_the_public_url_to_the_listener():
    port = free_port()
    async with httpx.AsyncClient() as http:
        reached = await check_notify(
            NotifySettings(listen=f"127.0.0.1:{port}", public_url=f"http://127.0.0.1:{port}/mj/notify"), http
        )
    assert reached.ok and "reaches the receiver" in reached.detail

    other = web.Application()  # public_url leads to some other server

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    other.router.add_route("*", "/{tail:.*}", hello)
    runner = web.AppRunner(other)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    elsewhere = runner.addresses[0][1]
    try:
        async with httpx.AsyncClient() as http:
            astray = await check_notify(
                NotifySettings(listen=f"127.0.0.1:{free_port()}", public_url=f"http://127.0.0.1:{elsewhere}/hook"), http
            )
            assert not astray.ok and "did not reach notify.listen" in astray.detail
            half = await check_notify(NotifySettings(listen="127.0.0.1:1"), http)
            assert not half.ok and "or neither" in half.detail
    finally:
        await runner.cleanup()


# --- the command line ----------------------------------------------------------------------------------


def test_check_config_names_bad_keys_with_their_line(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text('[discord]\ntoken = "t"\n\n[alerts]\nproxy_down_s = -1\nchanel_id = 5\n', encoding="utf-8")
    result = run_cli("check-config", "--config", str(path))
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL  config")
    assert "alerts.proxy_down_s (line 5): Input should be greater than 0" in result.stdout
    assert "alerts.chanel_id (line 6): unknown key" in result.stdout


def test_backup_and_healthcheck_commands(tmp_path: Path):
    database = tmp_path / "db.sqlite3"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE jobs (task_id TEXT)")
        db.execute("INSERT INTO jobs VALUES ('1')")
    config = tmp_path / "c.toml"
    config.write_text(f'[storage]\npath = "{database}"\n', encoding="utf-8")
    done = run_cli("backup", str(tmp_path / "out.sqlite3"), "--config", str(config))
    assert done.returncode == 0 and "1 jobs" in done.stdout
    missing = run_cli("backup", str(tmp_path / "out.sqlite3"), env={"MJBOT_STORAGE__PATH": str(tmp_path / "no.db")})
    assert missing.returncode == 1 and "no database at" in missing.stderr
    nowhere = run_cli("healthcheck", "--config", str(config))
    assert nowhere.returncode == 2 and "[http] listen" in nowhere.stderr
    closed = run_cli("healthcheck", env={"MJBOT_HTTP__LISTEN": f"0.0.0.0:{free_port()}"})
    assert closed.returncode == 1 and closed.stdout.startswith("unhealthy: cannot reach http://127.0.0.1:")


# --- Docker --------------------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile line, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_the_image_runs_the_bot_as_a_user_with_its_database_on_a_volume():
    steps = dockerfile()
    first = dict(steps)
    assert first["FROM"].startswith("python:3.11-slim")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == ">=3.11"
    env = dict(
        shlex.split(pair)[0].split("=", 1) for args in (a for i, a in steps if i == "ENV") for pair in shlex.split(args)
    )
    volume = json.loads(first["VOLUME"])
    assert Path(env["MJBOT_STORAGE__PATH"]).parent == Path(volume[0])  # the database is on the volume
    user = [a for i, a in steps if i == "USER"]
    assert user and user[-1] not in ("root", "0")
    run = next(a for i, a in steps if i == "RUN")
    assert f"useradd --system --uid 10001 --home-dir {volume[0]}" in run and f"chown {user[-1]}:{user[-1]} /data" in run
    # Every COPY source is in the repository and shipped by .dockerignore.
    for args in (a for i, a in steps if i == "COPY"):
        for source in args.split()[:-1]:
            assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    assert "!pyproject.toml" in ignored and "!README.md" in ignored and "!bot/" in ignored
    # The entry command is the installed console script, and its commands exist.
    entry, command = json.loads(first["ENTRYPOINT"]), json.loads(first["CMD"])
    assert entry == ["mjbot"] and command == ["run"]
    assert pyproject["project"]["scripts"]["mjbot"] == "bot.__main__:main"
    from bot.__main__ import build_parser

    assert build_parser().parse_args(["run"]).command == "run"
    # The healthcheck asks /healthz where the image's http.listen puts it.
    healthcheck = next(a for i, a in steps if i == "HEALTHCHECK")
    assert json.loads(healthcheck.split("CMD", 1)[1]) == ["mjbot", "healthcheck"]
    assert build_parser().parse_args(["healthcheck"]).command == "healthcheck"
    assert env["MJBOT_HTTP__LISTEN"].endswith(":" + first["EXPOSE"])
    # config.toml is read from the working directory, where compose mounts it.
    workdir = [a for i, a in steps if i == "WORKDIR"][-1]
    assert workdir == "/config"


def test_compose_runs_the_bot_next_to_the_proxy():
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    services = re.findall(
        r"^  ([\w-]+):$", compose.split("\nservices:\n")[1].split("\nvolumes:\n")[0], flags=re.MULTILINE
    )
    assert services == ["midjourney-proxy", "mjbot"]
    assert "image: novicezk/midjourney-proxy:" in compose and "build: ." in compose
    assert "MJBOT_PROXY__BASE_URL: http://midjourney-proxy:8080/mj" in compose
    assert "mj.api-secret=${MJ_API_SECRET}" in compose and "MJBOT_PROXY__SECRET: ${MJ_API_SECRET}" in compose
    assert "- mjbot-data:/data" in compose and "./config.toml:/config/config.toml:ro" in compose
    assert '"127.0.0.1:8081:8081"' in compose
    # No secret is written in the file itself: they come from .env.
    assert not re.search(r"(TOKEN|SECRET)[^$\n]*[:=]\s*[\w-]{8,}\s*$", compose, flags=re.MULTILINE)


def test_the_cluster_compose_runs_two_bots_over_postgres():
    compose = (ROOT / "docker-compose.cluster.yml").read_text(encoding="utf-8")
    services = re.findall(
        r"^  ([\w-]+):$", compose.split("\nservices:\n")[1].split("\nvolumes:\n")[0], flags=re.MULTILINE
    )
    assert services == ["postgres", "midjourney-proxy", "mjbot-1", "mjbot-2"]
    assert compose.count("<<: *mjbot") == 2
    assert "MJBOT_STORAGE__URL: postgresql://mjbot:${POSTGRES_PASSWORD}@postgres:5432/mjbot" in compose
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}" in compose
    assert 'MJBOT_CLUSTER__SHARD_COUNT: "4"' in compose and "SHARD_IDS" not in compose
    assert not re.search(r"(TOKEN|SECRET|PASSWORD)[^$\n]*[:=]\s*[\w-]{8,}\s*$", compose, flags=re.MULTILINE)
