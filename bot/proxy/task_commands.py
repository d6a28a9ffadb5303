"""Requests about one task, beyond submitting and reading it: cancel it (trueai) and ask for its seed
(trueai, relayed by new-api). A mixin of :class:`~bot.proxy.client.ProxyClient`, which provides
``_request_json``; novicezk has neither (404), new-api has no cancel (its web page answers)."""

from __future__ import annotations

from typing import Any

from bot.core.errors import CancelRefused, EmptyAnswer, ProxyBadResponse, ProxyEndpointMissing, SeedUnavailable
from bot.proxy.answers import snippet


class TaskCommands:
    async def _request_json(self, method: str, path: str, **options: Any) -> Any:  # ProxyClient's
        raise NotImplementedError

    async def cancel_task(self, task_id: str) -> None:
        """Cancel an unfinished task (trueai Controllers/TaskController.cs: admins only; the task
        ends FAILURE "取消任务"). Raises :class:`CancelRefused` when the server says no (a
        non-admin token: HTTP 400 演示模式，禁止操作), :class:`ProxyEndpointMissing` without cancel."""
        try:
            await self._request_json("POST", f"/task/{task_id}/cancel")
        except EmptyAnswer:
            return  # trueai's answer: 200 and nothing
        except ProxyEndpointMissing:
            raise
        except ProxyBadResponse as exc:  # any other answer, e.g. 400 演示模式，禁止操作
            raise CancelRefused(f"cancel {task_id}: {exc}", detail=exc.detail) from None
        raise CancelRefused(f"cancel {task_id}: an answer that is not trueai's empty 200")

    async def image_seed(self, task_id: str) -> str:
        """A finished task's seed (trueai ``GET /task/{id}/image-seed``: ``result`` is the seed).
        Raises :class:`SeedUnavailable` when the server has none for it (codes 3, 4, 9)."""
        path = f"/task/{task_id}/image-seed"
        data = await self._request_json("GET", path, accept_error_bodies=True, empty_ok=True)
        if not isinstance(data, dict):
            raise SeedUnavailable(f"GET {path}: no answer", detail=snippet(str(data)))
        seed = str(data.get("result") or "").strip()
        if data.get("code") == 1 and seed.isdigit():
            return seed
        raise SeedUnavailable(f"GET {path}: code {data.get('code')}", detail=str(data.get("description") or ""))
