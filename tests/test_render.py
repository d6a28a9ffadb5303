"""How a job looks in every state, and the buttons' custom_id round trip."""

from __future__ import annotations

import re

import discord
import pytest

from bot.core.models import Action, Display, Job, MediaLink, MediaNote, Phase, Status, TaskButton
from bot.discord.ui.buttons import JobButton, custom_id, grid_buttons
from bot.discord.ui.render import render

OWNER = 4242


def job(**changes) -> Job:
    base = Job(
        task_id="1320098173412546", action=Action.IMAGINE, prompt="a red fox", owner_id=OWNER, channel_id=1, guild_id=2
    )
    return base.with_changes(**changes)


def rendered(j: Job, attached: bool = False):
    return render(j, Display.of(j), language="en", image_attached=attached)


@pytest.mark.parametrize(
    ("state", "content"),
    [
        (dict(status=Status.SUBMITTED), "**a red fox** - <@4242> (Waiting to start)"),
        (dict(status=Status.UNKNOWN), "**a red fox** - <@4242> (Waiting to start)"),
        (dict(status=Status.SUBMITTED, queue_ahead=3), "**a red fox** - <@4242> (Queued: 3 ahead)"),
        (dict(status=Status.IN_PROGRESS, progress="23%"), "**a red fox** - <@4242> (23%)"),
        (dict(status=Status.FAILURE, fail_reason="banned prompt"), "**a red fox** - <@4242> (Failed: banned prompt)"),
        (dict(status=Status.FAILURE), "**a red fox** - <@4242> (Failed)"),
        (dict(status=Status.SUCCESS, image_url="http://x/1.png"), "**a red fox** - <@4242>"),
    ],
)
def test_content_for_each_state(state, content):
    assert rendered(job(**state)).content == content


def test_change_jobs_name_their_kind():
    up = job(action=Action.UPSCALE, parent_index=2, status=Status.SUCCESS)
    var = job(action=Action.VARIATION, parent_index=3, status=Status.IN_PROGRESS, progress="5%")
    assert rendered(up).content == "**a red fox** - Image #2 <@4242>"
    assert rendered(var).content == "**a red fox** - Variations by <@4242> (5%)"


def test_progress_shows_preview_and_no_buttons():
    r = rendered(job(status=Status.IN_PROGRESS, progress="40%", image_url="http://x/preview.webp"))
    assert [e.image.url for e in r.embeds] == ["http://x/preview.webp"]
    assert r.view is None


def test_finished_grid_has_nine_buttons_in_two_rows():
    r = rendered(job(status=Status.SUCCESS, image_url="http://x/1.png"), attached=True)
    assert r.embeds == []  # the image is attached, not embedded
    rows = [row["components"] for row in r.view.to_components()]
    labels = [[c.get("label") or c["emoji"]["name"] for c in row] for row in rows]
    assert labels == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4", "❌"]]
    assert rows[0][1]["custom_id"] == "mj:u:2:1320098173412546"
    assert rows[0][4]["custom_id"] == "mj:r:0:1320098173412546"


def test_unattachable_final_image_is_linked():
    r = rendered(job(status=Status.SUCCESS, image_url="http://x/big.png"), attached=False)
    assert r.embeds[0].image.url == "http://x/big.png" and r.embeds[0].url == "http://x/big.png"


def test_upscale_result_has_no_grid_buttons():
    view = rendered(job(action=Action.UPSCALE, parent_index=1, status=Status.SUCCESS)).view
    assert [c.item.custom_id for c in view.children] == ["mj:x:0:1320098173412546"]  # only ❌


def test_failed_job_can_be_deleted_and_running_one_cannot():
    failed = rendered(job(status=Status.FAILURE, fail_reason="x")).view
    assert [str(c.item.emoji) for c in failed.children] == ["❌"]
    assert rendered(job(status=Status.IN_PROGRESS, progress="5%")).view is None


def test_used_button_changes_style():
    j = job(status=Status.SUCCESS, used_buttons=frozenset({("UPSCALE", 2)}))
    styles = {item.item.custom_id: item.item.style for item in rendered(j).view.children}
    assert styles["mj:u:2:1320098173412546"] is discord.ButtonStyle.primary
    assert styles["mj:u:1:1320098173412546"] is discord.ButtonStyle.secondary


