"""User regexes run in one linear-time engine; what it cannot run fails validation, by key."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ftdata_pipeline.cli import main
from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.config.safe_regex import check_regex, regex_problem, spans
from ftdata_pipeline.records import conform
from ftdata_pipeline.stages.label import label

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(?<=Dear )\w+", "look-around"),
        (r"refund(?! policy)", "look-around"),
        (r"(a)\1", "backreferences"),
        (r"(unclosed", "unclosed group"),
    ],
)
def test_patterns_the_engine_cannot_run_are_named_with_the_reason(pattern, reason):
    assert reason in regex_problem(pattern)
    with pytest.raises(ValueError, match="invalid regular expression"):
        check_regex(pattern)


@pytest.mark.parametrize(
    ("path", "pattern", "key"),
    [
        (("curate", "boilerplate_patterns"), r"(?<=Regards,)\s.*", "curate.boilerplate_patterns.0"),
        (("curate", "quality", "refusal_patterns"), "sorry(?=,)",
         "curate.quality.refusal_patterns.0"),
    ],
)
def test_validate_rejects_python_only_regexes_naming_the_key(tmp_path, capsys, path, pattern, key):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    recipe = tmp_path / "configs" / "datasets" / "support_corpus.yaml"
    data = yaml.safe_load(recipe.read_text())
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = [pattern]
    recipe.write_text(yaml.safe_dump(data))
    assert main(["--config-dir", str(tmp_path / "configs"), "validate", "--skip-data"]) == 2
    err = capsys.readouterr().err
    assert str(recipe) in err and key.rsplit(".", 1)[0] in err and "look-around" in err


def test_label_rule_with_look_ahead_is_a_config_error():
    with pytest.raises(ValueError, match=r"label.rules.0.pattern[\s\S]*look-around"):
        RecipeConfig(name="r", kind="classification", sources=["s"],
                     exports={"formats": ["classification_jsonl"]},
                     label={"method": "rules", "label_set": ["bug"],
                            "rules": [{"label": "bug", "pattern": "crash(?!-free)"}]})


def test_catastrophic_backtracking_pattern_runs_in_linear_time_engine():
    # (a+)+$ on "aaaa...b" takes exponential time in a backtracking engine; here it is a
    # plain linear scan, and the label stage gets the right answer.
    recipe = RecipeConfig(name="r", kind="classification", sources=["s"],
                          exports={"formats": ["classification_jsonl"]},
                          label={"method": "rules", "label_set": ["a", "other"],
                                 "rules": [{"label": "a", "pattern": "(a+)+$"},
                                           {"label": "other", "pattern": "."}]})
    df = conform(pl.DataFrame({"record_id": ["1", "2"], "source": ["s", "s"], "source_key": ["1", "2"],
                       "text": ["a" * 50_000 + "b", "aaaa"]}))
    result = label(df.lazy(), recipe)
    labels = dict(zip(result.kept["source_key"], result.kept["label"], strict=True))
    assert labels == {"1": "other", "2": "a"}


_SIMPLE = st.text(alphabet="abAB-1 \né\n", max_size=40)


@given(text=_SIMPLE, pattern=st.sampled_from(
    [r"a+", r"\bab?\b", r"b*", r"\d", r"(?m)^a", r"é\w*", r"A.B", r"(ab|ba)+", r"1$"]))
def test_spans_are_the_matches_re_finditer_finds(text, pattern):
    """The offsets read back from the engine are the ones Python's ``re`` reports for patterns
    both engines read alike (non-empty matches only, as Presidio keeps them)."""
    expected = [m.span() for m in re.finditer(pattern, text) if m.end() > m.start()]
    assert spans(pattern, [text]) == [expected]


def test_spans_of_a_batch_with_texts_that_hold_the_sentinel_characters():
    texts = ["x1", "\U000F0000x\U000F0001 x", "", "none"]
    assert spans("x", texts) == [[(0, 1)], [(1, 2), (4, 5)], [], []]
