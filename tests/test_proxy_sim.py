"""Self-test of the Midjourney Proxy simulator used by the bot's tests."""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import json
import logging
import socket
import struct
import time
import zlib
from contextlib import asynccontextmanager

import httpx
import pytest
from aiohttp import web
from PIL import Image

from bot.sandbox.proxy_sim import (
    CANCEL,
    FAILURE,
    IN_PROGRESS,
    MODAL,
    NOT_START,
    SHORTEN_MARKS,
    SUBMITTED,
    SUCCESS,
    ProxySim,
    Step,
    shorten_description,
    shortened_prompts,
)

SECRET = "s3cret"
JSON = {"Content-Type": "application/json"}
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
        "id",
        "action",
        "status",
        "progress",
        "prompt",
        "promptEn",
        "description",
        "state",
        "submitTime",
        "startTime",
        "finishTime",
        "imageUrl",
        "failReason",
        "properties",
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
        "code": 4,
        "description": "prompt不能为空",
        "result": None,
        "properties": {},
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
            "code": 23,
            "description": "队列已满，请稍后尝试",
            "result": None,
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
            "code": 24,
            "description": "可能包含敏感词",
            "result": None,
            "properties": {"promptEn": "a Blood moon", "bannedWord": "Blood"},
        }
        assert (await imagine(client, "a bloodhound"))["code"] == 1  # whole words only


