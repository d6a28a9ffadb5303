"""A scriptable stand-in for a Midjourney Proxy server, for mjbot's tests.

The simulator is a real aiohttp server on 127.0.0.1, so the bot's own HTTP
client is exercised end to end (auth header, JSON parsing, timeouts, refused
connections). It speaks one of three dialects described in the contract doc shared with the
project (``shared/docs/mj-proxy-contract.md`` beside the repository), chosen by
``ProxySim(flavour=...)``:

- ``"novicezk"`` (the default): novicezk/midjourney-proxy v2.x.
- ``"trueai"``: trueai-org/midjourney-proxy: raw ``Authorization`` secret, no
  ``/submit/change``, ``buttons`` and ``/submit/action`` / ``/submit/modal``,
  status MODAL and CANCEL, ``/mj-relax/mj/...`` style speed prefixes. Upscales carry
  the real button set (Upscale (Subtle/Creative) with ``"emoji": "upscale_1"``, Vary
  (Subtle/Strong/Region), zoom, pans, Animate (High/Low motion), reroll), chosen by the
  prompt's ``--v``/``--niji`` version (v7 when it names none). Animate and
  ``/submit/video`` (checked as Controllers/SubmitController.cs Video does; its images
  stored and put in the prompt) make VIDEO tasks whose ``imageUrl`` is an ``.mp4`` the sim
  serves (with ``videoUrl``, ``videoUrls``, ``contentType: "video/mp4"``, U1-U4
  ``video_virtual_upscale`` buttons). A finished grid lists its four images alone in
  ``imageUrls`` (``[{url, thumbnail}]``, served: ``grid_image_url(id, i)``,
  ``grid_image_bytes(id, i)``; ``image_urls=False`` for none). ``/submit/upload-discord-images``
  stores images and answers their URLs (``sim.uploads``). Limits answer trueai's LogicException
  body (HTTP 200 ``{"success": false, "code": -1, "message": ..., "timestamp": ...}``):
  ``fail_next(path, kind="logic", description=...)`` or ``user_core_size`` /
  ``user_queue_size``; so does a body its JSON binding refuses (a field of the wrong type).
  ``/submit/shorten`` makes a SHORTEN task whose ``description`` and ``properties.finalPrompt``
  hold five shorter prompts (1️⃣-5️⃣ under "## Shortened prompts", made from the prompt's words)
  with ``MJ::Job::PromptAnalyzer::<n>`` buttons that /submit/action refuses (shorten.py);
  ``POST /task/{id}/cancel`` (admins only: ``admin``) fails the task with ``取消任务`` and
  ``GET /task/{id}/image-seed`` answers the seed of a finished task (task_routes.py); describe
  takes ``link`` (``dead_links``); ``mode`` / ``requestMode`` follow the path, the account filter
  and the prompt's ``--fast`` / ``--relax`` / ``--turbo`` (modes.py); Remix: ``remix``,
  ``remix_auto_submit`` and ``"enableRemix": true`` in /submit/action (actions.py).
- ``"newapi"``: the QuantumNous (formerly Calcium-Ion) new-api gateway in front of an
  ``upstream`` (``"novicezk"`` or ``"trueai"``): Bearer keys, "code":22 turned into 1
  (21 too, except Custom Zoom / Vary (Region)), its own 400 errors, customIds it cannot
  convert (animate, video_virtual_upscale, PicReader, BOOKMARK) refused with 400 and
  models a key may not use with 403 (``denied_models``), the web UI's index.html (200)
  for every path it has no route for, ``?rand=<ns>`` on the preview URL at every read
  until SUCCESS, and a stale copy of each task refreshed only by its own poll
  (``gateway_poll()``, or every ``gateway_poll_s`` in poll and time modes). It serves
  ``/mj-fast/mj``, ``/mj-relax/mj`` and ``/mj-turbo/mj`` too and strips them before relaying,
  relays ``/submit/shorten`` (billed ``mj_shorten``) and ``/task/{id}/image-seed`` (re-encoded),
  and has no cancel route.

Every fact above is taken from the servers' source; the comment next to each behaviour
names the file (the contract doc shared with the project, shared/docs/mj-proxy-contract.md
beside the repository: "What the servers really send").

Tests drive it deterministically, without sleeping::

    async with ProxySim(secret="s3cret") as sim:
        ...                              # the bot submits /imagine
        task_id = next(iter(sim.tasks))
        sim.advance(task_id)             # SUBMITTED -> IN_PROGRESS 10%
        sim.succeed(task_id)             # SUCCESS with the final image
        await sim.wait_for(lambda: sim.count("/image/" + task_id + ".png"))

``sim.tasks`` always holds the server's own tasks (for new-api: the upstream's);
new-api's copies, as the bot sees them, are in ``sim.gateway_tasks``.

With a ``notifyHook`` (per task in the submit body, or ``ProxySim(notify_hook=url)``)
the sim POSTs the Task JSON on every change, as the real servers do; ``deliveries``
records each attempt, and drop / duplicate / reorder script the ways pushes go wrong::

    sim.drop_next_deliveries(1)         # the next push is lost
    sim.succeed(task_id)
    await sim.wait_deliveries()         # nothing in flight any more

Final media: ``final_image_pixels=(4096, 2048)`` makes upscales photo-like PNGs of real size
(~25 MB), ``final_image_size`` pads final PNGs, ``cut_media(task_id, times=1)`` cuts the next
downloads of a task's final image or videos halfway (full Content-Length, half the bytes).

Run it by hand with ``python -m bot.sandbox.proxy_sim --port 8080 --mode time``
(``--flavour trueai``, ``--flavour newapi --upstream trueai``).

The package, module by module: timeline.py (Step, timelines, constants), tasks.py (SimTask and
the records), wire.py (answer bodies and checks), buttons.py (trueai's buttons), flavours.py
(novicezk / trueai / new-api), newapi_rules.py (new-api's keys, customIds, pages), modes.py
(trueai's speed modes), actions.py (trueai's /submit/action and /submit/modal, Remix),
shorten.py (/submit/shorten), task_routes.py (cancel, image-seed, describe links),
trueai_input.py (trueai's JSON binding and image inputs), images.py (small PNG and MP4 bytes),
photo.py (photo-sized PNGs, WebP thumbnails), server.py (ProxySim), with its parts in
life_cycle.py, scripting.py, submits.py, videos.py, uploads.py, delivery.py, failures.py,
gateway.py, handlers.py and media.py; __main__.py is the command line.
"""

from .buttons import UPSCALE_EMOJI
from .images import mp4_bytes, png_bytes
from .newapi_rules import NEWAPI_INDEX_HTML
from .server import ProxySim
from .shorten import SHORTEN_MARKS, shorten_description, shortened_prompts
from .tasks import Delivery, RecordedRequest, SimTask
from .timeline import (
    CANCEL,
    DEFAULT_TIMELINE,
    DESCRIBED,
    FAILURE,
    FLAVOURS,
    IN_PROGRESS,
    MODAL,
    NOT_START,
    SUBMITTED,
    SUCCESS,
    Step,
)

__all__ = [
    "CANCEL",
    "DEFAULT_TIMELINE",
    "DESCRIBED",
    "FAILURE",
    "FLAVOURS",
    "IN_PROGRESS",
    "MODAL",
    "NEWAPI_INDEX_HTML",
    "NOT_START",
    "SUBMITTED",
    "SUCCESS",
    "UPSCALE_EMOJI",
    "Delivery",
    "ProxySim",
    "RecordedRequest",
    "SHORTEN_MARKS",
    "SimTask",
    "Step",
    "mp4_bytes",
    "png_bytes",
    "shorten_description",
    "shortened_prompts",
]
