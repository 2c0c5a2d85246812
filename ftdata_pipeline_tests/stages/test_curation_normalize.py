"""Content-aware normalization: code survives byte for byte, markup goes only outside code."""

from __future__ import annotations

import polars as pl
import pytest

from ftdata_pipeline.config.models import CurateConfig, RecipeConfig
from ftdata_pipeline.stages.curate import curate
from ftdata_pipeline.stages.curation.normalize import normalize_series, split_code
from ftdata_pipeline.stages.curation.regression_corpus import (
    compiles,
    package_descriptions,
    python_blocks,
)


def norm(text: str, **cfg) -> str:
    return normalize_series(pl.Series([text]), CurateConfig(**cfg)).item()


FENCED = "Try this:\n\n```python\ndef f(x):\n    if x:\n        return  x  # two  spaces\n\tpass\n```\n\nDone."


def test_fenced_code_kept_byte_for_byte_and_prose_around_it_tidied():
    out = norm("  Try this:  \n\n\n\n```python\ndef f(x):\n    if x:\n        return  x  # two  spaces\n\tpass\n```\n\nDone.  ")
    assert out == FENCED


@pytest.mark.parametrize(
    "text",
    [
        "Use `List<T>` or `<div>  x</div>` here",
        "Routes like <int:index> and generics like Option<T> stay",
        "Render <MyComponent /> or <Button onClick={go}>Go</Button>",
        "Placeholders <PERSON> and <EMAIL_ADDRESS> stay",
    ],
)
def test_things_that_are_not_html_tags_survive(text):
    assert norm(text) == text


def test_real_html_tags_are_stripped_outside_code_only():
    assert norm("<p>Hello <b>world</b></p> and <BR>next") == "Hello world\n\nand\nnext"
    assert norm("keep `<b>bold</b>` inline") == "keep `<b>bold</b>` inline"
    assert norm("~~~html\n<p>  kept  </p>\n~~~") == "~~~html\n<p>  kept  </p>\n~~~"


def test_indented_code_keeps_indentation():
    text = "Example:\n\n    for i in range(3):\n        print(i)\n\nafter"
    assert norm(text) == text
    assert norm("    x = 1\n    if x:\n        y = 2\n") == "    x = 1\n    if x:\n        y = 2"


def test_unclosed_fence_runs_to_the_end():
    assert split_code("a\n```\ncode  here\n") == [(False, "a\n"), (True, "```\ncode  here\n")]


def test_controls_ansi_and_bidi_removed_everywhere_and_counted():
    dirty = "Hi\x00 \x1b[31mred\x1b[0m \u202eevil\u202c ok"
    assert norm(dirty) == "Hi red evil ok"
    assert norm("```\nprint('\x1b[1mx')\x07\n```") == "```\nprint('x')\n```"
    recipe = RecipeConfig(name="r", kind="pretraining", sources=["s"],
                          exports={"formats": ["trl_text"]},
                          curate={"language": {"enabled": False}, "harmful": {"enabled": False}})
    df = pl.DataFrame({"record_id": ["a"], "source": ["s"], "source_key": ["1"],
                       "text": ["some words here " + dirty]})
    result = curate(df.lazy(), recipe)
    assert result.stats["control_chars_removed"] == 5
    assert "\x1b" not in result.kept["text"].item()


def test_code_fields_are_kept_whole():
    code = "def f():\n    return  <T>  # <b>x</b>\n\n\n\n"
    assert normalize_series(pl.Series([code]), CurateConfig(), code=True).item() == code
    recipe = RecipeConfig(name="r", kind="pretraining", sources=["s"],
                          exports={"formats": ["trl_text"]},
                          curate={"code_fields": ["text"], "language": {"enabled": False},
                                  "harmful": {"enabled": False}, "quality": {"enabled": False}})
    df = pl.DataFrame({"record_id": ["a"], "source": ["s"], "source_key": ["1"], "text": [code]})
    assert curate(df.lazy(), recipe).kept["text"].item() == code


def test_python_blocks_of_real_package_readmes_survive_curation():
    """Real Markdown the project did not write: every compiling block still compiles, unchanged."""
    texts = [t for _, t in package_descriptions()]
    blocks = [b for t in texts for b in python_blocks(t)]
    assert len(blocks) >= 20, "the locked environment's READMEs hold Python examples"
    out = normalize_series(pl.Series(texts), CurateConfig()).to_list()
    after = [b for t in out for b in python_blocks(t)]
    assert after == blocks  # byte for byte, same order
    assert sum(map(compiles, after)) == sum(map(compiles, blocks)) > 0