FAILURES = [
    (
        "http500_spring",
        500,
        lambda r: r.json()["error"] == "Internal Server Error" and r.json()["path"] == "/mj/submit/imagine",
    ),
    ("html502", 502, lambda r: "nginx" in r.text and r.headers["content-type"].startswith("text/html")),
    ("empty200", 200, lambda r: r.content == b""),
    ("malformed", 200, lambda r: r.text == '{"code":1,'),
    ("unauthorized", 401, lambda r: r.content == b""),
    ("status:429", 429, lambda r: r.json()["status"] == 429),
    (
        "code:9",
        200,
        lambda r: r.json() == {"code": 9, "description": "提交失败，系统异常", "result": None, "properties": {}},
    ),
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

    async def __aenter__(self) -> Receiver:
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
        (SUBMITTED, "0%"),
        (IN_PROGRESS, "10%"),
        (IN_PROGRESS, "40%"),
        (IN_PROGRESS, "80%"),
        (SUCCESS, "100%"),
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
    assert all(a.at <= b.at for a, b in zip(sim.deliveries, sim.deliveries[1:], strict=False))

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
        ("/global", running, SUBMITTED),
        ("/own", queued, NOT_START),
        ("/direct", direct.id, SUBMITTED),
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
        (SUBMITTED, "0%"),
        (IN_PROGRESS, "10%"),
        (IN_PROGRESS, "10%"),
        (IN_PROGRESS, "40%"),
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
        (SUBMITTED, "0%"),
        (SUCCESS, "100%"),
        (IN_PROGRESS, "80%"),
        (IN_PROGRESS, "40%"),
        (IN_PROGRESS, "10%"),
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
        ("0%", "cancelled"),
        ("10%", "cancelled"),
        ("40%", "cancelled"),
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
        # Steps come late under load, never early (asyncio may fire a timer up to its clock
        # resolution early, and the wall clock these times use is not the loop's clock: 5 ms slack).
        assert all(b - a >= task.step_s - 0.005 for a, b in zip(times, times[1:], strict=False))
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


# --------------------------------------------------------------------------
# The other flavours: trueai, and new-api in front of novicezk or trueai

NEWAPI_KEY = "sk-n3wapi"
# How the bot authenticates with each flavour (the header the contract says to send).
GOOD_HEADERS = {
    "novicezk": {"mj-api-secret": SECRET},
    "trueai": {"Authorization": SECRET},
    "newapi": {"Authorization": f"Bearer {NEWAPI_KEY}"},
}
UPSTREAM_ERROR = "upstream_error"


@asynccontextmanager
async def served(flavour: str = "trueai", base_url: str | None = None, **options):
    """A started sim of ``flavour`` and a client that authenticates the way it wants."""
    secret = NEWAPI_KEY if flavour == "newapi" else SECRET
    async with (
        ProxySim(secret=secret, flavour=flavour, **options) as sim,
        httpx.AsyncClient(base_url=base_url or sim.base_url, headers=GOOD_HEADERS[flavour], timeout=5) as client,
    ):
        yield sim, client


async def fetch(client: httpx.AsyncClient, task_id: str) -> dict:
    response = await client.get(f"/task/{task_id}/fetch")
    assert response.status_code == 200, response.text
    return response.json()


async def action(client: httpx.AsyncClient, task_id: str, custom_id: str, **extra) -> httpx.Response:
    return await client.post("/submit/action", json={"taskId": task_id, "customId": custom_id, **extra})


def newapi_error(description: str) -> dict:
    return {"code": 4, "description": description + " ", "type": UPSTREAM_ERROR}


def succeeded(sim: ProxySim, prompt: str = "a red fox", action: str = "IMAGINE") -> str:
    task = sim.add_task(prompt, action=action)
    sim.succeed(task.id)
    return task.id


AUTH = [
    ("novicezk", {"mj-api-secret": SECRET}, 200, None),
    ("novicezk", {"Authorization": SECRET}, 401, lambda r: r.content == b""),
    ("trueai", {"Authorization": SECRET}, 200, None),
    ("trueai", {"mj-api-secret": SECRET}, 200, None),
    ("trueai", {"Authorization": SECRET, "mj-api-secret": "wrong"}, 200, None),
    ("trueai", {"Authorization": "wrong", "mj-api-secret": SECRET}, 401, None),  # Authorization wins
    ("trueai", {"Authorization": f"Bearer {SECRET}"}, 401, None),  # no Bearer stripping
    ("trueai", {}, 401, None),
    ("newapi", {"Authorization": f"Bearer {NEWAPI_KEY}"}, 200, None),
    ("newapi", {"mj-api-secret": NEWAPI_KEY}, 200, None),
    (
        "newapi",
        {"Authorization": "Bearer sk-wrong"},
        401,
        lambda r: r.json() == {"error": {"message": "无效的令牌", "type": "new_api_error"}},
    ),
    ("newapi", {"Authorization": SECRET}, 401, lambda r: r.json()["error"]["message"] == "无效的令牌"),
    ("newapi", {}, 401, lambda r: r.json() == {"error": {"message": "未提供令牌", "type": "new_api_error"}}),
]
FAILED_AUTH_SHAPE = {
    "novicezk": lambda r: r.content == b"",
    "trueai": lambda r: r.headers["content-type"].startswith("text/plain") and r.text == "Unauthorized",
    "newapi": lambda r: (
        r.headers["content-type"].startswith("application/json") and r.json()["error"]["type"] == "new_api_error"
    ),
}


@pytest.mark.parametrize(
    ("flavour", "headers", "status", "check"),
    AUTH,
    ids=[f"{a[0]}-{'+'.join(a[1]) or 'none'}-{a[2]}-{i}" for i, a in enumerate(AUTH)],
)
async def test_auth_by_flavour(flavour, headers, status, check):
    async with served(flavour) as (sim, _), httpx.AsyncClient(base_url=sim.base_url, headers=headers) as client:
        response = await client.post("/submit/imagine", json={"prompt": "x"})
        assert response.status_code == status
        if status == 200:
            assert response.json()["code"] == 1 and len(sim.tasks) == 1
        else:
            assert FAILED_AUTH_SHAPE[flavour](response) and sim.tasks == {}
            assert check is None or check(response)


UNKNOWN_TASK = [
    ({"flavour": "novicezk"}, 200, lambda r: r.content == b""),
    ({"flavour": "trueai"}, 204, lambda r: r.content == b""),
    ({"flavour": "newapi"}, 400, lambda r: r.json() == newapi_error("task_no_found")),
    ({"flavour": "newapi", "upstream": "trueai"}, 400, lambda r: r.json() == newapi_error("task_no_found")),
]


@pytest.mark.parametrize(
    ("options", "status", "check"), UNKNOWN_TASK, ids=["novicezk", "trueai", "newapi", "newapi-trueai"]
)
async def test_unknown_task_by_flavour(options, status, check):
    async with served(**options) as (sim, client):
        response = await client.get("/task/1234567890123456/fetch")
        assert response.status_code == status and check(response)
        known = sim.add_task("known")
        listed = (await client.post("/task/list-by-condition", json={"ids": ["404", known.id]})).json()
        assert [t["id"] for t in listed] == [known.id]


NOVICEZK_FULL, TRUEAI_FULL = "队列已满，请稍后尝试", "提交失败，队列已满，请稍后重试"  # DiscordService.cs RedisEnqueue
QUEUE = [
    ({"flavour": "novicezk"}, (1, 22, 23), NOVICEZK_FULL),
    ({"flavour": "trueai"}, (1, 22, 9), TRUEAI_FULL),
    ({"flavour": "newapi", "upstream": "novicezk"}, (1, 1, 23), NOVICEZK_FULL),  # new-api rewrites 22 to 1
    ({"flavour": "newapi", "upstream": "trueai"}, (1, 1, 9), TRUEAI_FULL),
]


@pytest.mark.parametrize(
    ("options", "codes", "full_text"), QUEUE, ids=["novicezk", "trueai", "newapi-novicezk", "newapi-trueai"]
)
async def test_queue_and_queue_full_by_flavour(options, codes, full_text):
    async with served(**options, max_running=1, max_queue=1) as (sim, client):
        responses = [await client.post("/submit/imagine", json={"prompt": f"p{i}"}) for i in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 200]
        first, queued, full = (r.json() for r in responses)
        assert (first["code"], queued["code"], full["code"]) == codes
        # Only the code is rewritten: the rest still says the task waits.
        assert queued["description"] == "排队中，前面还有0个任务"
        assert queued["properties"]["numberOfQueues"] == 0
        assert sim.tasks[queued["result"]].status == NOT_START
        assert (full["description"], full["result"]) == (full_text, None)
        assert len(sim.tasks) == 2


GRID_BUTTONS = [
    *((f"U{n}", "", f"MJ::JOB::upsample::{n}::{{h}}") for n in range(1, 5)),
    ("", "🔄", "MJ::JOB::reroll::0::{h}::SOLO"),
    *((f"V{n}", "", f"MJ::JOB::variation::{n}::{{h}}") for n in range(1, 5)),
]
# trueai's buttons under an upscale of a v7 prompt: Models/TaskInfo.cs OnUpscaleButtons, built by
# Models/CustomComponentModel.cs (CreateUpscaleButtons, CreateVaryButtons, CreateZoomButtons,
# CreatePanButtons, CreateAnimateButtons, CreateRerollButtons), in that order.
UPSCALE_BUTTONS = [
    ("Upscale (Subtle)", "upscale_1", "MJ::JOB::upsample_v7_2x_subtle::1::{h}::SOLO"),
    ("Upscale (Creative)", "upscale_1", "MJ::JOB::upsample_v7_2x_creative::1::{h}::SOLO"),
    ("Vary (Subtle)", "🪄", "MJ::JOB::low_variation::1::{h}::SOLO"),
    ("Vary (Strong)", "🪄", "MJ::JOB::high_variation::1::{h}::SOLO"),
    ("Vary (Region)", "🖌️", "MJ::Inpaint::1::{h}::SOLO"),
    ("Zoom Out 2x", "🔍", "MJ::Outpaint::50::1::{h}::SOLO"),
    ("Zoom Out 1.5x", "🔍", "MJ::Outpaint::75::1::{h}::SOLO"),
    ("Custom Zoom", "🔍", "MJ::CustomZoom::1::{h}"),
    ("", "⬅️", "MJ::JOB::pan_left::1::{h}::SOLO"),
    ("", "➡️", "MJ::JOB::pan_right::1::{h}::SOLO"),
    ("", "⬆️", "MJ::JOB::pan_up::1::{h}::SOLO"),
    ("", "⬇️", "MJ::JOB::pan_down::1::{h}::SOLO"),
    ("Animate (High motion)", "🎞️", "MJ::JOB::animate_high::1::{h}::SOLO"),
    ("Animate (Low motion)", "🎞️", "MJ::JOB::animate_low::1::{h}::SOLO"),
    ("", "🔄", "MJ::JOB::reroll::0::{h}::SOLO"),
]
# Under an Upscale (Subtle/Creative) result, action UPSCALE_HD: TaskInfo.OnUpscale2xButtons.
UPSCALE_HD_BUTTONS = [UPSCALE_BUTTONS[i] for i in (2, 3, 4, 5, 6, 7, 12, 13, 14)]
# Under a VIDEO batch: TaskInfo.SetVideoUpscaleButtons; under one upscaled video: SetVideoExtendButtons.
VIDEO_BUTTONS = [
    *((f"U{n}", "", f"MJ::JOB::video_virtual_upscale::{n}::{{h}}") for n in range(1, 5)),
    ("", "🔄", "MJ::JOB::reroll::0::{h}::SOLO"),
]
VIDEO_EXTEND_BUTTONS = [
    ("Extend (High motion)", "🎞️", "MJ::JOB::animate_high_extend::1::{h}"),
    ("Extend (Low motion)", "🎞️", "MJ::JOB::animate_low_extend::1::{h}"),
]


def expected_buttons(table: list[tuple[str, str, str]], job_hash: str) -> list[dict]:
    return [
        {"customId": c.format(h=job_hash), "emoji": e, "label": label, "style": 2, "type": 2} for label, e, c in table
    ]


async def test_trueai_task_fields_and_button_sets(receiver):
    async with served("trueai") as (sim, client):
        task_id = (await imagine(client, notifyHook=receiver.url()))["result"]
        running = await fetch(client, task_id)
        assert {k: running[k] for k in ("buttons", "parentId", "seed", "mode", "botType")} == {
            "buttons": [],
            "parentId": None,
            "seed": None,
            "mode": "FAST",
            "botType": "MID_JOURNEY",
        }
        sim.advance(task_id)
        assert (await fetch(client, task_id))["buttons"] == []

        sim.succeed(task_id)
        grid = await fetch(client, task_id)
        job_hash = sim.tasks[task_id].job_hash
        assert len(job_hash) == 36 and grid["seed"].isdigit()
        assert grid["buttons"] == expected_buttons(GRID_BUTTONS, job_hash)
        await sim.wait_deliveries()
        assert receiver.got[-1][2]["buttons"] == grid["buttons"]  # pushes carry them too

        upscale_id = (await action(client, task_id, f"MJ::JOB::upsample::2::{job_hash}")).json()["result"]
        sim.succeed(upscale_id)
        upscale = await fetch(client, upscale_id)
        upscale_hash = sim.tasks[upscale_id].job_hash
        assert upscale_hash != job_hash
        assert upscale["buttons"] == expected_buttons(UPSCALE_BUTTONS, upscale_hash)
        lengths = [len(b["customId"]) for b in grid["buttons"] + upscale["buttons"]]
        assert sum(n > 60 for n in lengths) >= 3 and max(lengths) <= 100
        assert sim.image_bytes(upscale_id) != sim.image_bytes(task_id)

        failed = sim.add_task("x")
        sim.fail(failed.id)
        assert (await fetch(client, failed.id))["buttons"] == []


async def test_trueai_long_custom_ids_pass_discords_limit():
    async with served("trueai", long_custom_ids=True) as (sim, client):
        grid_id = succeeded(sim)
        upscale_id = succeeded(sim, action="UPSCALE")
        for task_id, table in ((grid_id, GRID_BUTTONS), (upscale_id, UPSCALE_BUTTONS)):
            buttons = (await fetch(client, task_id))["buttons"]
            assert buttons == expected_buttons(table, sim.tasks[task_id].job_hash)
            assert max(len(b["customId"]) for b in buttons) > 100
        custom_id = max((b["customId"] for b in sim.tasks[upscale_id].buttons), key=len)
        assert (await action(client, upscale_id, custom_id)).json()["code"] == 1  # still usable


ACTIONS = [
    ("MJ::JOB::upsample::2::{h}", "IMAGINE", "UPSCALE", 2, "upscale"),
    ("MJ::JOB::variation::3::{h}", "IMAGINE", "VARIATION", 3, "grid"),
    ("MJ::JOB::reroll::0::{h}::SOLO", "VARIATION", "REROLL", None, "grid"),
    ("MJ::JOB::high_variation::1::{h}::SOLO", "UPSCALE", "VARIATION", None, "grid"),
    ("MJ::JOB::low_variation::1::{h}::SOLO", "UPSCALE", "VARIATION", None, "grid"),
    ("MJ::Outpaint::50::1::{h}::SOLO", "UPSCALE", "ZOOM", None, "grid"),
    ("MJ::Outpaint::75::1::{h}::SOLO", "UPSCALE", "ZOOM", None, "grid"),
    ("MJ::JOB::pan_left::1::{h}::SOLO", "UPSCALE", "PAN", None, "grid"),
    ("MJ::JOB::pan_down::1::{h}::SOLO", "UPSCALE", "PAN", None, "grid"),
]


@pytest.mark.parametrize(
    ("custom_id", "parent_action", "expected", "index", "result"),
    ACTIONS,
    ids=[a[0].split("::")[2] + "-" + a[0].split("::")[3] for a in ACTIONS],
)
async def test_trueai_action_makes_the_task_its_button_says(custom_id, parent_action, expected, index, result):
    async with served("trueai") as (sim, client):
        parent_id = succeeded(sim, "a red fox --ar 3:2", parent_action)
        custom_id = custom_id.format(h=sim.tasks[parent_id].job_hash)
        response = await action(client, parent_id, custom_id, state="guild:1")
        assert response.status_code == 200
        assert (response.json()["code"], response.json()["description"]) == (1, "提交成功")
        child = await fetch(client, response.json()["result"])
        assert (child["action"], child["status"], child["parentId"]) == (expected, SUBMITTED, parent_id)
        assert (child["customId"], child["state"], child["prompt"]) == (custom_id, "guild:1", "a red fox --ar 3:2")
        assert sim.tasks[child["id"]].index == index
        sim.succeed(child["id"])
        table = UPSCALE_BUTTONS if result == "upscale" else GRID_BUTTONS
        assert (await fetch(client, child["id"]))["buttons"] == expected_buttons(table, sim.tasks[child["id"]].job_hash)


async def test_trueai_action_refusals():
    async with served("trueai") as (sim, client):
        parent_id = succeeded(sim)
        other_id = succeeded(sim)
        good = sim.tasks[parent_id].buttons[0]["customId"]

        response = await action(client, "1234567890123456", good)
        assert response.status_code == 404  # NotFound with the API body
        assert response.json() == {"code": 3, "description": "关联任务不存在或已失效", "result": None, "properties": {}}
        for task_id, custom_id in (
            (parent_id, "MJ::JOB::upsample::9::nope"),
            (other_id, good),  # another task's button
            (parent_id, ""),
            (sim.add_task().id, good),  # still running: no buttons yet
        ):
            response = await action(client, task_id, custom_id)
            assert (response.status_code, response.json()["code"]) == (200, 4)
        # Program.cs InvalidModelStateResponseFactory: HTTP 200 Result.Fail(System.Text.Json's error).
        bad = await client.post("/submit/action", content=b"not json", headers={"Content-Type": "application/json"})
        assert bad.status_code == 200
        assert (bad.json()["success"], bad.json()["code"]) == (False, -1)
        assert (
            bad.json()["message"]
            == "'n' is an invalid start of a value. Path: $ | LineNumber: 0 | BytePositionInLine: 0."
        )
        listed = await client.post("/submit/action", json=[1])
        assert listed.json()["message"].startswith(
            "The JSON value could not be converted to Midjourney.Base.Dto.SubmitActionDTO. Path: $"
        )


async def test_trueai_custom_zoom_waits_for_the_modal():
    async with served("trueai") as (sim, client):
        upscale_id = succeeded(sim, "a red fox", "UPSCALE")
        custom_zoom = f"MJ::CustomZoom::1::{sim.tasks[upscale_id].job_hash}"
        answer = (await action(client, upscale_id, custom_zoom)).json()
        # Services/TaskService.cs SubmitAction: code 21 (EXISTED), "Waiting for window confirm", remix true.
        assert (answer["code"], answer["description"]) == (21, "Waiting for window confirm")
        assert answer["properties"]["remix"] is True
        assert answer["properties"]["finalPrompt"] == "a red fox"
        task_id = answer["result"]
        waiting = await fetch(client, task_id)
        assert (waiting["status"], waiting["action"], waiting["buttons"]) == (MODAL, "ZOOM", [])
        assert waiting["startTime"] is None and waiting["finishTime"] is None
        assert sim.advance(task_id).status == MODAL  # nothing moves it but the modal
        sim.tick()
        assert sim.tasks[task_id].status == MODAL

        refused = (await client.post("/submit/modal", json={"taskId": upscale_id, "prompt": "x"})).json()
        assert refused["code"] == 4  # not waiting for a modal
        missing = await client.post("/submit/modal", json={"taskId": "1234567890123456", "prompt": "x"})
        assert (missing.status_code, missing.json()["code"]) == (404, 3)

        modal = {"taskId": task_id, "prompt": "a red fox --zoom 1.8"}
        submitted = (await client.post("/submit/modal", json=modal)).json()
        assert (submitted["code"], submitted["result"]) == (1, task_id)
        running = await fetch(client, task_id)
        assert (running["status"], running["prompt"]) == (SUBMITTED, "a red fox --zoom 1.8")
        assert running["properties"]["finalPrompt"] == "a red fox --zoom 1.8"
        sim.succeed(task_id)
        done = await fetch(client, task_id)
        assert done["status"] == SUCCESS
        assert done["buttons"] == expected_buttons(GRID_BUTTONS, sim.tasks[task_id].job_hash)


async def test_trueai_remix_mode_asks_for_a_prompt_except_for_upscales():
    async with served("trueai", remix=True) as (sim, client):
        parent_id = succeeded(sim)
        job_hash = sim.tasks[parent_id].job_hash
        variation = (await action(client, parent_id, f"MJ::JOB::variation::1::{job_hash}")).json()
        assert (variation["code"], variation["properties"]["remix"]) == (21, True)
        assert sim.tasks[variation["result"]].status == MODAL
        upscale = (await action(client, parent_id, f"MJ::JOB::upsample::1::{job_hash}")).json()
        assert upscale["code"] == 1 and sim.tasks[upscale["result"]].status == SUBMITTED


async def test_trueai_has_no_change_routes():
    async with served("trueai") as (sim, client):
        parent_id = succeeded(sim)
        change = await client.post("/submit/change", json={"taskId": parent_id, "action": "UPSCALE", "index": 1})
        assert (change.status_code, change.content) == (404, b"")
        simple = await client.post("/submit/simple-change", json={"content": f"{parent_id} U1"})
        assert (simple.status_code, simple.content) == (404, b"")
        assert (await client.get("/submit/imagine")).status_code == 405
        async with httpx.AsyncClient(base_url=sim.base_url) as anonymous:
            unauthorized = await anonymous.post("/submit/change", json={})
        assert unauthorized.status_code == 401  # the secret is checked before routing
        listed = (await client.get("/task/list")).json()
        assert [t["id"] for t in listed] == [parent_id] and "buttons" in listed[0]


async def test_trueai_accepts_a_banned_prompt_and_fails_it_later():
    async with served("trueai", banned_words=["blood"]) as (sim, client):
        submitted = await imagine(client, "a Blood moon")
        assert submitted["code"] == 1
        task_id = submitted["result"]
        sim.advance(task_id)
        failed = await fetch(client, task_id)
        assert (failed["status"], failed["progress"], failed["buttons"]) == (FAILURE, "", [])
        assert "Blood" in failed["failReason"]


async def test_trueai_speed_prefixes_and_bot_type():
    async with served("trueai") as (sim, client):
        async with httpx.AsyncClient(base_url=sim.speed_url("relax"), headers=GOOD_HEADERS["trueai"]) as relax:
            submitted = await imagine(relax, "a red fox", botType="NIJI_JOURNEY")
        record = sim.last_request("/submit/imagine")
        assert (record.path, record.prefix) == ("/mj-relax/mj/submit/imagine", "/mj-relax/mj")
        assert sim.count("/mj-relax/mj/submit/imagine") == 1
        task_id = submitted["result"]
        assert (sim.tasks[task_id].mode, sim.tasks[task_id].bot_type) == ("RELAX", "NIJI_JOURNEY")
        async with httpx.AsyncClient(base_url=sim.speed_url("TURBO"), headers=GOOD_HEADERS["trueai"]) as turbo:
            fetched = await fetch(turbo, task_id)  # every route, under every prefix
            assert (fetched["mode"], fetched["botType"]) == ("RELAX", "NIJI_JOURNEY")
            sim.succeed(task_id)
            custom_id = sim.tasks[task_id].buttons[0]["customId"]
            turbo_child = (await action(turbo, task_id, custom_id)).json()["result"]
        assert sim.last_request().prefix == "/mj-turbo/mj"
        plain_child = (await action(client, task_id, custom_id)).json()["result"]
        # Services/TaskService.cs GetInstanceByTask: an action runs in the account's first allowed
        # mode (FAST), whatever its path or its parent's mode; requestMode keeps the path's.
        assert (sim.tasks[turbo_child].mode, sim.tasks[plain_child].mode) == ("FAST", "FAST")
        turbo_json = await fetch(client, turbo_child)
        assert (turbo_json["mode"], turbo_json["requestMode"]) == ("FAST", "TURBO")
        assert (await fetch(client, plain_child))["requestMode"] is None
        plain = (await imagine(client))["result"]
        assert (sim.last_request().prefix, sim.tasks[plain].mode) == ("/mj", "FAST")

        # Controllers/SubmitController.cs GetBotType: botType is a string read loosely.
        for bot_type, expected in (("DALL_E", "MID_JOURNEY"), ("niji", "NIJI_JOURNEY"), ("mj", "MID_JOURNEY")):
            loose = await imagine(client, "x", botType=bot_type)
            assert loose["code"] in (1, 22) and sim.tasks[loose["result"]].bot_type == expected
        # Not a string: System.Text.Json cannot bind it (Program.cs: HTTP 200 Result.Fail).
        bad = await client.post("/submit/imagine", content=b'{"prompt": "x", "botType": 5}', headers=JSON)
        assert bad.status_code == 200 and (bad.json()["success"], bad.json()["code"]) == (False, -1)
        assert bad.json()["message"] == (
            "The JSON value could not be converted to System.String. Path: $.botType | LineNumber: 0 | "
            "BytePositionInLine: 28."
        )
        with pytest.raises(ValueError):
            sim.speed_url("ludicrous")

    async with served("novicezk") as (sim, client):  # only trueai has them
        response = await client.post(f"http://127.0.0.1:{sim.port}/mj-relax/mj/submit/imagine", json={"prompt": "x"})
        assert response.status_code == 404 and response.json()["status"] == 404


async def test_trueai_cancel_is_terminal():
    async with served("trueai") as (sim, client):
        task = sim.add_task()
        sim.cancel(task.id, "用户取消")
        cancelled = await fetch(client, task.id)
        assert (cancelled["status"], cancelled["failReason"], cancelled["buttons"]) == (CANCEL, "用户取消", [])
        assert cancelled["finishTime"] is not None and task.is_finished and task.finished_at is not None
        assert sim.advance(task.id).status == CANCEL


async def test_newapi_shows_a_stale_copy_until_its_own_poll():
    async with served("newapi", upstream="novicezk") as (sim, client):
        submitted = await imagine(client, "a red fox", state="guild:1")
        assert submitted["code"] == 1
        task_id = submitted["result"]
        assert sim.tasks[task_id].status == SUBMITTED  # upstream, already started
        first = await fetch(client, task_id)
        assert {k: first[k] for k in ("status", "progress", "imageUrl", "startTime", "buttons", "properties")} == {
            "status": "",
            "progress": "0%",
            "imageUrl": "",
            "startTime": 0,
            "buttons": None,
            "properties": None,
        }
        assert (first["id"], first["action"], first["state"]) == (task_id, "IMAGINE", "guild:1")
        assert first["failReason"] == ""

        assert sim.gateway_poll() == [task_id] and sim.gateway_polls == 1
        polled = await fetch(client, task_id)
        assert (polled["status"], polled["progress"]) == (SUBMITTED, "0%")
        assert polled["properties"] == {"finalPrompt": "a red fox", "finalZhPrompt": ""}

        sim.advance(task_id)  # upstream at 10% with a preview: new-api does not know yet
        assert (await fetch(client, task_id))["progress"] == "0%"
        sim.gateway_poll()
        preview = await fetch(client, task_id)
        assert (preview["status"], preview["progress"]) == (IN_PROGRESS, "10%")
        image_url = f"{sim.base_url}/image/{task_id}"
        assert image_url == sim.client_image_url(task_id)
        assert preview["imageUrl"].startswith(image_url + "?rand=")  # until SUCCESS
        async with httpx.AsyncClient() as anonymous:  # served without a key
            assert (await anonymous.get(image_url)).content == sim.preview_bytes(task_id, 1)

            sim.succeed(task_id)
            assert (await fetch(client, task_id))["status"] == IN_PROGRESS  # stale
            assert (await anonymous.get(image_url)).content == sim.preview_bytes(task_id, 1)
            sim.gateway_poll()
            done = await fetch(client, task_id)
            assert (done["status"], done["progress"], done["imageUrl"]) == (SUCCESS, "100%", image_url)
            assert done["finishTime"] >= done["startTime"] > 0
            assert (await anonymous.get(image_url)).content == sim.image_bytes(task_id)  # same URL, new bytes
            assert (await anonymous.get(f"{sim.base_url}/image/1234567890123456")).status_code == 400
        assert sim.gateway_poll() == []  # at "100%": never read again
        listed = (await client.post("/task/list-by-condition", json={"ids": [task_id, "404"]})).json()
        assert listed == [done]
        listed_all = await client.get("/task/list")  # no such route: the web UI's index.html
        assert listed_all.status_code == 200 and listed_all.headers["content-type"].startswith("text/html")


async def test_newapi_failure_is_100_percent():
    async with served("newapi") as (sim, client):
        task_id = (await imagine(client))["result"]
        sim.fail(task_id, "任务超时")
        sim.gateway_poll()
        failed = await fetch(client, task_id)
        assert (failed["status"], failed["progress"], failed["failReason"]) == (FAILURE, "100%", "任务超时")
        assert sim.tasks[task_id].progress == ""  # the upstream says "" as novicezk does


async def test_newapi_quota_and_its_own_refusals():
    async with served("newapi") as (sim, client):
        parent_id = succeeded(sim)
        sim.gateway_poll()
        sim.quota_exhausted = True
        for path, body in (
            ("/submit/imagine", {"prompt": "x"}),
            ("/submit/change", {"taskId": parent_id, "action": "UPSCALE", "index": 1}),
        ):
            response = await client.post(path, json=body)
            assert response.status_code == 400
            assert response.json() == {"description": "quota_not_enough ", "type": "upstream_error", "code": 4}
            assert '"quota_not_enough "' in response.text  # the trailing space
        sim.quota_exhausted = False
        assert (await client.post("/submit/imagine", json={"prompt": " "})).json() == newapi_error("prompt_is_required")
        assert (await client.post("/submit/imagine", content=b"{")).json() == newapi_error("bind_request_body_failed")
        assert len(sim.tasks) == 1


async def test_newapi_change_needs_an_index_and_its_own_copy_at_success():
    async with served("newapi", upstream="novicezk") as (sim, client):
        parent_id = succeeded(sim)
        change = {"taskId": parent_id, "action": "UPSCALE", "index": 2}
        response = await client.post("/submit/change", json=change)
        assert (response.status_code, response.json()) == (400, newapi_error("task_status_not_success"))
        sim.gateway_poll()  # now new-api's copy says SUCCESS too

        reroll = await client.post("/submit/change", json={"taskId": parent_id, "action": "REROLL"})
        assert (reroll.status_code, reroll.json()) == (400, newapi_error("index_is_required"))
        with_index = {"taskId": parent_id, "action": "REROLL", "index": 1}
        reroll = (await client.post("/submit/change", json=with_index)).json()
        assert reroll["code"] == 1 and sim.tasks[reroll["result"]].action == "REROLL"
        assert (await fetch(client, reroll["result"]))["status"] == ""
        upscale = (await client.post("/submit/change", json=change)).json()
        assert (upscale["code"], sim.tasks[upscale["result"]].index) == (1, 2)
        unknown = await client.post("/submit/change", json={**change, "taskId": "1234567890123456"})
        assert unknown.json() == newapi_error("task_not_found")

        body = {"taskId": parent_id, "customId": "MJ::JOB::upsample::1::x", "prompt": "x", "action": "extend"}
        for path in ("/submit/action", "/submit/modal", "/submit/video"):  # novicezk has no such route
            response = await client.post(path, json=body)
            assert response.status_code == 404 and response.json()["path"] == f"/mj{path}"


async def test_newapi_over_trueai_custom_zoom_keeps_21_then_modal():
    async with served("newapi", upstream="trueai") as (sim, client):
        grid_id = (await imagine(client, "a red fox"))["result"]
        sim.succeed(grid_id)
        sim.gateway_poll()
        grid = await fetch(client, grid_id)
        assert grid["buttons"] == expected_buttons(GRID_BUTTONS, sim.tasks[grid_id].job_hash)
        assert "parentId" not in grid and "seed" not in grid  # new-api's Task has neither

        upscale = (await action(client, grid_id, grid["buttons"][0]["customId"])).json()
        assert upscale["code"] == 1 and sim.tasks[upscale["result"]].action == "UPSCALE"
        sim.succeed(upscale["result"])
        sim.gateway_poll()
        buttons = (await fetch(client, upscale["result"]))["buttons"]
        custom_zoom = next(b["customId"] for b in buttons if b["label"] == "Custom Zoom")

        answer = (await action(client, upscale["result"], custom_zoom)).json()
        # relay/mjproxy_handler.go: 21 is rewritten to 1 except for CUSTOM_ZOOM and INPAINT.
        assert (answer["code"], answer["description"]) == (21, "Waiting for window confirm")
        zoom_id = answer["result"]
        assert sim.tasks[zoom_id].status == MODAL
        assert (await fetch(client, zoom_id))["status"] == ""
        sim.gateway_poll()
        assert (await fetch(client, zoom_id))["status"] == MODAL

        modal = (await client.post("/submit/modal", json={"taskId": zoom_id, "prompt": "a red fox --zoom 2"})).json()
        assert (modal["code"], modal["result"]) == (1, zoom_id)
        assert (await fetch(client, zoom_id))["status"] == MODAL  # stale until the next poll
        sim.gateway_poll()
        assert (await fetch(client, zoom_id))["status"] == SUBMITTED
        sim.succeed(zoom_id)
        sim.gateway_poll()
        done = await fetch(client, zoom_id)
        assert (done["status"], done["action"]) == (SUCCESS, "ZOOM")
        assert done["buttons"] == expected_buttons(GRID_BUTTONS, sim.tasks[zoom_id].job_hash)

        # /submit/change works over trueai too: new-api presses the matching button.
        variation = {"taskId": grid_id, "action": "VARIATION", "index": 3}
        change = (await client.post("/submit/change", json=variation)).json()
        assert change["code"] == 1
        assert sim.tasks[change["result"]].custom_id == f"MJ::JOB::variation::3::{sim.tasks[grid_id].job_hash}"


async def test_newapi_polls_on_its_own_clock():
    async with served("newapi", mode="time", step_s=0.01, gateway_poll_s=0.02) as (sim, client):
        task_id = (await imagine(client))["result"]
        await sim.wait_for(lambda: sim.gateway_tasks[task_id]["status"] == SUCCESS, timeout=3)
        assert (await fetch(client, task_id))["progress"] == "100%"

    async with served("newapi", mode="poll", gateway_poll_s=None) as (sim, client):
        task_id = (await imagine(client))["result"]
        seen = []
        for _ in range(5):
            seen.append((await fetch(client, task_id))["progress"])  # the bot's reads move nothing
            sim.gateway_poll()  # new-api's reads do
        assert seen == ["0%", "0%", "10%", "40%", "80%"]


async def test_newapi_drops_the_notify_hook_unless_allowed(receiver):
    for allowed in (False, True):
        async with served("newapi", gateway_notify=allowed) as (sim, client):
            task_id = (await imagine(client, notifyHook=receiver.url()))["result"]
            assert sim.tasks[task_id].notify_hook == (receiver.url() if allowed else None)
            await sim.wait_deliveries()
    assert [b["status"] for _, _, b in receiver.got] == [SUBMITTED]  # the upstream's own Task


async def test_flavour_options_are_checked():
    with pytest.raises(ValueError):
        ProxySim(flavour="trueai", upstream="novicezk")
    with pytest.raises(ValueError):
        ProxySim(flavour="newapi", upstream="newapi")
    with pytest.raises(ValueError):
        ProxySim(flavour="midjourney")
    assert (ProxySim(flavour="new-api").flavour, ProxySim(flavour="newapi").upstream) == ("newapi", "novicezk")


PNG_URL = "data:image/png;base64,iVBORw0KGgo="


@pytest.mark.parametrize("flavour", ["novicezk", "trueai", "newapi"])
async def test_describe_and_blend(flavour):
    async with ProxySim(flavour=flavour) as sim:
        async with httpx.AsyncClient(base_url=sim.base_url) as client:
            described = (await client.post("/submit/describe", json={"base64": PNG_URL})).json()
            assert described["code"] == 1
            sim.succeed(described["result"])
            if flavour == "newapi":
                sim.gateway_poll()
            task = (await client.get(f"/task/{described['result']}/fetch")).json()
            assert task["action"] == "DESCRIBE" and task["status"] == "SUCCESS"
            prompts = task["properties"]["finalPrompt"].split("\n\n")
            assert [p[:3].strip() for p in prompts] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]
            assert (await client.post("/submit/blend", json={"base64Array": [PNG_URL]})).json()["code"] == 4
            blended = (
                await client.post("/submit/blend", json={"base64Array": [PNG_URL] * 3, "dimensions": "PORTRAIT"})
            ).json()
            assert blended["code"] == 1
            assert sim.tasks[blended["result"]].action == "BLEND"
            assert sim.tasks[blended["result"]].blend_dimensions == "PORTRAIT"


