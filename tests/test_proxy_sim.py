"""Self-test of the Midjourney Proxy simulator used by the bot's tests."""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import socket
import struct
import time
import zlib

import httpx
import pytest
from aiohttp import web

from tests.proxy_sim import FAILURE, IN_PROGRESS, NOT_START, SUBMITTED, SUCCESS, ProxySim, Step

SECRET = "s3cret"
DATA_URL = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()


def assert_valid_png(data: bytes) -> tuple[int, int]:
    """Walk the chunks (checking CRCs) and decode the pixels; return (width, height)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload), kind
        chunks.append((kind, payload))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (depth, colour_type) == (8, 2)
    pixels = zlib.decompress(b"".join(p for k, p in chunks if k == b"IDAT"))
    assert len(pixels) == height * (1 + 3 * width)
    return width, height


@pytest.fixture
async def sim():
    async with ProxySim(secret=SECRET) as sim:
        yield sim


@pytest.fixture
async def client(sim):
    async with httpx.AsyncClient(base_url=sim.base_url, headers={"mj-api-secret": SECRET}, timeout=5) as client:
        yield client


async def imagine(client: httpx.AsyncClient, prompt: str = "a red fox", **extra) -> dict:
    response = await client.post("/submit/imagine", json={"prompt": prompt, **extra})
    assert response.status_code == 200
    return response.json()


async def test_auth_required_with_empty_401(sim, client):
    for headers in ({}, {"mj-api-secret": "wrong"}):
        async with httpx.AsyncClient(base_url=sim.base_url, headers=headers) as anonymous:
            response = await anonymous.post("/submit/imagine", json={"prompt": "x"})
            assert response.status_code == 401
            assert response.content == b""
    assert sim.tasks == {}
    assert sim.count("/submit/imagine") == 2
    assert sim.last_request("/submit/imagine").headers["mj-api-secret"] == "wrong"

    task = sim.add_task()
    sim.succeed(task.id)
    async with httpx.AsyncClient() as anonymous:  # images are CDN stand-ins: no secret
        assert (await anonymous.get(task.image_url)).status_code == 200


async def test_no_secret_means_no_auth():
    async with ProxySim() as sim, httpx.AsyncClient(base_url=sim.base_url) as client:
        assert (await imagine(client))["code"] == 1


async def test_imagine_to_success_with_images(sim, client):
    submitted = await imagine(client, "  a red fox --ar 3:2 ", state="guild:1", base64Array=[DATA_URL])
    assert submitted["code"] == 1 and submitted["description"] == "提交成功"
    assert submitted["properties"] == {"discordInstanceId": "1"}
    task_id = submitted["result"]
    assert isinstance(task_id, str) and task_id.isdigit() and 16 <= len(task_id) <= 19
    assert sim.last_request("/submit/imagine").json["state"] == "guild:1"

    fetched = (await client.get(f"/task/{task_id}/fetch")).json()
    assert set(fetched) >= {
        "id", "action", "status", "progress", "prompt", "promptEn", "description", "state",
        "submitTime", "startTime", "finishTime", "imageUrl", "failReason", "properties",
    }
    assert (fetched["action"], fetched["status"], fetched["progress"]) == ("IMAGINE", SUBMITTED, "0%")
    assert fetched["prompt"] == "a red fox --ar 3:2" and fetched["state"] == "guild:1"
    assert fetched["imageUrl"] is None and fetched["finishTime"] is None
    assert fetched["properties"]["finalPrompt"] == "a red fox --ar 3:2"

    sim.advance(task_id)
    fetched = (await client.get(f"/task/{task_id}/fetch")).json()
    assert (fetched["status"], fetched["progress"]) == (IN_PROGRESS, "10%")
    assert fetched["imageUrl"] == sim.preview_url(task_id, 1)
    preview = (await client.get(fetched["imageUrl"])).content
    assert_valid_png(preview)

    for _ in range(3):
        sim.advance(task_id)
    fetched = (await client.get(f"/task/{task_id}/fetch")).json()
    assert (fetched["status"], fetched["progress"]) == (SUCCESS, "100%")
    assert fetched["imageUrl"] == f"{sim.base_url}/image/{task_id}.png"
    assert fetched["finishTime"] >= fetched["startTime"] >= fetched["submitTime"]
    assert sim.advance(task_id).status == SUCCESS  # the end of the timeline: stays

    response = await client.get(fetched["imageUrl"])
    assert response.headers["content-type"] == "image/png"
    assert assert_valid_png(response.content) == (64, 64)
    assert response.content == sim.image_bytes(task_id) != preview

    other = sim.add_task("another")
    assert sim.image_bytes(other.id) != sim.image_bytes(task_id)


async def test_fetch_unknown_and_forgotten_is_empty_200(sim, client):
    response = await client.get("/task/1234567890123456/fetch")
    assert response.status_code == 200 and response.content == b""

    task = sim.add_task()
    sim.forget(task.id)
    response = await client.get(f"/task/{task.id}/fetch")
    assert response.status_code == 200 and response.content == b""


async def test_list_by_condition_drops_unknown_ids(sim, client):
    a, b = sim.add_task("a"), sim.add_task("b")
    response = await client.post("/task/list-by-condition", json={"ids": [a.id, "404", b.id]})
    assert sorted(t["id"] for t in response.json()) == sorted([a.id, b.id])
    assert (await client.post("/task/list-by-condition", json={"ids": []})).json() == []


async def test_imagine_validation(sim, client):
    assert await imagine(client, "   ") == {
        "code": 4, "description": "prompt不能为空", "result": None, "properties": {}
    }
    bare = base64.b64encode(b"png").decode()
    assert (await imagine(client, "x", base64Array=[bare]))["description"] == "base64格式错误"
    assert (await imagine(client, "x", base64="data:image/png;base64,@@"))["code"] == 4
    assert sim.tasks == {}


async def test_change(sim, client):
    parent = sim.add_task("a red fox")
    change = {"taskId": parent.id, "action": "UPSCALE", "index": 2, "state": "s"}

    response = (await client.post("/submit/change", json=change)).json()
    assert (response["code"], response["description"]) == (4, "关联任务状态错误")
    response = (await client.post("/submit/change", json={**change, "taskId": "999"})).json()
    assert (response["code"], response["description"]) == (3, "关联任务不存在或已失效")
    for bad in ({"index": 5}, {"index": None}, {"action": "ZOOM"}):
        assert (await client.post("/submit/change", json={**change, **bad})).json()["code"] == 4

    sim.succeed(parent.id)
    response = (await client.post("/submit/change", json=change)).json()
    assert response["code"] == 1
    upscale = sim.tasks[response["result"]]
    assert (upscale.action, upscale.parent_id, upscale.index) == ("UPSCALE", parent.id, 2)
    assert (upscale.prompt, upscale.state, upscale.status) == ("a red fox", "s", SUBMITTED)
    assert upscale.description == f"/up {parent.id} U2"
    reroll = (await client.post("/submit/change", json={"taskId": parent.id, "action": "REROLL"})).json()
    assert reroll["code"] == 1 and sim.tasks[reroll["result"]].action == "REROLL"

    sim.succeed(upscale.id)
    assert_valid_png(sim.image_bytes(upscale.id))
    assert sim.image_bytes(upscale.id) != sim.image_bytes(parent.id)
    again = {"taskId": upscale.id, "action": "VARIATION", "index": 1}
    assert (await client.post("/submit/change", json=again)).json()["description"] == "关联任务不允许执行变化"


async def test_queue_then_full():
    async with ProxySim(max_running=1, max_queue=2) as sim, httpx.AsyncClient(base_url=sim.base_url) as client:
        first, second, third, fourth = [await imagine(client, f"p{i}") for i in range(4)]
        assert first["code"] == 1
        assert (second["code"], second["properties"]["numberOfQueues"]) == (22, 0)
        assert (third["code"], third["description"]) == (22, "排队中，前面还有1个任务")
        assert fourth == {
            "code": 23, "description": "队列已满，请稍后尝试", "result": None,
            "properties": {"discordInstanceId": "1"},
        }
        queued = (await client.get(f"/task/{second['result']}/fetch")).json()
        assert (queued["status"], queued["progress"], queued["startTime"]) == (NOT_START, None, None)

        assert sim.start_queued() == []  # the only slot is busy
        sim.succeed(first["result"])
        assert sim.start_queued() == [second["result"]]
        assert sim.tasks[third["result"]].status == NOT_START


async def test_banned_word():
    async with ProxySim(banned_words=["blood"]) as sim, httpx.AsyncClient(base_url=sim.base_url) as client:
        assert await imagine(client, "a Blood moon") == {
            "code": 24, "description": "可能包含敏感词", "result": None,
            "properties": {"promptEn": "a Blood moon", "bannedWord": "Blood"},
        }
        assert (await imagine(client, "a bloodhound"))["code"] == 1  # whole words only


FAILURES = [
    ("http500_spring", 500, lambda r: r.json()["error"] == "Internal Server Error"
     and r.json()["path"] == "/mj/submit/imagine"),
    ("html502", 502, lambda r: "nginx" in r.text and r.headers["content-type"].startswith("text/html")),
    ("empty200", 200, lambda r: r.content == b""),
    ("malformed", 200, lambda r: r.text == '{"code":1,'),
    ("unauthorized", 401, lambda r: r.content == b""),
    ("status:429", 429, lambda r: r.json()["status"] == 429),
    ("code:9", 200, lambda r: r.json() == {
        "code": 9, "description": "提交失败，系统异常", "result": None, "properties": {}}),
]


@pytest.mark.parametrize(("kind", "status", "check"), FAILURES, ids=[f[0] for f in FAILURES])
async def test_fail_next(sim, client, kind, status, check):
    sim.fail_next("/submit/imagine", kind)
    response = await client.post("/submit/imagine", json={"prompt": "x"})
    assert response.status_code == status and check(response)
    assert sim.tasks == {}  # the failed request had no effect
    assert (await imagine(client))["code"] == 1  # only the next one fails


async def test_fail_next_options(sim, client):
    sim.fail_next("/submit/change", "code:24", description="banned", properties={"bannedWord": "x"})
    response = (await client.post("/submit/change", json={})).json()
    assert (response["code"], response["description"], response["properties"]) == (24, "banned", {"bannedWord": "x"})

    sim.fail_next("/fetch", "status:400", body={"error": "task_no_found"}, times=2)
    for _ in range(2):
        response = await client.get("/task/1/fetch")
        assert (response.status_code, response.json()) == (400, {"error": "task_no_found"})
    assert (await client.get("/task/1/fetch")).status_code == 200

    sim.fail_next(kind="status:503", body="busy", times=None)
    assert (await client.get("/task/1/fetch")).text == "busy"
    assert (await client.post("/task/list-by-condition", json={"ids": []})).status_code == 503
    sim.clear_failures()
    assert (await client.get("/task/1/fetch")).status_code == 200

    with pytest.raises(ValueError):
        sim.fail_next(kind="teapot")


async def test_delay_lets_the_client_time_out_but_still_submits(sim, client):
    sim.fail_next("/submit/imagine", "delay:0.3")
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/submit/imagine", json={"prompt": "slow"}, timeout=0.05)
    task = await sim.wait_for(lambda: next(iter(sim.tasks.values()), None), timeout=2)
    assert task.prompt == "slow"


async def test_set_down_refuses_then_recovers(sim, client):
    task = sim.add_task()
    assert (await client.get(f"/task/{task.id}/fetch")).status_code == 200  # keep-alive open
    port = sim.port

    await sim.set_down(True)
    assert sim.is_down
    with pytest.raises(httpx.ConnectError):
        await client.get(f"/task/{task.id}/fetch")

    await sim.set_down(False)
    assert sim.port == port and not sim.is_down
    assert (await client.get(f"/task/{task.id}/fetch")).json()["id"] == task.id


async def test_poll_mode_advances_after_each_read():
    async with ProxySim(mode="poll") as sim, httpx.AsyncClient(base_url=sim.base_url) as client:
        task_id = (await imagine(client))["result"]
        seen = [(await client.get(f"/task/{task_id}/fetch")).json()["progress"] for _ in range(4)]
        listed = (await client.post("/task/list-by-condition", json={"ids": [task_id]})).json()
        assert seen + [listed[0]["progress"]] == ["0%", "10%", "40%", "80%", "100%"]
        assert listed[0]["status"] == SUCCESS


async def test_time_mode_runs_on_its_own():
    async with ProxySim(mode="time", step_s=0.01) as sim:
        task = sim.add_task()
        await sim.wait_for(lambda: task.status == SUCCESS, timeout=2)


async def test_timelines_and_manual_states(sim, client):
    sim.next_timeline([Step(SUBMITTED, "0%"), Step(FAILURE, "", fail_reason="任务超时")])
    failing = (await imagine(client, "a"))["result"]
    normal = (await imagine(client, "b"))["result"]
    sim.advance(failing)
    fetched = (await client.get(f"/task/{failing}/fetch")).json()
    assert (fetched["status"], fetched["progress"], fetched["failReason"]) == (FAILURE, "", "任务超时")
    assert fetched["finishTime"] is not None
    assert len(sim.tasks[normal].timeline) == 5

    sim.set_state(normal, status=IN_PROGRESS, progress="stuck", image_url=None)
    fetched = (await client.get(f"/task/{normal}/fetch")).json()
    assert (fetched["status"], fetched["progress"], fetched["imageUrl"]) == (IN_PROGRESS, "stuck", None)
    sim.fail(normal, reason="Banned prompt")
    assert sim.tasks[normal].to_json()["failReason"] == "Banned prompt"

    sim.next_timeline([Step(SUBMITTED, "0%")])  # stuck at 0% for ever
    explicit = sim.add_task(timeline=[(SUBMITTED, "0%"), (SUCCESS, "100%", "final")])
    assert sim.advance(explicit.id).image_url == sim.final_url(explicit.id)
    stuck = sim.add_task()
    assert sim.advance(stuck.id).progress == "0%"


async def test_final_image_size_pads_a_valid_png():
    async with ProxySim(final_image_size=300_000) as sim:
        task = sim.add_task()
        data = sim.image_bytes(task.id)
        assert len(data) == 300_000
        assert_valid_png(data)


# --------------------------------------------------------------------------
# notifyHook deliveries, received on a real socket


class Receiver:
    """A notifyHook endpoint on 127.0.0.1: records each POST, answers ``status``.

    With ``block`` set, a request is recorded and then held until ``release`` is set.
    """

    def __init__(self) -> None:
        self.got: list[tuple[str, str, dict]] = []  # (path, content type, JSON body)
        self.status = 200
        self.block = False
        self.release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def progress(self, path: str | None = None) -> list[tuple[str, str]]:
        return [(b["status"], b["progress"]) for p, _, b in self.got if path is None or p == path]

    async def _handle(self, request: web.Request) -> web.Response:
        self.got.append((request.path, request.content_type, await request.json()))
        if self.block:
            await self.release.wait()
        return web.Response(status=self.status)

    async def __aenter__(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release.set()
        await self._runner.cleanup()


@pytest.fixture
async def receiver():
    async with Receiver() as receiver:
        yield receiver


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_delivery_on_every_change(sim, client, receiver):
    submitted = await imagine(client, state="guild:1", notifyHook=receiver.url())
    task_id = submitted["result"]
    for _ in range(3):
        sim.advance(task_id)
    sim.succeed(task_id)
    sim.advance(task_id)  # no change, so no delivery
    await sim.wait_deliveries()

    assert receiver.progress() == [
        (SUBMITTED, "0%"), (IN_PROGRESS, "10%"), (IN_PROGRESS, "40%"), (IN_PROGRESS, "80%"), (SUCCESS, "100%"),
    ]
    assert {content_type for _, content_type, _ in receiver.got} == {"application/json"}
    bodies = [body for _, _, body in receiver.got]
    assert bodies[-1] == sim.tasks[task_id].to_json()  # the whole Task, state unchanged
    assert bodies[-1]["state"] == "guild:1" and bodies[-1]["imageUrl"] == sim.final_url(task_id)
    assert bodies[1]["imageUrl"] == sim.preview_url(task_id, 1)  # a snapshot taken at the save
    assert [d.payload for d in sim.deliveries] == bodies
    assert all(d.ok and d.http_status == 200 and d.error is None for d in sim.deliveries)
    assert {(d.task_id, d.url) for d in sim.deliveries} == {(task_id, receiver.url())}
    assert [(d.status, d.progress) for d in sim.deliveries] == receiver.progress()
    assert all(a.at <= b.at for a, b in zip(sim.deliveries, sim.deliveries[1:]))

    change = {"taskId": task_id, "action": "UPSCALE", "index": 1, "notifyHook": receiver.url("/up")}
    upscale = (await client.post("/submit/change", json=change)).json()["result"]
    await sim.wait_deliveries()
    assert receiver.got[-1][0] == "/up" and receiver.got[-1][2]["id"] == upscale


async def test_task_hook_wins_over_the_global_one(receiver):
    async with (
        ProxySim(max_running=1, notify_hook=receiver.url("/global")) as sim,
        httpx.AsyncClient(base_url=sim.base_url) as client,
    ):
        running = (await imagine(client, "a"))["result"]
        queued = (await imagine(client, "b", notifyHook=receiver.url("/own")))["result"]
        direct = sim.add_task(notify_hook=receiver.url("/direct"))
        await sim.wait_deliveries()
    # Created running: SUBMITTED; created waiting for a slot: NOT_START. Tasks go out
    # side by side, so only each task's own pushes have an order.
    assert {(p, b["id"], b["status"]) for p, _, b in receiver.got} == {
        ("/global", running, SUBMITTED), ("/own", queued, NOT_START), ("/direct", direct.id, SUBMITTED),
    }
    assert len(receiver.got) == 3


async def test_drop_next_deliveries(sim, receiver):
    a, b = sim.add_task(notify_hook=receiver.url("/a")), sim.add_task(notify_hook=receiver.url("/b"))
    sim.drop_next_deliveries(1, task_id=a.id)
    sim.advance(a.id)  # lost
    sim.advance(b.id)  # sent
    sim.drop_next_deliveries(2)
    for task in (b, a, a):  # the first two are lost, whichever task they belong to
        sim.advance(task.id)
    await sim.wait_deliveries()

    assert receiver.progress("/a") == [(SUBMITTED, "0%"), (IN_PROGRESS, "80%")]
    assert receiver.progress("/b") == [(SUBMITTED, "0%"), (IN_PROGRESS, "10%")]
    dropped = [(d.task_id, d.progress) for d in sim.deliveries if d.error == "dropped"]
    assert sorted(dropped) == sorted([(a.id, "10%"), (b.id, "40%"), (a.id, "40%")])
    assert all(d.http_status is None for d in sim.deliveries if d.error)

    with pytest.raises(ValueError):
        sim.drop_next_deliveries(0)


async def test_lost_push_is_recovered_by_polling(sim, client, receiver):
    task = sim.add_task(notify_hook=receiver.url())
    sim.drop_next_deliveries()
    sim.succeed(task.id)
    await sim.wait_deliveries()
    assert receiver.progress() == [(SUBMITTED, "0%")]
    assert (await client.get(f"/task/{task.id}/fetch")).json()["status"] == SUCCESS


async def test_duplicate_next_deliveries(sim, receiver):
    task = sim.add_task(notify_hook=receiver.url())
    sim.duplicate_next_deliveries(1)
    sim.advance(task.id)
    sim.advance(task.id)
    await sim.wait_deliveries()
    assert receiver.progress() == [
        (SUBMITTED, "0%"), (IN_PROGRESS, "10%"), (IN_PROGRESS, "10%"), (IN_PROGRESS, "40%"),
    ]
    assert receiver.got[1][2] == receiver.got[2][2]
    assert [d.progress for d in sim.deliveries].count("10%") == 2


async def test_reorder_deliveries(sim, receiver):
    task = sim.add_task(notify_hook=receiver.url())
    await sim.wait_deliveries()
    sim.reorder_deliveries(True)
    for _ in range(3):
        sim.advance(task.id)
    sim.succeed(task.id)
    await sim.flush_deliveries()
    assert receiver.progress() == [
        (SUBMITTED, "0%"), (SUCCESS, "100%"), (IN_PROGRESS, "80%"), (IN_PROGRESS, "40%"), (IN_PROGRESS, "10%"),
    ]

    # Still on: held again, and held ones keep wait_deliveries() waiting.
    other = sim.add_task(notify_hook=receiver.url("/other"))
    sim.advance(other.id)
    with pytest.raises(TimeoutError):
        await sim.wait_deliveries(timeout=0.05)
    sim.reorder_deliveries(False)  # turning it off sends them, newest first
    await sim.wait_deliveries()
    assert receiver.progress("/other") == [(IN_PROGRESS, "10%"), (SUBMITTED, "0%")]

    sim.advance(other.id)  # off: in order again
    await sim.wait_deliveries()
    assert receiver.progress("/other")[-1] == (IN_PROGRESS, "40%")


async def test_pause_and_resume_keep_the_order(sim, receiver):
    sim.pause_deliveries()
    task = sim.add_task(notify_hook=receiver.url())
    sim.advance(task.id)
    sim.fail(task.id)
    assert sim.deliveries == []
    sim.resume_deliveries()
    await sim.wait_deliveries()
    assert receiver.progress() == [(SUBMITTED, "0%"), (IN_PROGRESS, "10%"), (FAILURE, "")]


async def test_failed_deliveries_are_lost_without_harm(sim, client, receiver):
    receiver.status = 500
    task = sim.add_task(notify_hook=receiver.url())
    await sim.wait_deliveries()
    assert [(d.http_status, d.error, d.ok) for d in sim.deliveries] == [(500, None, False)]

    sim.tasks[task.id].notify_hook = f"http://127.0.0.1:{closed_port()}/hook"
    sim.advance(task.id)
    await sim.wait_deliveries()
    refused = sim.deliveries[-1]
    assert refused.http_status is None and refused.error and not refused.ok
    assert len(sim.deliveries) == 2  # no retries
    assert len(receiver.got) == 1

    await sim.set_down(True)  # off the network: pushes are lost too
    sim.advance(task.id)
    assert sim.deliveries[-1].error == "server down"
    await sim.set_down(False)
    assert (await client.get(f"/task/{task.id}/fetch")).json()["progress"] == "40%"


async def test_stop_with_deliveries_pending_is_clean(receiver, caplog):
    receiver.block = True
    sim = ProxySim(notify_hook=receiver.url())
    await sim.start()
    task = sim.add_task()
    await sim.wait_for(lambda: receiver.got)  # the first push is in flight, held by the receiver
    sim.advance(task.id)  # queued behind it
    sim.reorder_deliveries(True)
    sim.advance(task.id)  # held
    await sim.stop()

    assert [(d.progress, d.error) for d in sim.deliveries] == [
        ("0%", "cancelled"), ("10%", "cancelled"), ("40%", "cancelled"),
    ]
    sim.advance(task.id)  # stopped: nothing to send with, nothing scheduled
    assert sim.deliveries[-1].error == "not running"
    await sim.wait_deliveries(timeout=0)
    gc.collect()
    assert not [r for r in caplog.records if "destroyed" in r.getMessage() and r.levelno >= logging.ERROR]


async def test_finish_times(sim):
    ok, bad, running = sim.add_task("ok"), sim.add_task("bad"), sim.add_task("running")
    before = time.time()
    sim.advance(ok.id)
    sim.succeed(ok.id)
    sim.fail(bad.id)
    assert before <= ok.finished_at <= time.time()
    assert ok.finish_time == int(ok.finished_at * 1000)
    assert bad.finished_at >= ok.finished_at and running.finished_at is None
    assert [(s, p) for _, s, p in ok.state_times] == [(SUBMITTED, "0%"), (IN_PROGRESS, "10%"), (SUCCESS, "100%")]
    assert ok.state_times[-1][0] == ok.finished_at
    sim.set_state(ok.id, progress="100%")
    assert ok.finished_at == ok.state_times[-2][0]  # the first time it finished


async def test_jitter_is_reproducible_per_seed():
    def steps(**options) -> list[float]:
        sim = ProxySim(step_s=2.0, **options)
        return [sim.add_task().step_s for _ in range(20)]

    first = steps(jitter=0.5, seed=7)
    assert first == steps(jitter=0.5, seed=7) != steps(jitter=0.5, seed=8)
    assert all(1.0 <= s <= 3.0 for s in first) and len(set(first)) == 20
    assert set(steps()) == {2.0}
    with pytest.raises(ValueError):
        ProxySim(jitter=1.0)


async def test_time_mode_moves_each_task_on_its_own_clock():
    async with ProxySim(mode="time", step_s=0.01, jitter=0.6, seed=3, max_running=2) as sim:
        tasks = [sim.add_task(str(i), started=False) for i in range(3)]
        await sim.wait_for(lambda: all(t.is_finished for t in tasks), timeout=3)
    assert len({t.step_s for t in tasks}) == 3
    for task in tasks:
        times = [at for at, status, _ in task.state_times if status != NOT_START]
        # Steps come late under load, never early.
        assert all(b - a >= task.step_s - 0.002 for a, b in zip(times, times[1:]))
    # Only two slots: the third starts when the first of the others finishes.
    third_start = next(at for at, status, _ in tasks[2].state_times if status == SUBMITTED)
    assert third_start >= min(tasks[0].finished_at, tasks[1].finished_at)


async def test_thousands_of_tasks_stay_cheap():
    async with (
        ProxySim(mode="time", step_s=0.05, jitter=0.5, seed=1, max_running=10_000) as sim,
        httpx.AsyncClient(base_url=sim.base_url, timeout=5) as client,
    ):
        tasks = [sim.add_task(str(i), started=i < 8_000) for i in range(10_000)]
        response = await client.post("/task/list-by-condition", json={"ids": [t.id for t in tasks[:1000]]})
        assert len(response.json()) == 1000
        sim.tick()  # the lock-step helper, for good measure
        await sim.wait_for(lambda: all(t.is_finished for t in tasks), timeout=10)
    assert len({round(t.finished_at, 3) for t in tasks}) > 100  # spread out, not one instant
