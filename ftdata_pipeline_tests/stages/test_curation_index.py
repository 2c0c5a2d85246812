"""Curating partition by partition against the dedup index equals one run over all rows."""

from __future__ import annotations

import polars as pl

from ftdata_pipeline.stages.curate import curate
from ftdata_pipeline.stages.curation.index import EXACT_RULE, NEAR_RULE, PartitionDedup
from ftdata_pipeline_tests.stages.test_curate import frame, recipe

CFG = {"quality": {"enabled": False}, "language": {"enabled": False}, "min_words": 3,
       "min_chars": 10}

BASE = ("the backup job on the staging cluster failed again last night after the storage "
        "volume filled up and the nightly rotation could not delete old snapshots")
NEAR = BASE + " today"  # one more word: Jaccard ~0.96
OTHER = ("please reset the two factor authentication for my account because I replaced "
         "my phone and the old authenticator app is gone for good")
THIRD = ("our invoices for march show the enterprise plan twice although we downgraded "
         "to the team plan at the start of february according to the portal")
FOURTH = ("the mobile app crashes when I open the settings page on android fourteen and "
          "the crash report mentions a null pointer in the theme loader")

PART1 = [{"record_id": "a1", "text": BASE}, {"record_id": "a2", "text": OTHER}]
PART2 = [
    {"record_id": "b1", "text": NEAR},            # near duplicate of a1
    {"record_id": "b2", "text": BASE.upper()},    # exact duplicate of a1 (canonical hash)
    {"record_id": "b3", "text": THIRD},
    {"record_id": "b4", "text": FOURTH},
    {"record_id": "b5", "text": FOURTH + " again"},  # near duplicate within the partition
]


def _rules(result) -> dict[str, tuple[str, str]]:
    return {r: (rule, detail) for r, rule, detail in
            result.rejected.select("record_id", "rule", "detail").iter_rows()}


def test_two_partitions_keep_what_one_run_keeps():
    rec = recipe("pretraining", CFG)
    whole = curate(frame(PART1 + PART2).lazy(), rec)

    p1 = PartitionDedup("day1")
    first = curate(frame(PART1).lazy(), rec, partition=p1)
    assert sorted(p1.kept_entries["record_id"]) == ["a1", "a2"]
    assert p1.kept_entries["signature"].list.len().to_list() == [rec.curate.near_dedup.num_perm] * 2
    p2 = PartitionDedup("day2", prior=p1.kept_entries)
    second = curate(frame(PART2).lazy(), rec, partition=p2)

    kept = sorted([*first.kept["record_id"], *second.kept["record_id"]])
    assert kept == sorted(whole.kept["record_id"]) == ["a1", "a2", "b3", "b4"]
    rules = _rules(second)
    assert rules["b2"] == (EXACT_RULE, "day1:a1")
    assert rules["b1"] == (NEAR_RULE, "day1:a1")
    assert rules["b5"][0] == "near_duplicate"
    assert second.rows_in == second.kept.height + second.rejected.height
    # the index gets this partition's kept rows and its near duplicates, each with the kept
    # record it stands for: hashes, signatures and ids, no text
    entries = dict(zip(p2.kept_entries["record_id"], p2.kept_entries["kept_by"], strict=True))
    assert entries == {"b1": "day1:a1", "b3": "day2:b3", "b4": "day2:b4", "b5": "day2:b4"}
    assert "text" not in p2.kept_entries.columns


WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu amber basalt cobalt dune ember fjord granite harbor island jungle kelp lagoon "
         "meadow nectar orchid prairie quartz reef savanna tundra umber valley willow yarrow "
         "zephyr acorn birch cedar dogwood elm fir hazel ivy juniper").split()
SUFFIX = "one two three four five six seven eight".split()


def test_a_chain_through_a_dropped_near_duplicate_is_followed():
    """day1 keeps A; day2 drops B (near A); day3's C is near B but not near A: one run drops
    C (its cluster holds A), and so does day3 against the index, which remembers B."""
    a = " ".join(WORDS)
    b = " ".join(WORDS + SUFFIX)
    c = " ".join(WORDS[8:] + SUFFIX)
    rec = recipe("pretraining", CFG)
    parts = [[{"record_id": "a", "text": a}], [{"record_id": "b", "text": b}],
             [{"record_id": "c", "text": c}]]
    whole = curate(frame([r for p in parts for r in p]).lazy(), rec)
    assert sorted(whole.kept["record_id"]) == ["a"]

    index, kept = None, []
    for day, rows in enumerate(parts, start=1):
        dedup = PartitionDedup(f"day{day}", **({"prior": index} if index is not None else {}))
        kept += curate(frame(rows).lazy(), rec, partition=dedup).kept["record_id"].to_list()
        index = dedup.kept_entries if index is None else pl.concat([index, dedup.kept_entries])
        if day == 3:
            assert _rules(curate(frame(rows).lazy(), rec, partition=PartitionDedup(
                "day3", prior=index)))["c"] == (NEAR_RULE, "day1:a")
    assert kept == ["a"]
    # without the dropped B in the index, C would be kept: the chain is what drops it
    kept_only = index.filter(pl.col("kept_by") == pl.col("partition") + ":" + pl.col("record_id"))
    alone = curate(frame(parts[2]).lazy(), rec, partition=PartitionDedup("day3", prior=kept_only))
    assert alone.kept["record_id"].to_list() == ["c"]


def test_a_partition_is_not_matched_against_its_own_entries():
    rec = recipe("pretraining", CFG)
    p1 = PartitionDedup("day1")
    curate(frame(PART1).lazy(), rec, partition=p1)
    again = PartitionDedup("day1", prior=p1.kept_entries)  # rematerializing day1
    result = curate(frame(PART1).lazy(), rec, partition=again)
    assert sorted(result.kept["record_id"]) == ["a1", "a2"]
    assert again.prior.is_empty()


def test_without_partition_nothing_changes():
    rec = recipe("pretraining", CFG)
    whole = curate(frame(PART1 + PART2).lazy(), rec)
    assert not {EXACT_RULE, NEAR_RULE} & set(whole.rejected["rule"])
    assert not any(c.startswith("_") for c in whole.kept.columns)