# --------------------------------------------------------------------------
# What the real servers send (docs/mj-proxy-contract.md, last section), each test naming
# the server source file it mirrors.

HOOK = "http://127.0.0.1:9/hook?token=s3cret"  # nothing listens: pushes are lost, harmlessly


def buttons_by_label(task: dict) -> dict[str, str]:
    return {b["label"] or b["emoji"]: b["customId"] for b in task["buttons"]}


async def upscaled(sim: ProxySim, client: httpx.AsyncClient, prompt: str = "a red fox") -> dict:
    """A finished upscale, as the client sees it (for new-api: after its poll)."""
    task_id = succeeded(sim, prompt, "UPSCALE")
    if sim.flavour == "newapi":
        sim.gateway_poll()
    return await fetch(client, task_id)


async def test_trueai_upscale_buttons_follow_CustomComponentModel_cs_by_version():
    """Models/CustomComponentModel.cs CreateUpscaleButtons / CreateVaryButtons / CreateZoomButtons /
    CreatePanButtons and Models/TaskInfo.cs OnUpscaleButtons: the set depends on the version."""
    async with served("trueai") as (sim, client):
        task = await upscaled(sim, client)
        assert task["buttons"] == expected_buttons(UPSCALE_BUTTONS, sim.tasks[task["id"]].job_hash)
        assert [b["emoji"] for b in task["buttons"][:2]] == ["upscale_1", "upscale_1"]  # not Unicode
        expected = {
            "a fox --v 6.1": ("upsample_v6r1_2x_subtle", "Upscale (Subtle)"),
            "a fox --v 6": ("upsample_v6_2x_subtle", "Upscale (Subtle)"),
            "a fox --niji 6": ("upsample_v6_2x_subtle", "Upscale (Subtle)"),
            "a fox --v 5.2": ("upsample_v5_2x", "Upscale (2x)"),
        }
        for prompt, (kind, label) in expected.items():
            first = (await upscaled(sim, client, prompt))["buttons"][0]
            assert first["customId"].startswith(f"MJ::JOB::{kind}::1::") and first["label"] == label
            assert first["emoji"] == "upscale_1"
        v8 = buttons_by_label(await upscaled(sim, client, "a fox --v 8"))
        assert set(v8) == {
            "Vary (Subtle)",
            "Vary (Strong)",
            "Vary (Region)",
            "Animate (High motion)",
            "Animate (Low motion)",
            "🔄",
        }  # v8: no upscale, zoom or pan
    async with served("trueai", video=False) as (sim, client):  # Setting.EnableVideo off
        labels = buttons_by_label(await upscaled(sim, client))
        assert "Animate (High motion)" not in labels and "Upscale (Creative)" in labels


