"""Cleaning steps on crafted inputs: each step alone, its change count, and the full chain."""

from __future__ import annotations

import json

import pytest

from tunewise.data.clean import (
    Cleaner,
    collapse_whitespace,
    fix_unicode,
    handle_emoji,
    mask,
    remove_control,
    strip_html,
)
from tunewise.data.schemas import schema_for
from tunewise.prepare_options import CleanOptions, PrepareConfig


def test_html_tags_and_entities():
    html = '<div class="x"><p>Fish &amp; chips&nbsp;&#8212; <b>gr</b>eat!</p><br/>Price &lt;5&euro;'
    html += "<script>alert('x')</script><style>p{}</style></div>"
    out = collapse_whitespace(strip_html(html))
    assert out == "Fish & chips\u00a0\u2014 great! Price <5€".replace("\u00a0", " ")


def test_html_leaves_plain_text_alone():
    assert strip_html("a < b and c > d") == "a < b and c > d"
    assert strip_html("no markup here") == "no markup here"


def test_unicode_repair_and_nfkc():
    assert fix_unicode("cafÃ©") == "café"  # mojibake: UTF-8 read as Latin-1
    assert fix_unicode("ｆｕｌｌ ｗｉｄｔｈ ﬁ") == "full width fi"  # NFKC compatibility forms
    assert fix_unicode("plain ascii") == "plain ascii"


def test_emoji_remove_and_name_with_skin_tones_and_zwj_sequences():
    text = "ok 👍🏽 family 👨\u200d👩\u200d👧 flag 🇫🇷 heart ❤️ end"
    removed = collapse_whitespace(handle_emoji(text, "remove"))
    assert removed == "ok family flag heart end"
    named = collapse_whitespace(handle_emoji(text, "name"))
    assert ":thumbs_up_medium_skin_tone:" in named
    assert ":family_man_woman_girl:" in named  # one name for the joined sequence
    assert ":France:" in named and ":red_heart:" in named
    assert "\u200d" not in named


def test_control_and_zero_width_characters():
    text = "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u00adsoft\x07bell\x1b[0m\u202eend"
    assert remove_control(text) == "zerowidthnonjoinerbomsoftbell[0mend"
    assert remove_control("tabs\tand\nnewlines stay") == "tabs\tand\nnewlines stay"


def test_masking_urls_emails_phones_but_not_years_or_scores():
    text = (
        "Mail jane.doe+x@mail.example.co.uk, see https://example.org/a?b=1. or www.test.com; "
        "call +44 20 7946 0958 or (555) 123-4567. In 1999 it ended 2-1 for 12.50 euros."
    )
    out = mask(text, ["url", "email", "phone"])
    assert out == (
        "Mail <EMAIL>, see <URL>. or <URL>; call <PHONE> or <PHONE>. "
        "In 1999 it ended 2-1 for 12.50 euros."
    )
    assert mask(text, ["email"]).count("<EMAIL>") == 1 and "<URL>" not in mask(text, ["email"])


def test_whitespace():
    assert collapse_whitespace("  a \t b\n\n c  ") == "a b c"


def test_cleaner_records_which_steps_changed_a_text():
    cleaner = Cleaner(CleanOptions.all())
    assert cleaner("<b>Hi</b>  there 😀") == "Hi there :grinning_face:"
    assert cleaner.changed == {"html", "emoji", "whitespace"}


def test_steps_are_switchable():
    only_ws = Cleaner(CleanOptions(whitespace=True))
    assert only_ws("<b>a</b>   &amp;") == "<b>a</b> &amp;"
    assert Cleaner(CleanOptions())("<b>x</b>") == "<b>x</b>"


def test_clean_shorthands_in_config():
    assert PrepareConfig(clean="all").clean == CleanOptions.all()
    cfg = PrepareConfig(clean=["html", "email", "whitespace"])
    assert cfg.clean.enabled() == ["html", "mask", "whitespace"] and cfg.clean.mask == ["email"]
    with pytest.raises(ValueError, match="htlm"):
        PrepareConfig(clean=["htlm"])


def test_pipeline_counts_changed_records_per_step(tmp_path):
    from tunewise.data.steps import process

    texts = ["<i>a</i>", "b  c", "plain", "d &amp; e  f", "😀 x"]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": "x"}) + "\n" for t in texts))
    opts = PrepareConfig(clean="all")
    p = process(path, schema_for("classification"), opts)
    assert p.counts["cleaned"] == {
        "html": 2,
        "unicode": 0,
        "emoji": 1,
        "control": 0,
        "mask": 0,
        "whitespace": 3,
    }
    out = [json.loads(r)["text"] for r in p.rows["record"]]
    assert out == ["a", "b c", "plain", "d & e f", ":grinning_face: x"]