def test_markdown_in_prompt_is_escaped_and_only_the_owner_is_pinged():
    r = rendered(job(prompt="**bold** @everyone", status=Status.SUBMITTED))
    assert r.content.startswith("**\\*\\*bold\\*\\* @everyone**")
    assert r.allowed_mentions.everyone is False and r.allowed_mentions.roles is False
    assert [u.id for u in r.allowed_mentions.users] == [OWNER]


@pytest.mark.parametrize(("kind", "index"), [("u", 1), ("v", 4), ("r", 0), ("b", 24), ("p", 0)])
async def test_custom_id_round_trip(kind, index):
    cid = custom_id(kind, index, "1320098173412546")
    assert len(cid) <= 100
    match = re.fullmatch(JobButton.__discord_ui_compiled_template__, cid)
    assert match is not None
    button = await JobButton.from_custom_id(None, None, match)  # type: ignore[arg-type]
    assert (button.kind, button.index, button.task_id) == (kind, index, "1320098173412546")
    assert button.custom_id == cid


@pytest.mark.parametrize("bad", ["mj:q:1:123", "mj:u:123:123", "mj:u:1:", "other:u:1:123", "mj:u:1:a b"])
def test_foreign_custom_ids_do_not_match(bad):
    assert re.fullmatch(JobButton.__discord_ui_compiled_template__, bad) is None


def test_display_phases():
    assert Display.of(job(status=Status.NOT_START)).phase is Phase.WAITING
    assert Display.of(job(status=Status.CANCEL)).phase is Phase.FAILED
    assert grid_buttons("1").children[0].item.label == "U1"


def test_server_buttons_are_shown_as_the_server_lists_them():
    long_id = "MJ::JOB::upsample::1::" + "h" * 120
    buttons = (
        TaskButton(long_id, label="U1"),
        TaskButton("MJ::JOB::reroll::0::h::SOLO", emoji="🔄"),
        TaskButton("MJ::JOB::high_variation::1::h::SOLO", label="Vary (Strong)", emoji="🪄"),
        TaskButton("MJ::CustomZoom::h", label="Custom Zoom", emoji="🔍"),
        TaskButton("MJ::JOB::pan_left::1::h::SOLO", emoji="⬅️"),
        TaskButton("MJ::JOB::pan_up::1::h::SOLO", emoji="⬆️"),
    )
    j = job(
        action=Action.UPSCALE,
        parent_index=1,
        status=Status.SUCCESS,
        buttons=buttons,
        used_buttons=frozenset({("button", 2)}),
    )
    rows = rendered(j).view.to_components()
    flat = [b for row in rows for b in row["components"]]
    assert [len(row["components"]) for row in rows] == [5, 2]
    assert [(b.get("label"), (b.get("emoji") or {}).get("name")) for b in flat] == [
        ("U1", None),
        (None, "🔄"),
        ("Vary (Strong)", "🪄"),
        ("Custom Zoom", "🔍"),
        (None, "⬅️"),
        (None, "⬆️"),
        (None, "❌"),
    ]
    assert all(len(b["custom_id"]) <= 100 for b in flat)  # the 140-character customId stays in SQLite
    assert flat[0]["custom_id"] == "mj:b:0:1320098173412546"
    assert flat[2]["style"] == 1 and flat[3]["style"] == 2  # Vary (Strong) was used


def test_server_buttons_are_not_shown_when_the_server_cannot_press_them():
    j = job(status=Status.SUCCESS, buttons=(TaskButton("MJ::JOB::upsample::1::h", label="U1"),))
    assert rendered(j).view.children[0].item.custom_id == "mj:b:0:1320098173412546"
    plain = render(j, Display.of(j), language="en", image_attached=True, server_buttons_ok=False)
    assert [c.item.custom_id for c in plain.view.children][:2] == ["mj:u:1:1320098173412546", "mj:u:2:1320098173412546"]


def test_waiting_for_a_prompt_offers_the_pencil():
    r = rendered(job(status=Status.MODAL))
    assert r.content.endswith("(Waiting for a prompt: press ✏️)")
    assert r.view.children[0].item.custom_id == "mj:p:0:1320098173412546"


# --- what Discord refuses, bounded or replaced before it is sent ------------------------------------


def test_only_emoji_discord_takes_reach_a_button():
    from bot.discord.ui.emoji import button_emoji, is_unicode_emoji

    for emoji in ("🔄", "⬅️", "🪄", "🔍", "1️⃣", "❌", "✏️", "👍🏽", "🇺🇸", "👨‍👩‍👧", "ℹ️"):
        assert is_unicode_emoji(emoji), emoji
    for name in ("upscale_1", "", "a", "1", "🔄🔄", "🇫", "<:mj:123>", "_"):
        assert not is_unicode_emoji(name), name
    assert button_emoji("upscale_1") == "⬆️"  # trueai's custom emoji name: a stand-in the bot picks
    assert button_emoji("") is None and button_emoji("video_1") is None