async def test_trueai_upscale_subtle_and_creative_make_upscale_hd_SubmitController_cs():
    """Controllers/SubmitController.cs Action: MJ::JOB::upsample_* is UPSCALE_HD; its result carries
    TaskInfo.OnUpscale2xButtons (Models/TaskInfo.cs)."""
    async with served("trueai") as (sim, client):
        parent = await upscaled(sim, client)
        for label in ("Upscale (Subtle)", "Upscale (Creative)"):
            custom_id = buttons_by_label(parent)[label]
            answer = (await action(client, parent["id"], custom_id)).json()
            assert answer["code"] == 1
            sim.succeed(answer["result"])
            hd = await fetch(client, answer["result"])
            assert (hd["action"], hd["status"], hd["customId"], hd["contentType"]) == (
                "UPSCALE_HD",
                SUCCESS,
                custom_id,
                "image/png",
            )
            assert hd["buttons"] == expected_buttons(UPSCALE_HD_BUTTONS, sim.tasks[hd["id"]].job_hash)
            image = (await client.get(hd["imageUrl"])).content
            assert assert_valid_png(image) and image == sim.image_bytes(hd["id"])
        reroll = (await action(client, parent["id"], buttons_by_label(parent)["🔄"])).json()
        assert sim.tasks[reroll["result"]].action == "IMAGINE"  # rerolling an upscale imagines again


async def test_trueai_vary_region_waits_for_a_mask_TaskService_cs():
    """Services/TaskService.cs SubmitAction: MJ::Inpaint:: answers 21 "Waiting for window confirm" and
    waits (MODAL, prompt cleared); Controllers/SubmitController.cs Modal falls back to the parent's
    prompt; without maskBase64 Discord refuses the job (Services/DiscordService.cs InpaintAsync)."""
    async with served("trueai") as (sim, client):
        parent = await upscaled(sim, client, "a red fox")
        region = buttons_by_label(parent)["Vary (Region)"]
        answers = [(await action(client, parent["id"], region)).json() for _ in range(2)]
        for answer in answers:
            assert (answer["code"], answer["description"]) == (21, "Waiting for window confirm")
            assert answer["properties"]["remix"] is True and answer["properties"]["finalPrompt"] == ""
            waiting = await fetch(client, answer["result"])
            assert (waiting["status"], waiting["action"], waiting["prompt"]) == (MODAL, "VARIATION", "")

        no_mask = (await client.post("/submit/modal", json={"taskId": answers[0]["result"]})).json()
        assert no_mask["code"] == 1
        sim.advance(no_mask["result"])
        failed = await fetch(client, no_mask["result"])
        assert (failed["status"], failed["failReason"], failed["prompt"]) == (FAILURE, "提交失败", "a red fox")

        with_mask = {"taskId": answers[1]["result"], "prompt": "a blue fox", "maskBase64": DATA_URL}
        assert (await client.post("/submit/modal", json=with_mask)).json()["code"] == 1
        sim.succeed(answers[1]["result"])
        done = await fetch(client, answers[1]["result"])
        assert (done["status"], done["prompt"]) == (SUCCESS, "a blue fox")
        assert done["buttons"] == expected_buttons(GRID_BUTTONS, sim.tasks[done["id"]].job_hash)


async def test_trueai_animate_makes_a_video_task_TaskInfo_cs():
    """Controllers/SubmitController.cs Action (MJ::JOB::animate_* -> VIDEO, video_virtual_upscale ->
    UPSCALE) and Models/TaskInfo.cs (imageUrl is the .mp4; videoUrl, videoUrls, contentType;
    SetVideoUpscaleButtons, SetVideoExtendButtons)."""
    async with served("trueai") as (sim, client):
        parent = await upscaled(sim, client, "a red fox --bs 2")
        answer = (await action(client, parent["id"], buttons_by_label(parent)["Animate (High motion)"])).json()
        assert answer["code"] == 1
        video_id = answer["result"]
        running = await fetch(client, video_id)
        assert (running["action"], running["status"], running["videoUrl"], running["contentType"]) == (
            "VIDEO",
            SUBMITTED,
            None,
            None,
        )
        sim.succeed(video_id)
        video = await fetch(client, video_id)
        assert video["imageUrl"] == sim.video_url(video_id) and video["imageUrl"].endswith(".mp4")
        assert (video["videoUrl"], video["contentType"]) == (video["imageUrl"], "video/mp4")
        assert video["videoUrls"] == [
            {"url": sim.video_url(video_id, i), "thumbnail": sim.thumbnail_url(video_id, i)} for i in range(2)
        ]  # --bs 2
        job_hash = sim.tasks[video_id].job_hash
        assert video["buttons"] == expected_buttons(VIDEO_BUTTONS[:2] + VIDEO_BUTTONS[4:], job_hash)
        assert all(b["emoji"] == "" for b in video["buttons"][:2])
        async with httpx.AsyncClient() as anonymous:  # served like a CDN link
            mp4 = await anonymous.get(video["imageUrl"])
            assert mp4.headers["content-type"] == "video/mp4" and mp4.content[4:8] == b"ftyp"
            assert 200 <= len(mp4.content) <= 1000 and mp4.content == sim.video_bytes(video_id)
            second = await anonymous.get(video["videoUrls"][1]["url"])
            assert second.content[4:8] == b"ftyp" and second.content != mp4.content
            assert_valid_png((await anonymous.get(video["videoUrls"][1]["thumbnail"])).content)
            assert (await anonymous.get(sim.video_url(parent["id"]))).status_code == 404  # no video there

        one = (await action(client, video_id, f"MJ::JOB::video_virtual_upscale::2::{job_hash}")).json()
        assert (sim.tasks[one["result"]].action, sim.tasks[one["result"]].index) == ("UPSCALE", 2)
        sim.succeed(one["result"])
        upscaled_video = await fetch(client, one["result"])
        assert upscaled_video["imageUrl"].endswith(".mp4") and upscaled_video["contentType"] == "video/mp4"
        assert upscaled_video["buttons"] == expected_buttons(VIDEO_EXTEND_BUTTONS, sim.tasks[one["result"]].job_hash)
        extend = (await action(client, one["result"], upscaled_video["buttons"][1]["customId"])).json()
        assert sim.tasks[extend["result"]].action == "VIDEO"
        reroll = (await action(client, video_id, video["buttons"][-1]["customId"])).json()
        assert sim.tasks[reroll["result"]].action == "VIDEO"  # a video rerolls into a video


async def test_trueai_submit_video_SubmitVideoDTO_cs():
    """Controllers/SubmitController.cs Video, Dto/SubmitVideoDTO.cs, Services/TaskService.cs SubmitVideo:
    the image is stored and put before the prompt, then --video 1, --end, --motion, --bs."""
    async with served("trueai", max_running=100) as (sim, client):
        body = {"prompt": "a fox runs", "image": DATA_URL, "motion": "high", "batchSize": 2, "state": "g:1"}
        submitted = (await client.post("/submit/video", json=body)).json()
        assert (submitted["code"], submitted["description"]) == (1, "提交成功")
        task_id = submitted["result"]
        [(stored, data, content_type)] = sim.uploads
        assert (data, content_type) == (base64.b64decode(DATA_URL.split(",")[1]), "image/png")
        composed = f"{stored} a fox runs --video 1 --motion high --bs 2"
        sim.succeed(task_id)
        video = await fetch(client, task_id)
        assert (video["action"], video["prompt"], video["promptEn"]) == ("VIDEO", composed, composed)
        assert (video["description"], video["state"]) == (f"/video {composed}", "g:1")
        assert len(video["videoUrls"]) == 2 and [b["label"] for b in video["buttons"]] == ["U1", "U2", ""]
        async with httpx.AsyncClient() as anonymous:  # the storage serves it
            assert (await anonymous.get(stored)).content == data

        async def composed_prompt(**fields) -> str:
            answer = (await client.post("/submit/video", json={"prompt": "p", **fields})).json()
            assert answer["code"] == 1, answer
            return sim.tasks[answer["result"]].prompt

        link = "https://example.com/a.png"
        assert await composed_prompt() == "p --video 1 --motion low"  # no image needed; 4 videos
        assert (
            await composed_prompt(image=link, loop=True, endImage=link) == f"{link} p --video 1 --end loop --motion low"
        )
        assert await composed_prompt(endImage=link, motion=None) == f"p --video 1 --end {link}"
        assert await composed_prompt(batchSize="1") == "p --video 1 --motion low --bs 1"  # numbers from strings
        assert await composed_prompt(batchSize=3, motion="HIGH") == "p --video 1 --motion HIGH"  # not checked
        bare = (await client.post("/submit/video", json={"prompt": "p", "Image": DATA_URL.split(",")[1]})).json()
        assert sim.tasks[bare["result"]].prompt.startswith(sim.uploads[-1][0])  # any case; bare base64 is a PNG
        assert len(sim.uploads) == 2

        extend = {"prompt": "keeps running", "action": "extend", "taskId": task_id, "index": 0}
        extended = (await client.post("/submit/video", json=extend)).json()
        child = sim.tasks[extended["result"]]
        assert (extended["code"], child.parent_id, child.action, child.index) == (1, task_id, "VIDEO", 1)
        assert (child.description, child.prompt) == ("/video extend", "keeps running --video 1 --motion low")
        running = sim.add_task("busy").id
        refusals = [
            ({"image": DATA_URL}, 200, 4, "Prompt 不能为空"),  # an image does not make the prompt optional
            ({"prompt": "  "}, 200, 4, "Prompt 不能为空"),
            ({"prompt": "x", "image": "not an image!"}, 200, 4, "base64格式错误"),
            ({"prompt": "x", "endImage": "data:image/png;base64,%%%"}, 200, 4, "base64格式错误"),
            ({"prompt": "x", "taskId": task_id}, 200, 4, "任务类型错误"),
            ({"prompt": "x", "taskId": task_id, "action": "Extend"}, 200, 4, "任务类型错误"),  # case-sensitive
            ({"prompt": "x", "taskId": "1234567890123456", "action": "extend"}, 404, 3, "关联任务不存在或已失效"),
            ({"prompt": "x", "taskId": running, "action": "extend"}, 200, 4, "关联任务状态错误"),
            ({"prompt": "x", "action": "EXTEND"}, 200, 3, "目标任务不存在"),  # SubmitVideo: no target, any case
        ]
        for refused, status, code, description in refusals:
            response = await client.post("/submit/video", json=refused)
            assert (response.status_code, response.json()["code"], response.json()["description"]) == (
                status,
                code,
                description,
            ), refused
        # NewTask's LogicException is not caught in Video; a field of the wrong type is a binding error.
        for refused, message in (
            ({"prompt": "x", "state": "s" * 256}, "State参数过长，最大255字符"),
            ({"prompt": "x", "notifyHook": "h" * 2001}, "NotifyHook参数过长，最大2000字符"),
            (
                {"prompt": "x", "loop": "yes"},
                "The JSON value could not be converted to System.Boolean. Path: $.loop | LineNumber: 0 | "
                "BytePositionInLine: 29.",
            ),
            (
                {"prompt": "x", "index": 1.5},
                "The JSON value could not be converted to System.Nullable`1[System.Int32]. Path: $.index | "
                "LineNumber: 0 | BytePositionInLine: 28.",
            ),
        ):
            answer = await client.post("/submit/video", content=json.dumps(refused).encode(), headers=JSON)
            assert answer.status_code == 200
            assert {k: answer.json()[k] for k in ("success", "code", "message")} == {
                "success": False,
                "code": -1,
                "message": message,
            }
        video_imagine = await imagine(client, "a fox --video 1 --bs 1")  # TaskService.cs SubmitImagine
        assert (sim.tasks[video_imagine["result"]].action, sim.tasks[video_imagine["result"]].batch_size) == (
            "VIDEO",
            1,
        )
    async with served("trueai", video=False) as (sim, client):  # Setting.EnableVideo off: the first check
        for refused in ({"prompt": "x", "image": DATA_URL}, {}):
            off = (await client.post("/submit/video", json=refused)).json()
            assert (off["code"], off["description"]) == (4, "视频功能未启用")
        assert "Animate (High motion)" not in buttons_by_label(await upscaled(sim, client))
        assert ((await imagine(client, "a fox --video 1"))["code"], sim.uploads) == (9, [])
    for options in ({"flavour": "novicezk"}, {"flavour": "newapi", "upstream": "novicezk"}):
        async with served(**options) as (sim, client):  # no such route: Spring's 404
            response = await client.post("/submit/video", json={"prompt": "x"})
            assert response.status_code == 404
            assert {k: response.json()[k] for k in ("status", "error", "path")} == {
                "status": 404,
                "error": "Not Found",
                "path": "/mj/submit/video",
            }
            assert sim.tasks == {}