@pytest.mark.parametrize(
    "text",
    [
        'Config:\n{\n  "a": 1,\n  "b": {\n    "c": [1,  2]\n  }\n}',  # unfenced JSON, indent=2
        "server:\n  port: 80\n  hosts:\n    - a\n    - b",  # unfenced YAML
        "NAME      READY   STATUS\nweb-1     1/1     Running",  # pasted command output
        "- item\n  - nested\n    - deeper\n  - back",  # a nested Markdown list
        "id\tname\n1\tAcme  Mail",  # TSV
    ],
)
def test_indentation_and_alignment_of_unfenced_structured_text_are_kept(text) -> None:
    assert norm(text) == text


def test_markup_free_lines_of_real_package_readmes_keep_their_bytes():
    """Real text the project did not write: every ASCII line without markup keeps its
    indentation and inner spacing (only spaces ending it may go), as many times as it was."""
    from collections import Counter

    texts = [t for _, t in package_descriptions()]
    out = normalize_series(pl.Series(texts), CurateConfig()).to_list()
    checked = 0
    for before, after in zip(texts, out, strict=True):
        plain = Counter(
            line.rstrip() for line in before.splitlines()
            if line.strip() and line.isascii() and not set(line) & set("<>&`\x1b")
        )
        kept = Counter(line.rstrip() for line in after.splitlines())
        lost = plain - kept
        # a text's first line loses its leading spaces with the text's outer whitespace
        lost -= Counter({next(line.rstrip() for line in before.splitlines() if line.strip()): 1})
        assert not lost, list(lost)[:3]
        checked += sum(1 for line in plain if line != line.lstrip())
    assert checked > 100, "the READMEs hold indented lines"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\ta ", "\ta"),  # an indented block's last line: its indentation stays, not its tail
        ("Run:\n```py\nx = 1\n```\n\n", "Run:\n```py\nx = 1\n```"),
        ("x\n\n    code  \n\t", "x\n\n    code"),
    ],
)
def test_no_whitespace_after_the_last_visible_character_also_after_code(text, expected):
    assert norm(text) == expected


def test_zero_width_spaces_leave_code_too():
    """A zero-width space or stray BOM is invisible and never part of working code: it goes
    from code as from prose, and a line of only a tab and one is no code line."""
    from ftdata_pipeline.config.models import CurateConfig
    from ftdata_pipeline.stages.curation.normalize import normalize_series

    s = pl.Series(["\t\u200b", "    x = 1\u200b\n    y = 2", "```\nprint(1)\ufeff\n```"])
    out = normalize_series(s, CurateConfig()).to_list()
    assert out == ["", "    x = 1\n    y = 2", "```\nprint(1)\n```"]


def test_normalization_runs_on_parts_of_a_column_with_the_same_result(monkeypatch):
    """Normalization judges each text alone, so Polars may hand it one chunk of a column at
    a time (the whole column's segments at once took ~3x the frame's size on a million
    tickets); the texts and messages come out the same as from one whole-column call."""
    from ftdata_pipeline.stages.curation import normalize as norm

    texts = ["<b>Hi</b>  there", "caf\u00c3\u00a9 menu", "```\n  code  x\n```\nok  now",
             "\x1b[31mred\x1b[0m", None, "plain"] * 7
    messages = [[{"role": "user", "content": t or ""}] for t in texts]
    parts = [pl.DataFrame({"text": texts[i::3], "messages": messages[i::3]}) for i in range(3)]
    chunked = pl.concat(parts, rechunk=False)
    assert chunked.n_chunks() == 3
    cfg = CurateConfig()
    calls: list[int] = []
    real = norm.normalize_series
    monkeypatch.setattr(norm, "normalize_series",
                        lambda s, *a, **k: calls.append(s.len()) or real(s, *a, **k))
    out = chunked.lazy().select(norm.normalize_text(pl.col("text"), cfg),
                                norm.normalize_messages(pl.col("messages"), cfg)).collect()
    assert calls and max(calls) < chunked.height
    whole = pl.DataFrame({
        "text": real(chunked["text"], cfg),
        "messages": chunked.rechunk().select(
            norm.normalize_messages(pl.col("messages"), cfg))["messages"],
    })
    assert out.equals(whole)