def test_server_buttons_keep_their_label_and_lose_an_emoji_discord_refuses():
    from bot.core.models import TaskButton
    from bot.discord.ui.buttons import server_buttons

    buttons = (
        TaskButton("MJ::JOB::upsample_v7_2x_subtle::1::h::SOLO", "Upscale (Subtle)", "upscale_1"),
        TaskButton("MJ::JOB::animate_high::1::h::SOLO", "Animate (High motion)", ""),
        TaskButton("MJ::JOB::x::1::h", "L" * 300, "nope"),
    )
    items = [item.item for item in server_buttons("123", buttons).children]  # the DynamicItems' buttons
    assert [str(item.emoji) if item.emoji else None for item in items] == ["⬆️", None, None]
    assert items[0].label == "Upscale (Subtle)" and items[1].label == "Animate (High motion)"
    assert len(items[2].label) == 80 and items[2].label.endswith("…")


def test_a_video_batch_is_not_embedded_and_its_titles_say_video():
    clips = (MediaLink("http://x/v_0.mp4", "http://x/v_0.png"), MediaLink("http://x/v_1.mp4"))
    done = job(action=Action.VIDEO, status=Status.SUCCESS, image_url="http://x/v_0.mp4", videos=clips)
    assert rendered(done, attached=False).embeds == []  # an .mp4 in an embed shows nothing
    assert rendered(done).content == "**a red fox** - Videos by <@4242>"
    one = job(action=Action.VIDEO, parent_index=2, prompt="", status=Status.IN_PROGRESS, progress="10%")
    assert rendered(one).content == "**Animate** - Video #2 <@4242> (10%)"


@pytest.mark.parametrize(
    ("note", "text"),
    [
        (
            MediaNote("reencoded", "WebP", 10_276_044, 31_000_000),
            "Re-encoded to fit this server's upload limit: 9.8 MB WebP.",
        ),
        (
            MediaNote("reencoded", "JPEG", 5 * 1024 * 1024, 31_000_000, ("https://cdn.midjourney.com/a/0_1.png",)),
            "5.0 MB JPEG. Original: <https://cdn.midjourney.com/a/0_1.png>",
        ),
        (MediaNote("video_too_large", attached=1), "here is its first frame"),
        (MediaNote("video_too_large"), "it has no first frame to show"),
        (MediaNote("linked", links=("https://cdn.midjourney.com/v.mp4",)), "upload to this server: <https://cdn"),
        (MediaNote("too_large", size=200_000_000), "its link would expire"),
        (MediaNote("download_failed"), "could not be fetched from the proxy"),
    ],
)
def test_what_was_done_to_post_a_result_is_said_last(note, text):
    done = job(action=Action.UPSCALE, parent_index=1, status=Status.SUCCESS, media_note=note, prompt="x " * 1500)
    content = rendered(done, attached=True).content
    assert text in content.splitlines()[-1] and len(content) <= 2000


def test_links_in_a_note_are_checked_again_and_bounded():
    forged = (
        "https://cdn.midjourney.com/x> [free nitro](https://evil.example)",
        "https://evil.example\\@cdn.midjourney.com/v.mp4",
        "https://cdn.midjourney.com/" + "a" * 2000 + ".mp4",
        "https://cdn.midjourney.com/ok_0.mp4",
    )
    done = job(action=Action.VIDEO, status=Status.SUCCESS, media_note=MediaNote("linked", links=forged))
    last = rendered(done).content.splitlines()[-1]
    assert last.endswith("<https://cdn.midjourney.com/ok_0.mp4>") and "evil" not in last and "aaaa" not in last


def test_a_result_said_to_be_too_large_is_not_embedded_from_a_link_that_expires():
    note = MediaNote("too_large", size=200_000_000)
    done = job(status=Status.SUCCESS, image_url="http://proxy/1.png", media_note=note)
    assert rendered(done).embeds == [] and "its link would expire" in rendered(done).content


def test_a_media_note_says_nothing_while_a_job_runs():
    running = job(status=Status.IN_PROGRESS, progress="5%", media_note=MediaNote("download_failed"))
    assert "downloaded" not in rendered(running).content