async def test_trueai_logic_exception_body_CustomLogicExceptionFilterAttribute_cs():
    """Filters/CustomLogicExceptionFilterAttribute.cs + Models/Result.cs: a LogicException on
    /submit/action, /modal, /describe, /blend is HTTP 200 {success, code -1, message, timestamp}."""
    async with served("trueai") as (sim, client):
        parent_id = succeeded(sim)
        custom_id = sim.tasks[parent_id].buttons[0]["customId"]
        sim.fail_next("/submit/action", kind="logic", description="并发数已达上限")
        response = await action(client, parent_id, custom_id)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"success", "code", "message", "timestamp"}  # no data, no description
        assert (body["success"], body["code"], body["message"]) == (False, -1, "并发数已达上限")
        assert isinstance(body["timestamp"], str) and int(body["timestamp"]) > 638_000_000_000_000_000  # .NET ticks
        assert len(sim.tasks) == 1  # nothing was made
        for path, payload in (
            ("/submit/modal", {"taskId": parent_id}),
            ("/submit/describe", {"base64": DATA_URL}),
            ("/submit/blend", {"base64Array": [DATA_URL] * 2}),
        ):
            sim.fail_next(path, kind="logic", description="账号已被临时封锁，请勿使用违规词作图")
            refused = (await client.post(path, json=payload)).json()
            assert refused["message"] == "账号已被临时封锁，请勿使用违规词作图" and refused["code"] == -1
        sim.fail_next("/submit/describe", kind="logic")
        assert (await client.post("/submit/describe", json={"base64": DATA_URL})).json()["message"] == "并发数已达上限"
    async with served("newapi", upstream="trueai") as (sim, client):  # relayed as it came
        sim.fail_next("/submit/describe", kind="logic", description="队列数已达上限")
        response = await client.post("/submit/describe", json={"base64": DATA_URL})
        assert response.status_code == 200 and response.json()["message"] == "队列数已达上限"
    for options in ({"flavour": "novicezk"}, {"flavour": "newapi"}):
        with pytest.raises(ValueError):
            ProxySim(**options).fail_next("/submit/action", kind="logic")


async def test_trueai_user_limits_refuse_with_a_logic_exception_SubmitController_cs():
    """Controllers/SubmitController.cs NewTask: the user's CoreSize counts IN_PROGRESS tasks, QueueSize
    NOT_START + SUBMITTED; Imagine catches the LogicException (code 4), the others do not."""
    async with served("trueai", user_core_size=1) as (sim, client):
        parent_id = succeeded(sim)
        running = sim.add_task("busy")
        assert (await client.post("/submit/describe", json={"base64": DATA_URL})).json()["code"] == 1  # SUBMITTED
        sim.advance(running.id)  # IN_PROGRESS: the one slot is taken
        refused = (await client.post("/submit/describe", json={"base64": DATA_URL})).json()
        assert (refused["success"], refused["code"], refused["message"]) == (False, -1, "并发数已达上限")
        assert (await action(client, parent_id, sim.tasks[parent_id].buttons[0]["customId"])).json()["code"] == -1
        imagine_refused = await imagine(client)
        assert (imagine_refused["code"], imagine_refused["description"]) == (4, "并发数已达上限")
        sim.succeed(running.id)
        assert (await imagine(client))["code"] == 1
    async with served("trueai", user_queue_size=1) as (sim, client):
        sim.add_task("waiting")  # SUBMITTED
        refused = (await client.post("/submit/blend", json={"base64Array": [DATA_URL] * 2})).json()
        assert refused["message"] == "队列数已达上限"


@pytest.mark.parametrize("flavour", ["novicezk", "trueai"])
async def test_notify_hook_is_echoed_in_properties_SubmitController(flavour):
    """novicezk controller/SubmitController.java newTask and trueai Controllers/SubmitController.cs
    NewTask store the request's notifyHook (else the global one) in properties.notifyHook; every
    read shows it: fetch, list-by-condition, list."""
    async with served(flavour, notify_hook="http://127.0.0.1:9/global") as (sim, client):
        own = (await imagine(client, notifyHook=HOOK))["result"]
        default = (await imagine(client))["result"]
        expected = {own: HOOK, default: "http://127.0.0.1:9/global"}
        for task_id, hook in expected.items():
            assert (await fetch(client, task_id))["properties"]["notifyHook"] == hook
        listed = (await client.post("/task/list-by-condition", json={"ids": list(expected)})).json()
        assert {t["id"]: t["properties"]["notifyHook"] for t in listed} == expected
        all_tasks = (await client.get("/task/list")).json()
        assert {t["id"]: t["properties"]["notifyHook"] for t in all_tasks} == expected
        await sim.wait_deliveries()


@pytest.mark.parametrize("upstream", ["novicezk", "trueai"])
async def test_newapi_unknown_routes_answer_index_html_web_router_go(upstream):
    """router/web-router.go: gin's NoRoute answers the web UI's index.html with 200, no key needed."""
    async with served("newapi", upstream=upstream) as (sim, client):
        async with httpx.AsyncClient(base_url=sim.base_url) as anonymous:
            for method, path in (
                ("GET", "/task/list"),
                ("GET", "/task/queue"),
                ("POST", "/submit/simple-x"),
                ("GET", "/submit/imagine"),
                ("GET", "/nothing/here"),
            ):
                for each in (client, anonymous):
                    response = await each.request(method, path)
                    assert response.status_code == 200, (method, path)
                    assert response.headers["content-type"] == "text/html; charset=utf-8"
                    assert '<div id="root"></div>' in response.text and response.text.startswith("<!doctype html>")
        assert (await client.get(f"http://127.0.0.1:{sim.port}/v1/models/x")).status_code == 404


async def test_newapi_rewrites_22_and_21_to_1_but_keeps_the_queue_relay_mjproxy_handler_go():
    """relay/mjproxy_handler.go (formerly relay/relay-mj.go): "code":22 -> 1 and "code":21 -> 1 except
    for CUSTOM_ZOOM and INPAINT; description and properties.numberOfQueues are relayed unchanged."""
    async with served("newapi", upstream="trueai", max_running=1, remix=True) as (sim, client):
        first = await imagine(client, "p1")
        queued = await imagine(client, "p2")
        assert (first["code"], queued["code"]) == (1, 1)
        assert (queued["description"], queued["properties"]["numberOfQueues"]) == ("排队中，前面还有0个任务", 0)
        assert sim.tasks[queued["result"]].status == NOT_START
        sim.succeed(first["result"])
        sim.start_queued()
        upscale = await upscaled(sim, client, "a fox")
        upscale_id, buttons = upscale["id"], buttons_by_label(upscale)
        remixed = (await action(client, upscale_id, buttons["Vary (Strong)"])).json()
        assert (remixed["code"], remixed["description"]) == (1, "Waiting for window confirm")  # 21 -> 1
        region = (await action(client, upscale_id, buttons["Vary (Region)"])).json()
        assert (region["code"], sim.tasks[region["result"]].status) == (21, MODAL)  # INPAINT keeps 21


async def test_newapi_preview_url_changes_on_every_read_relay_mjproxy_handler_go():
    """relay/mjproxy_handler.go coverMidjourneyTaskDto: imageUrl is /mj/image/{id}?rand=<UnixNano>
    on every read while status is not SUCCESS; the image is still served there."""
    async with served("newapi") as (sim, client):
        task_id = (await imagine(client))["result"]
        sim.advance(task_id)
        sim.gateway_poll()
        urls = [(await fetch(client, task_id))["imageUrl"] for _ in range(3)]
        urls += [t["imageUrl"] for t in (await client.post("/task/list-by-condition", json={"ids": [task_id]})).json()]
        assert len(set(urls)) == 4
        base = f"{sim.base_url}/image/{task_id}?rand="
        assert all(url.startswith(base) and url[len(base) :].isdigit() for url in urls)
        async with httpx.AsyncClient() as anonymous:
            assert (await anonymous.get(urls[-1])).content == sim.preview_bytes(task_id, 1)
        sim.succeed(task_id)
        sim.gateway_poll()
        assert {(await fetch(client, task_id))["imageUrl"] for _ in range(2)} == {sim.client_image_url(task_id)}


async def test_newapi_refuses_customids_it_cannot_convert_service_midjourney_go():
    """service/midjourney.go CoverPlusActionToNormalAction, called by middleware/distributor.go before
    relaying: animate, video_virtual_upscale, PicReader, BOOKMARK are a 400 "无效的请求，unknown_action:..."
    (i18n/locales/zh-CN.yaml distributor.invalid_request) in middleware/utils.go's error object."""
    async with served("newapi", upstream="trueai") as (sim, client):
        parent = await upscaled(sim, client)
        job_hash = sim.tasks[parent["id"]].job_hash
        for custom_id in (
            f"MJ::JOB::animate_high::1::{job_hash}::SOLO",
            f"MJ::JOB::animate_low_extend::1::{job_hash}",
            f"MJ::JOB::video_virtual_upscale::1::{job_hash}",
            "MJ::Job::PicReader::1",
            f"MJ::BOOKMARK::{job_hash}",
        ):
            response = await action(client, parent["id"], custom_id)
            assert response.status_code == 400
            error = response.json()["error"]
            assert (error["type"], error["code"]) == ("new_api_error", "")
            assert error["message"].startswith(f"无效的请求，unknown_action:{custom_id} (request id: ")
        missing = (await client.post("/submit/action", json={"taskId": parent["id"]})).json()
        assert missing["error"]["message"].startswith("无效的请求，custom_id_is_required")
        subtle = (await action(client, parent["id"], buttons_by_label(parent)["Upscale (Subtle)"])).json()
        assert subtle["code"] == 1 and sim.tasks[subtle["result"]].action == "UPSCALE_HD"  # billed mj_upscale


async def test_newapi_denied_models_answer_403_distributor_go():
    """middleware/distributor.go: a key whose model limits lack the model (mj_ + lower(action),
    service/midjourney.go CovertMjpActionToModelName) gets 403 "该令牌无权访问模型 <model>"."""
    async with served("newapi", upstream="trueai", denied_models={"mj_blend", "mj_upscale", "mj_video"}) as (
        sim,
        client,
    ):
        blend = await client.post("/submit/blend", json={"base64Array": [DATA_URL] * 2})
        assert blend.status_code == 403
        error = blend.json()["error"]
        assert error["message"].startswith("该令牌无权访问模型 mj_blend (request id: ")
        assert (error["type"], error["code"]) == ("new_api_error", "")
        grid_id = (await imagine(client))["result"]  # mj_imagine is allowed
        sim.succeed(grid_id)
        sim.gateway_poll()
        upscale = await action(client, grid_id, sim.tasks[grid_id].buttons[0]["customId"])
        assert upscale.json()["error"]["message"].startswith("该令牌无权访问模型 mj_upscale ")
        change = await client.post("/submit/change", json={"taskId": grid_id, "action": "UPSCALE", "index": 1})
        assert change.status_code == 403
        assert (await client.post("/submit/video", json={"prompt": "x"})).status_code == 403
        variation = await action(client, grid_id, sim.tasks[grid_id].buttons[5]["customId"])
        assert variation.json()["code"] == 1  # mj_variation is allowed
    with pytest.raises(ValueError):
        ProxySim(flavour="trueai", denied_models={"mj_blend"})


async def test_newapi_relays_submit_video_to_trueai_relay_router_go():
    """router/relay-router.go relays /mj/submit/video; relay/mjproxy_handler.go copies videoUrl /
    videoUrls (dto/midjourney.go ImgUrls: url only) and serves the .mp4 at /mj/image/{id}."""
    async with served("newapi", upstream="trueai") as (sim, client):
        submitted = (await client.post("/submit/video", json={"prompt": "a fox", "image": DATA_URL})).json()
        assert submitted["code"] == 1
        task_id = submitted["result"]
        assert sim.tasks[task_id].action == "VIDEO"
        sim.succeed(task_id)
        sim.gateway_poll()
        video = await fetch(client, task_id)
        assert (video["action"], video["status"], video["imageUrl"]) == (
            "VIDEO",
            SUCCESS,
            sim.client_image_url(task_id),
        )
        assert video["videoUrl"] == sim.video_url(task_id)
        assert video["videoUrls"] == [{"url": sim.video_url(task_id, i)} for i in range(4)]
        assert "imageUrls" not in video and "contentType" not in video  # dto/midjourney.go MidjourneyDto
        async with httpx.AsyncClient() as anonymous:
            relayed = await anonymous.get(video["imageUrl"])
        assert relayed.headers["content-type"] == "video/mp4" and relayed.content == sim.video_bytes(task_id)
        extend = {"prompt": "x", "action": "extend", "taskId": "1234567890123456", "index": 0}
        assert (await client.post("/submit/video", json=extend)).json() == newapi_error("task_not_found")
        # new-api re-encodes the body (a Go map: keys sorted) and relays trueai's binding error as it came.
        bad = await client.post("/submit/video", json={"prompt": "x", "loop": "yes"})
        assert bad.status_code == 200 and bad.json()["message"] == (
            "The JSON value could not be converted to System.Boolean. Path: $.loop | LineNumber: 0 | "
            "BytePositionInLine: 13."
        )


# --------------------------------------------------------------------------
# trueai's imageUrls, uploads, photo-sized finals and cut downloads


def pixels(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_trueai_grid_image_urls_TaskInfo_cs():
    """Models/TaskInfo.cs Success (Setting.EnableFillOfficialCdn, or an official/YouChuan account): an
    IMAGINE or any task with U1-U4 lists its images alone in imageUrls, [{url, thumbnail}], as many as
    GetVideoBatchSize says; an upscale has none, and neither has a task before SUCCESS."""
    async with served("trueai", max_running=100, image_urls=True) as (sim, client):
        grid_id = (await imagine(client))["result"]
        sim.advance(grid_id)
        assert (await fetch(client, grid_id))["imageUrls"] is None
        sim.succeed(grid_id)
        grid = await fetch(client, grid_id)
        assert grid["imageUrls"] == [
            {"url": sim.grid_image_url(grid_id, i), "thumbnail": sim.grid_thumbnail_url(grid_id, i)} for i in range(4)
        ]
        async with httpx.AsyncClient() as anonymous:  # CDN stand-ins: no secret
            whole = pixels((await anonymous.get(grid["imageUrl"])).content)
            singles = []
            for i, link in enumerate(grid["imageUrls"]):
                response = await anonymous.get(link["url"])
                assert response.headers["content-type"] == "image/png"
                assert response.content == sim.grid_image_bytes(grid_id, i)
                single = pixels(response.content)
                assert single.size == (32, 32) and assert_valid_png(response.content) == (32, 32)
                quadrant = ((i % 2) * 32 + 16, (i // 2) * 32 + 16)  # the grid's quadrant i, same colour
                assert single.getpixel((5, 5)) == whole.getpixel(quadrant)
                singles.append(response.content)
                thumbnail = await anonymous.get(link["thumbnail"])
                assert thumbnail.headers["content-type"] == "image/webp"
                assert pixels(thumbnail.content).format == "WEBP"
            assert len(set(singles)) == 4
            assert (await anonymous.get(f"{sim.base_url}/image/{grid_id}-grid-4.png")).status_code == 404

        buttons = sim.tasks[grid_id].buttons
        made = {}
        for custom_id in (buttons[0]["customId"], buttons[4]["customId"], buttons[5]["customId"]):  # U1, 🔄, V1
            made[custom_id] = (await action(client, grid_id, custom_id)).json()["result"]
        for child_id in made.values():
            sim.succeed(child_id)
            child = await fetch(client, child_id)
            expected = None if child["action"] == "UPSCALE" else 4  # REROLL and VARIATION are grids
            assert (len(child["imageUrls"]) if child["imageUrls"] else None) == expected, child["action"]
        pan = await action(
            client,
            made[buttons[0]["customId"]],
            buttons_by_label(await fetch(client, made[buttons[0]["customId"]]))["⬅️"],
        )
        sim.succeed(pan.json()["result"])
        assert len((await fetch(client, pan.json()["result"]))["imageUrls"]) == 4  # PAN makes a grid too
        blend = (await client.post("/submit/blend", json={"base64Array": [DATA_URL] * 2})).json()["result"]
        sim.succeed(blend)
        assert len((await fetch(client, blend))["imageUrls"]) == 4
        two = (await imagine(client, "a fox --bs 2"))["result"]
        sim.succeed(two)
        assert [link["url"] for link in (await fetch(client, two))["imageUrls"]] == [
            sim.grid_image_url(two, i) for i in range(2)
        ]
        with pytest.raises(ValueError):
            sim.grid_image_url(grid_id, 4)
        with pytest.raises(KeyError):
            sim.grid_image_bytes(made[buttons[0]["customId"]], 0)  # an upscale is no grid
    async with served("trueai") as (sim, client):  # a Discord account, default settings
        task_id = (await imagine(client))["result"]
        sim.succeed(task_id)
        assert (await fetch(client, task_id))["imageUrls"] is None
    async with served("newapi", upstream="trueai", image_urls=True) as (
        sim,
        client,
    ):  # dto/midjourney.go MidjourneyDto: no imageUrls
        task_id = (await imagine(client))["result"]
        sim.succeed(task_id)
        sim.gateway_poll()
        fetched = await fetch(client, task_id)
        assert fetched["status"] == SUCCESS and "imageUrls" not in fetched and "contentType" not in fetched
        assert len(sim._upstream.task_json(sim.tasks[task_id])["imageUrls"]) == 4  # the upstream had them
    async with served("novicezk") as (sim, client):
        task_id = (await imagine(client))["result"]
        sim.succeed(task_id)
        assert "imageUrls" not in await fetch(client, task_id)


PNG_BYTES = base64.b64decode(DATA_URL.split(",")[1])


async def test_trueai_upload_discord_images_SubmitController_cs():
    """Controllers/SubmitController.cs ImagineDiscordImages + Services/DiscordService.cs UploadAsync: each
    image of base64Array is stored and its URL listed in result; no task; blank entries are skipped."""
    async with served("trueai", user_core_size=1) as (sim, client):
        sim.add_task("busy")
        sim.advance(next(iter(sim.tasks)))  # the one slot taken: no NewTask here, so no limit applies
        jpeg = "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8\xff fake jpeg").decode()
        images = [DATA_URL, jpeg, "", base64.b64encode(PNG_BYTES).decode()]  # a blank one, a bare one
        response = await client.post("/submit/upload-discord-images", json={"base64Array": images})
        assert response.status_code == 200
        answer = response.json()
        assert (answer["code"], answer["description"], answer["properties"]) == (1, "提交成功", {})
        urls = answer["result"]
        assert isinstance(urls, list) and len(urls) == 3 and len(sim.tasks) == 1
        assert [url.rsplit(".", 1)[1] for url in urls] == ["png", "jpg", "png"]
        assert all(url.startswith(f"{sim.base_url}/image/attachments/") for url in urls)
        assert sim.uploads == [
            (urls[0], PNG_BYTES, "image/png"),
            (urls[1], b"\xff\xd8\xff fake jpeg", "image/jpeg"),
            (urls[2], PNG_BYTES, "image/png"),
        ]
        async with httpx.AsyncClient() as anonymous:
            for url, data, content_type in sim.uploads:
                served_back = await anonymous.get(url)
                assert (served_back.content, served_back.headers["content-type"]) == (data, content_type)
            assert (await anonymous.get(f"{sim.base_url}/image/attachments/20260101/none.png")).status_code == 404

        async def upload(body) -> httpx.Response:
            return await client.post("/submit/upload-discord-images", json=body)

        for body, code, description in (
            ({}, 4, "base64 参数错误"),
            ({"base64Array": []}, 4, "base64 参数错误"),
            ({"base64Array": [DATA_URL, "not base64!"]}, 4, "base64格式错误"),
        ):
            refused = (await upload(body)).json()
            assert (refused["code"], refused["description"], refused["result"]) == (code, description, None)
        assert (await upload({"base64Array": ["", " "]})).json()["result"] == []  # all blank: nothing to store
        # A link has no bytes to store: Message.Of(code, description), two fields only.
        assert (await upload({"base64Array": ["https://example.com/a.png"]})).json() == {
            "code": 9,
            "description": "上传图片到云存储异常",
        }
        wrong_type = (await upload({"base64Array": "abc"})).json()
        assert (wrong_type["success"], wrong_type["code"]) == (False, -1)
        assert wrong_type["message"].startswith(
            "The JSON value could not be converted to System.Collections.Generic.List`1[System.String]. "
            "Path: $.base64Array | LineNumber: 0"
        )
        assert (
            (await upload({"base64Array": [1]}))
            .json()["message"]
            .startswith("The JSON value could not be converted to System.String. Path: $.base64Array[0]")
        )
        assert len(sim.uploads) == 3 and len(sim.tasks) == 1
        # No limit on how many; Kestrel's MaxRequestBodySize (30,000,000 bytes) bounds the body: 413, empty.
        big = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + bytes(23_000_000)).decode()
        too_big = await upload({"base64Array": [big]})
        assert (too_big.status_code, too_big.content) == (413, b"")
        assert sim.last_request().path == "/mj/submit/upload-discord-images"
        many = (await upload({"base64Array": [DATA_URL] * 20})).json()
        assert len(many["result"]) == 20 and len(sim.uploads) == 23

    async with served("newapi", upstream="trueai") as (sim, client):  # relayed; its answer unchanged
        answer = (await client.post("/submit/upload-discord-images", json={"base64Array": [DATA_URL]})).json()
        assert (answer["code"], answer["result"]) == (1, [sim.uploads[0][0]])
        assert sim.gateway_tasks == {}
        sim.quota_exhausted = True
        refused = await client.post("/submit/upload-discord-images", json={"base64Array": [DATA_URL]})
        assert (refused.status_code, refused.json()) == (400, newapi_error("quota_not_enough"))
    async with served("newapi", upstream="trueai", denied_models={"mj_upload"}) as (sim, client):
        refused = await client.post("/submit/upload-discord-images", json={"base64Array": [DATA_URL]})
        assert refused.status_code == 403 and "mj_upload" in refused.json()["error"]["message"]
    for options in ({"flavour": "novicezk"}, {"flavour": "newapi", "upstream": "novicezk"}):
        async with served(**options) as (sim, client):  # novicezk has no such route: Spring's 404
            response = await client.post("/submit/upload-discord-images", json={"base64Array": [DATA_URL]})
            assert (response.status_code, response.json()["status"], response.json()["path"]) == (
                404,
                404,
                "/mj/submit/upload-discord-images",
            )
            assert sim.uploads == []


async def test_trueai_imagine_stores_its_images_before_the_prompt_TaskService_cs():
    """Services/TaskService.cs SubmitImagine: every image of base64Array (no limit on their number) is
    stored and its URL goes before the prompt, space-separated; trueai has no ``base64`` field."""
    async with served("trueai") as (sim, client):
        answer = await imagine(client, "a fox", base64Array=[DATA_URL, DATA_URL, DATA_URL], base64=DATA_URL)
        urls = [url for url, _, _ in sim.uploads]
        assert len(urls) == 3
        task = sim.tasks[answer["result"]]
        assert task.prompt == task.prompt_en == " ".join(urls) + " a fox"
        assert task.description == "/imagine " + task.prompt
        link = await imagine(client, "a fox", base64Array=["https://example.com/a.png"])
        assert (link["code"], link["description"]) == (9, "上传图片到云存储异常")
        bad = await imagine(client, "a fox", base64Array=["%%%"])
        assert (bad["code"], bad["description"]) == (4, "base64格式错误")
    async with served("novicezk") as (sim, client):  # novicezk keeps the prompt as it came
        answer = await imagine(client, "a fox", base64Array=[DATA_URL])
        assert sim.tasks[answer["result"]].prompt == "a fox" and sim.uploads == []


async def test_final_image_pixels_makes_a_photo_sized_upscale():
    async with ProxySim(final_image_pixels=(4096, 2048)) as sim:
        grid = sim.add_task()
        upscale = sim.add_task(action="UPSCALE", parent_id=grid.id, index=1)
        sim.succeed(upscale.id)
        started = time.perf_counter()
        data = sim.image_bytes(upscale.id)
        assert time.perf_counter() - started < 2.0
        assert 25_000_000 <= len(data) <= 35_000_000
        assert sim.image_bytes(upscale.id) is data  # made once per task
        photo = pixels(data)
        assert (photo.format, photo.mode, photo.size) == ("PNG", "RGB", (4096, 2048))
        crop = photo.crop((1000, 1000, 1064, 1064))
        assert len(crop.getcolors(maxcolors=64 * 64)) > 1000  # real pixels, not a flat colour
        low, high = photo.getextrema()[0]
        assert high - low > 100  # gradients across the picture
        jpeg = io.BytesIO()
        photo.save(jpeg, "JPEG", quality=90)
        assert 300_000 < len(jpeg.getvalue()) < 6_000_000  # re-encodes to a few MB
        assert assert_valid_png(sim.image_bytes(grid.id)) == (64, 64)  # grids stay small
        async with httpx.AsyncClient() as anonymous:
            response = await anonymous.get(sim.final_url(upscale.id))
            assert response.content == data and response.headers["content-length"] == str(len(data))
    async with ProxySim(final_image_pixels=(300, 200), final_image_size=500_000) as sim:  # both apply
        task = sim.add_task(action="UPSCALE", parent_id="1", index=1)
        data = sim.image_bytes(task.id)
        assert len(data) == 500_000 and pixels(data).size == (300, 200)
        assert assert_valid_png(data) == (300, 200)
    for bad in ((0, 10), (10,), (1, 2, 3)):
        with pytest.raises(ValueError):
            ProxySim(final_image_pixels=bad)


async def raw_get(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET on a bare socket, reading until the server closes: (status, headers, the bytes that came)."""
    parts = httpx.URL(url)
    reader, writer = await asyncio.open_connection(parts.host, parts.port)
    target = parts.raw_path.decode()
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {parts.host}\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


async def test_cut_media_announces_everything_and_sends_half():
    async with ProxySim(final_image_pixels=(512, 512)) as sim:
        task = sim.add_task(action="UPSCALE", parent_id="1", index=1)
        sim.succeed(task.id)
        whole = sim.image_bytes(task.id)
        sim.cut_media(task.id, times=2)
        for _ in range(2):
            status, headers, body = await raw_get(sim.final_url(task.id))
            assert (status, headers["content-length"]) == (200, str(len(whole)))
            assert len(body) == len(whole) // 2 and body == whole[: len(whole) // 2]
        async with httpx.AsyncClient() as client:
            assert (await client.get(sim.final_url(task.id))).content == whole  # whole again
            sim.cut_media(task.id)
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(sim.final_url(task.id))
            other = sim.add_task()
            sim.succeed(other.id)
            assert (await client.get(sim.final_url(other.id))).content == sim.image_bytes(other.id)
            sim.advance(sim.add_task().id)
        with pytest.raises(KeyError):
            sim.cut_media("1234")
        with pytest.raises(ValueError):
            sim.cut_media(task.id, times=0)

    async with served("trueai") as (sim, client):  # a batch: each download of its videos counts
        parent = await upscaled(sim, client, "a fox --bs 2")
        video_id = (await action(client, parent["id"], buttons_by_label(parent)["Animate (Low motion)"])).json()[
            "result"
        ]
        sim.succeed(video_id)
        sim.cut_media(video_id, times=2)
        first = await raw_get(sim.video_url(video_id, 1))
        thumbnail = await raw_get(sim.thumbnail_url(video_id, 1))  # not final media: whole, not counted
        second = await raw_get(sim.video_url(video_id))
        third = await raw_get(sim.video_url(video_id, 0))
        assert len(first[2]) == len(sim.video_bytes(video_id, 1)) // 2
        assert thumbnail[2] == sim._image_for(f"{video_id}_1.png")
        assert len(second[2]) == len(sim.video_bytes(video_id)) // 2
        assert third[2] == sim.video_bytes(video_id, 0)

    async with served("newapi") as (sim, client):  # new-api streams the cut upstream download on
        task_id = (await imagine(client))["result"]
        sim.succeed(task_id)
        sim.gateway_poll()
        url = (await fetch(client, task_id))["imageUrl"]
        sim.cut_media(task_id)
        status, headers, body = await raw_get(url)
        assert (
            int(headers["content-length"])
            == len(sim.image_bytes(task_id))
            == 2 * len(body) + len(sim.image_bytes(task_id)) % 2
        )
        assert (await raw_get(url))[2] == sim.image_bytes(task_id)


# ---- shorten, cancel, image-seed, describe links, speed modes, Remix ----------------------------

LONG_PROMPT = "Please create a whimsical tower of donuts with colorful sprinkles. Thank you! --ar 3:2"


def trueai_shortened(description: str, n: int) -> str:
    """Services/TaskService.cs SubmitAction's reading of shortened prompt ``n`` (1-5)."""
    lines = [line for line in description[description.index("Shortened prompts") :].strip().split("\n") if line.strip()]
    chosen = lines[n].strip()
    return chosen[chosen.index(" ") :].strip()


async def test_trueai_shorten_gives_five_shorter_prompts_in_description_and_final_prompt():
    async with served("trueai") as (sim, client):
        submitted = (await client.post("/submit/shorten", json={"prompt": LONG_PROMPT, "state": "s1"})).json()
        assert (submitted["code"], submitted["description"]) == (1, "提交成功")
        task_id = submitted["result"]
        running = await fetch(client, task_id)
        assert (running["action"], running["status"], running["prompt"]) == ("SHORTEN", SUBMITTED, LONG_PROMPT)
        assert (running["description"], running["imageUrl"], running["buttons"]) == (
            f"/shorten {LONG_PROMPT}",
            None,
            [],
        )
        sim.advance(task_id)
        assert (await fetch(client, task_id))["imageUrl"] is None  # no previews: a text reply
        sim.succeed(task_id)
        done = await fetch(client, task_id)
        assert (done["status"], done["imageUrl"], done["seed"], done["mode"]) == (SUCCESS, None, None, "FAST")
        analysis = done["description"]
        assert analysis == done["properties"]["finalPrompt"] == shorten_description(LONG_PROMPT)
        assert done["prompt"] == done["promptEn"] == LONG_PROMPT
        assert "## Shortened prompts" in analysis and "**whimsical**" in analysis and "~~Please~~" in analysis
        prompts = shortened_prompts(LONG_PROMPT)
        assert prompts[0] == "whimsical, tower, donuts, colorful, sprinkles --ar 3:2"
        assert len(prompts) == 5 and all(p.endswith("--ar 3:2") for p in prompts)
        assert [trueai_shortened(analysis, n) for n in range(1, 6)] == prompts
        assert [b["customId"] for b in done["buttons"]] == [f"MJ::Job::PromptAnalyzer::{n}" for n in range(1, 6)]
        assert [b["emoji"] for b in done["buttons"]] == list(SHORTEN_MARKS)

        # SubmitController.cs Action knows no PromptAnalyzer prefix: a new imagine is the way.
        pressed = (await action(client, task_id, "MJ::Job::PromptAnalyzer::1")).json()
        assert (pressed["code"], pressed["description"]) == (4, "未知的 Action 类型")
        assert (await imagine(client, prompts[0]))["code"] == 1
        seed = await client.get(f"/task/{task_id}/image-seed")  # no image, no seed
        assert (seed.status_code, seed.json()["code"]) == (400, 4)

        # No prompt check: accepted, then Discord refuses the /shorten and the task fails.
        empty = (await client.post("/submit/shorten", json={})).json()
        assert empty["code"] == 1
        failed = await fetch(client, empty["result"])
        assert (failed["status"], failed["progress"]) == (FAILURE, "")
        assert failed["failReason"].startswith("BadRequest: ")
        too_long = (await client.post("/submit/shorten", json={"prompt": "x", "state": "s" * 256})).json()
        assert (too_long["success"], too_long["message"]) == (False, "State参数过长，最大255字符")
        bad = (await client.post("/submit/shorten", json={"prompt": 5})).json()
        assert bad["message"].startswith("The JSON value could not be converted to System.String. Path: $.prompt")

        async with httpx.AsyncClient(base_url=sim.speed_url("relax"), headers=GOOD_HEADERS["trueai"]) as relax:
            relaxed = (await relax.post("/submit/shorten", json={"prompt": "a fox"})).json()["result"]
        assert (sim.tasks[relaxed].mode, sim.tasks[relaxed].request_mode) == ("RELAX", "RELAX")


async def test_shorten_elsewhere_novicezk_has_none_newapi_relays_it():
    async with served("novicezk") as (sim, client):
        missing = await client.post("/submit/shorten", json={"prompt": "a fox"})
        assert (missing.status_code, missing.json()["status"]) == (404, 404)

    async with served("newapi", upstream="trueai") as (sim, client):
        submitted = (await client.post("/submit/shorten", json={"prompt": LONG_PROMPT})).json()
        assert submitted["code"] == 1
        task_id = submitted["result"]
        copy = await fetch(client, task_id)
        assert (copy["action"], copy["status"], copy["prompt"]) == ("SHORTEN", "", LONG_PROMPT)
        sim.succeed(task_id)
        sim.gateway_poll()
        copy = await fetch(client, task_id)
        # new-api keeps finalPrompt (and finalZhPrompt) of the properties, not the description.
        assert copy["properties"]["finalPrompt"] == shorten_description(LONG_PROMPT)
        assert copy["imageUrl"] == "" and len(copy["buttons"]) == 5
        refused = await action(client, task_id, "MJ::Job::PromptAnalyzer::2")
        assert refused.status_code == 400
        assert refused.json()["error"]["message"].startswith("无效的请求，unknown_action:MJ::Job::PromptAnalyzer::2")

    async with served("newapi", upstream="trueai", denied_models=["mj_shorten"]) as (sim, client):
        denied = await client.post("/submit/shorten", json={"prompt": "a fox"})
        assert denied.status_code == 403 and "mj_shorten" in denied.json()["error"]["message"]

    async with served("newapi", upstream="novicezk") as (sim, client):
        relayed = await client.post("/submit/shorten", json={"prompt": "a fox"})
        assert (relayed.status_code, relayed.json()["path"]) == (404, "/mj/submit/shorten")


async def test_trueai_cancel_fails_the_task_for_an_admin_only():
    async with served("trueai", max_running=1) as (sim, client):
        running = (await imagine(client))["result"]
        queued = (await imagine(client))["result"]
        answer = await client.post(f"/task/{queued}/cancel")
        assert (answer.status_code, answer.content) == (200, b"")
        cancelled = await fetch(client, queued)
        assert (cancelled["status"], cancelled["progress"], cancelled["failReason"]) == (FAILURE, "", "取消任务")
        assert cancelled["finishTime"] is not None and sim.tasks[queued].is_finished
        assert sim.start_queued() == []  # out of the queue

        async with httpx.AsyncClient(base_url=sim.speed_url("fast"), headers=GOOD_HEADERS["trueai"]) as fast:
            assert (await fast.post(f"/task/{running}/cancel")).status_code == 200
        assert (sim.tasks[running].status, sim.tasks[running].fail_reason) == (FAILURE, "取消任务")

        parent = succeeded(sim, "a red fox", "UPSCALE")
        waiting = (await action(client, parent, f"MJ::CustomZoom::1::{sim.tasks[parent].job_hash}")).json()["result"]
        assert (await client.post(f"/task/{waiting}/cancel")).status_code == 200
        assert sim.tasks[waiting].status == FAILURE  # MODAL is not completed
        for finished_or_unknown in (parent, "1234567890123456"):
            answer = await client.post(f"/task/{finished_or_unknown}/cancel")
            assert (answer.status_code, answer.content) == (200, b"")
        assert sim.tasks[parent].status == SUCCESS
        assert (await client.get(f"/task/{parent}/cancel")).status_code == 405

    async with served("trueai", admin=False) as (sim, client):
        task_id = (await imagine(client))["result"]
        refused = await client.post(f"/task/{task_id}/cancel")
        assert (refused.status_code, refused.text) == (400, "演示模式，禁止操作")
        assert refused.headers["content-type"].startswith("text/plain")
        as_json = await client.post(f"/task/{task_id}/cancel", headers={"Accept": "application/json"})
        assert (as_json.status_code, as_json.json()) == (400, "演示模式，禁止操作")
        assert sim.tasks[task_id].status == SUBMITTED

    async with served("novicezk") as (sim, client):
        task_id = (await imagine(client))["result"]
        missing = await client.post(f"/task/{task_id}/cancel")
        assert (missing.status_code, missing.json()["status"]) == (404, 404)
    async with served("newapi", upstream="trueai") as (sim, client):
        task_id = (await imagine(client))["result"]
        page = await client.post(f"/task/{task_id}/cancel")  # no route: the web UI
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert sim.tasks[task_id].status == SUBMITTED


async def test_image_seed_trueai_and_newapi_relay():
    async with served("trueai", seed=7) as (sim, client):
        task_id = (await imagine(client))["result"]
        missing = await client.get("/task/1234567890123456/image-seed")
        assert (missing.status_code, missing.json()) == (
            404,
            {"code": 3, "description": "关联任务不存在或已失效", "result": None, "properties": {}},
        )
        early = await client.get(f"/task/{task_id}/image-seed")
        assert (early.status_code, early.json()) == (
            400,
            {"code": 4, "description": "关联任务状态错误", "result": None, "properties": {}},
        )
        sim.succeed(task_id)
        seed = sim.tasks[task_id].seed
        answer = await client.get(f"/task/{task_id}/image-seed")
        assert (answer.status_code, answer.json()) == (
            200,
            {"code": 1, "description": "成功", "result": seed, "properties": {}},
        )
        assert seed.isdigit() and (await fetch(client, task_id))["seed"] == seed
        async with httpx.AsyncClient(base_url=sim.speed_url("turbo"), headers=GOOD_HEADERS["trueai"]) as turbo:
            assert (await turbo.get(f"/task/{task_id}/image-seed")).json()["result"] == seed
        assert (await client.post(f"/task/{task_id}/image-seed")).status_code == 405
    async with served("trueai", seed=7) as (again, client):
        task_id = (await imagine(client))["result"]
        again.succeed(task_id)
        assert again.tasks[task_id].seed == seed  # the same seed= gives the same seeds

    async with served("newapi", upstream="trueai") as (sim, client):
        unknown = await client.get("/task/1234567890123456/image-seed")
        assert (unknown.status_code, unknown.json()) == (400, newapi_error("task_no_found"))
        task_id = (await imagine(client))["result"]
        early = await client.get(f"/task/{task_id}/image-seed")
        assert (early.status_code, early.json()) == (
            400,
            {"code": 4, "description": "关联任务状态错误", "properties": {}, "result": ""},
        )
        sim.succeed(task_id)
        done = await client.get(f"/task/{task_id}/image-seed")  # relayed at once: no poll needed
        assert (done.status_code, done.json()) == (
            200,
            {"code": 1, "description": "成功", "properties": {}, "result": sim.tasks[task_id].seed},
        )
        assert list(done.json()) == ["code", "description", "properties", "result"]
    async with served("newapi", upstream="novicezk") as (sim, client):
        task_id = (await imagine(client))["result"]
        relayed = await client.get(f"/task/{task_id}/image-seed")
        assert (relayed.status_code, relayed.json()) == (
            404,
            {"code": 0, "description": "", "properties": None, "result": ""},
        )
    async with served("novicezk") as (sim, client):
        assert (await client.get("/task/1/image-seed")).status_code == 404


async def test_describe_with_a_link():
    link = "https://cdn.discordapp.com/attachments/1/2/fox.png"
    async with served("trueai", dead_links=["https://example.com/gone.png"]) as (sim, client):
        submitted = (await client.post("/submit/describe", json={"link": link})).json()
        assert submitted["code"] == 1
        task_id = submitted["result"]
        described = await fetch(client, task_id)
        assert (described["action"], described["imageUrl"]) == ("DESCRIBE", link)  # from the start
        assert (described["mode"], described["requestMode"]) == (None, None)  # SubmitDescribe picks none
        sim.succeed(task_id)
        done = await fetch(client, task_id)
        assert (done["status"], done["mode"]) == (SUCCESS, "FAST")
        assert done["properties"]["finalPrompt"].startswith("1️⃣ ")

        for body, description in (
            ({}, "base64或link不能为空"),
            ({"link": " ", "base64": ""}, "base64或link不能为空"),
            ({"link": "ftp://example.com/fox.png"}, "链接格式错误"),
            ({"link": "HTTPS://example.com/fox.png"}, "链接格式错误"),  # Regex.IsMatch: case-sensitive
            ({"base64": "@@@", "link": "fox.png"}, "链接格式错误"),  # the link is checked first
            ({"base64": "@@@"}, "base64格式错误"),
        ):
            refused = (await client.post("/submit/describe", json=body)).json()
            assert (refused["code"], refused["description"]) == (4, description), body
        bad_type = (await client.post("/submit/describe", json={"link": 5})).json()
        assert bad_type["message"].startswith("The JSON value could not be converted to System.String. Path: $.link")

        # base64 wins over link; bytes are stored (a Discord attachment), a "base64" link is a link.
        stored = (await client.post("/submit/describe", json={"base64": DATA_URL, "link": link})).json()["result"]
        assert sim.tasks[stored].image_url == sim.uploads[-1][0] != link
        bare = (await client.post("/submit/describe", json={"base64": base64.b64encode(b"png").decode()})).json()
        assert bare["code"] == 1
        as_link = (await client.post("/submit/describe", json={"base64": link})).json()["result"]
        assert sim.tasks[as_link].image_url == link

        # Links Midjourney cannot read: accepted, then the task fails.
        served_image = sim.final_url(task_id)
        for dead in ("https://example.com/gone.png", f"{sim.base_url}/image/1234567890123456.png"):
            dead_id = (await client.post("/submit/describe", json={"link": dead})).json()["result"]
            while not sim.tasks[dead_id].is_finished:  # queued behind the others, then failed
                sim.advance(dead_id)
            failed = await fetch(client, dead_id)
            assert (failed["status"], failed["failReason"]) == (FAILURE, f"Invalid link, {dead}")
        fine = (await client.post("/submit/describe", json={"link": served_image})).json()["result"]
        while not sim.tasks[fine].is_finished:
            sim.advance(fine)
        assert sim.tasks[fine].status == SUCCESS

    async with served("novicezk") as (sim, client):
        for body, description in (({"link": link}, "base64不能为空"), ({"base64": "fox"}, "base64格式错误")):
            refused = (await client.post("/submit/describe", json=body)).json()
            assert (refused["code"], refused["description"]) == (4, description)

    async with served("newapi", upstream="trueai") as (sim, client):
        relayed = (await client.post("/submit/describe", json={"link": link})).json()
        assert relayed["code"] == 1 and sim.tasks[relayed["result"]].image_url == link


async def test_trueai_modes_follow_path_filter_and_prompt_flags():
    async with served("trueai") as (sim, client):

        async def modes(prompt: str, **extra) -> tuple[str | None, str | None]:
            task = sim.tasks[(await imagine(client, prompt, **extra))["result"]]
            return task.mode, task.request_mode

        assert await modes("a fox") == ("FAST", None)
        assert await modes("a fox --relax") == ("RELAX", "RELAX")
        assert await modes("a fox --Fast") == ("FAST", "FAST")  # --fast in any case
        assert await modes("a fox --TURBO") == ("FAST", None)  # --relax / --turbo: case-sensitive
        assert await modes("a fox --turbo", accountFilter={"modes": ["relax"]}) == ("RELAX", "RELAX")
        async with httpx.AsyncClient(base_url=sim.speed_url("turbo"), headers=GOOD_HEADERS["trueai"]) as turbo:
            path = (await imagine(turbo, "a fox --relax"))["result"]
        assert (sim.tasks[path].mode, sim.tasks[path].request_mode) == ("TURBO", "TURBO")  # the path first

        upper = (await imagine(client, "a fox --TURBO"))["result"]
        sim.succeed(upper)  # TaskInfo.SuccessUpdate reads the final prompt in any case
        assert (await fetch(client, upper))["mode"] == "TURBO"
        parent = (await imagine(client, "a fox --relax"))["result"]
        sim.succeed(parent)
        child = (await action(client, parent, sim.tasks[parent].buttons[0]["customId"])).json()["result"]
        assert sim.tasks[child].mode == "FAST"  # GetInstanceByTask: not the parent's
        sim.succeed(child)
        assert sim.tasks[child].mode == "RELAX"  # its final prompt says --relax

    async with served("newapi", upstream="trueai") as (sim, client):
        relax_url = f"http://127.0.0.1:{sim.port}/mj-relax/mj"
        async with httpx.AsyncClient(base_url=relax_url, headers=GOOD_HEADERS["newapi"]) as relax:
            stripped = (await imagine(relax, "a fox"))["result"]
            flagged = (await imagine(relax, "a fox --relax"))["result"]
            assert (await fetch(relax, stripped))["status"] == ""  # fetch works under the prefix too
        assert sim.last_request("/submit/imagine").prefix == "/mj-relax/mj"
        assert (sim.tasks[stripped].mode, sim.tasks[stripped].request_mode) == ("FAST", None)
        assert sim.tasks[flagged].mode == "RELAX"  # the flag goes through (MjModeClearEnabled off)
        sim.gateway_poll()
        assert "mode" not in await fetch(client, stripped)  # new-api's copy has no mode


async def test_trueai_remix_account_setting_and_enable_remix():
    async with served("trueai") as (sim, client):
        grid = succeeded(sim)
        job_hash = sim.tasks[grid].job_hash
        held = len(sim.tasks)
        for custom_id in (f"MJ::JOB::variation::1::{job_hash}", f"MJ::JOB::upsample::1::{job_hash}"):
            refused = (await action(client, grid, custom_id, enableRemix=True)).json()
            assert (refused["code"], refused["description"]) == (4, "当前账号不支持 remix，请开启 remix 功能")
        assert len(sim.tasks) == held  # no task made
        plain = (await action(client, grid, f"MJ::JOB::variation::1::{job_hash}", enableRemix=False)).json()
        assert plain["code"] == 1
        bad = (await action(client, grid, f"MJ::JOB::variation::1::{job_hash}", enableRemix="yes")).json()
        assert bad["message"].startswith(
            "The JSON value could not be converted to System.Nullable`1[System.Boolean]. Path: $.enableRemix"
        )
        unknown = (await action(client, grid, f"MJ::Foo::1::{job_hash}")).json()
        assert (unknown["code"], unknown["description"]) == (4, "未知的 Action 类型")
        running = sim.add_task().id
        early = (await action(client, running, f"MJ::JOB::upsample::1::{job_hash}")).json()
        assert (early["code"], early["description"]) == (4, "关联任务状态错误")

    async with served("trueai", remix=True) as (sim, client):
        upscale = succeeded(sim, "a red fox", "UPSCALE")
        h = sim.tasks[upscale].job_hash
        waits = {
            "MJ::JOB::pan_left::1::{h}::SOLO": True,
            "MJ::JOB::low_variation::1::{h}::SOLO": True,
            "MJ::JOB::animate_high::1::{h}::SOLO": True,
            "MJ::JOB::reroll::0::{h}::SOLO": True,
            "MJ::Outpaint::50::1::{h}::SOLO": False,  # zooms never wait for Remix
            "MJ::JOB::upsample_v7_2x_subtle::1::{h}::SOLO": False,
        }
        for template, wait in waits.items():
            answer = (await action(client, upscale, template.format(h=h))).json()
            if wait:
                assert (answer["code"], answer["properties"]) == (21, {"finalPrompt": "a red fox", "remix": True})
                assert sim.tasks[answer["result"]].status == MODAL
            else:
                assert answer["code"] == 1 and sim.tasks[answer["result"]].status == SUBMITTED, template

    async with served("trueai", remix=True, remix_auto_submit=True) as (sim, client):
        grid = succeeded(sim, "a red fox --ar 3:2")
        variation = f"MJ::JOB::variation::2::{sim.tasks[grid].job_hash}"
        auto = (await action(client, grid, variation)).json()
        assert auto["code"] == 1  # SubmitModal at once with the parent's promptEn
        task = sim.tasks[auto["result"]]
        assert (task.status, task.prompt) == (SUBMITTED, "a red fox --ar 3:2")
        forced = (await action(client, grid, variation, enableRemix=True)).json()
        assert forced["code"] == 21 and sim.tasks[forced["result"]].status == MODAL
