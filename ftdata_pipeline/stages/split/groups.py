"""Groups of examples that must share a split.

Three kinds of link, strongest first:
1. Shared identity: the same conversation, duplicate cluster (curation) or content hash; the
   connected components of these links are always kept whole.
2. The same first user turn (normalized): answering one question two ways must not be
   learned from train and tested on test.
3. Near-duplicate inputs below curation's dedup threshold (Jaccard of word shingles >=
   ``split.group_near_duplicates``).

Links 2 and 3 are merged most similar first, and a near-duplicate merge that would make a
group larger than ``split.max_group_fraction`` of the records is skipped: templated data ("Firmware 4.0.14
broke ..." / "Firmware 5.1.3 broke ...") would otherwise chain into one group holding most of
the dataset. Skipped links are counted, and the leakage checks report what they leave.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ftdata_pipeline.config.models import SplitConfig
from ftdata_pipeline.records import RECORD_ID, SOURCE, SOURCE_KEY, conform
from ftdata_pipeline.stages.split.similarity import shingle_matrix, similar_pairs
from ftdata_pipeline.stages.split.slices import first_prompt, input_text, normalized

GROUP_KEY = "_group_key"
_LINKS = ("conversation_id", "dup_cluster_id", "content_hash")


def base_group_key() -> pl.Expr:
    """A record's own group key: its conversation, else its duplicate cluster, else itself."""
    return pl.coalesce(pl.col("conversation_id"), pl.col("dup_cluster_id"), pl.col(RECORD_ID))


def identity_groups(df: pl.DataFrame) -> pl.DataFrame:
    """Add GROUP_KEY: the smallest base key of the record's connected component.

    A near-duplicate cluster may span two conversations; the coalesced key alone would then
    let the cluster cross splits. Propagating the minimum key over every shared link until
    nothing changes merges such groups (vectorized label propagation).
    """
    df = df.with_columns(base_group_key().alias(GROUP_KEY))
    while True:
        before = df[GROUP_KEY]
        for link in _LINKS:
            df = df.with_columns(
                pl.when(pl.col(link).is_not_null())
                .then(pl.col(GROUP_KEY).min().over(link))
                .otherwise(pl.col(GROUP_KEY))
                .alias(GROUP_KEY)
            )
        if df[GROUP_KEY].equals(before):
            return df


class _Union:
    """Union-find over group keys with record counts; the smallest key names a group.

    ``pins``: the split a group is pinned to (records of a source other datasets read keep
    their own group's hash split); two groups pinned to different splits are never merged.
    """

    def __init__(self, sizes: dict[str, int], pins: dict[str, str | None]):
        self.parent = {k: k for k in sizes}
        self.size = dict(sizes)
        self.pin = dict(pins)

    def find(self, k: str) -> str:
        root = k
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[k] != root:
            self.parent[k], k = root, self.parent[k]
        return root

    def union(self, a: str, b: str, cap: int) -> str:
        """Merge; 'merged', 'together' (already), 'cap' or 'pinned' (refused, and why)."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return "together"
        if self.size[ra] + self.size[rb] > cap:
            return "cap"
        pa, pb = self.pin[ra], self.pin[rb]
        if pa is not None and pb is not None and pa != pb:
            return "pinned"
        lo, hi = sorted((ra, rb))
        self.parent[hi] = lo
        self.size[lo] += self.size[hi]
        self.pin[lo] = pa if pa is not None else pb
        return "merged"


def _chain(keys: pl.DataFrame, by: str) -> list[tuple[float, str, str]]:
    """Edges (1.0, first key, other key) linking every group that shares a value of ``by``."""
    linked = (
        keys.filter(pl.col(by).is_not_null() & (pl.col(by) != ""))
        .unique([by, GROUP_KEY])
        .group_by(by)
        .agg(pl.col(GROUP_KEY).sort())
        .filter(pl.col(GROUP_KEY).list.len() > 1)
        .sort(by)
    )
    return [(1.0, ks[0], k) for ks in linked[GROUP_KEY].to_list() for k in ks[1:]]


def similarity_groups(
    df: pl.DataFrame,
    kind: str,
    cfg: SplitConfig,
    pin_column: str | None = None,
    *,
    inputs: pl.Expr | None = None,
    prompts: pl.Expr | None = None,
) -> tuple[pl.DataFrame, dict]:
    """Merge identity groups linked by the same first prompt or near-duplicate inputs.

    ``pin_column``: per record, the split its group is pinned to (null: free); groups pinned
    to different splits stay apart, so a shared record keeps its split in every dataset.
    ``inputs`` / ``prompts``: what is compared (default: the kind's input and first prompt).
    """
    stats = {"merged": 0, "left_apart_by_size_cap": 0, "left_apart_by_pinned_split": 0}
    if df.is_empty() or (not cfg.group_prompts and cfg.group_near_duplicates is None):
        return df, stats
    keys = df.select(
        GROUP_KEY,
        (input_text(kind) if inputs is None else inputs).alias("_input"),
        normalized(first_prompt(kind) if prompts is None else prompts).alias("_prompt"),
    )
    edges: list[tuple[float, str, str]] = []
    if cfg.group_prompts:
        edges += _chain(keys, "_prompt")
    if cfg.group_near_duplicates is not None:
        edges += _chain(keys, "_input")  # identical inputs: similarity 1
        inputs = keys.group_by("_input").agg(pl.col(GROUP_KEY).min()).sort("_input")
        x = shingle_matrix(inputs["_input"].to_list(), cfg.leakage.shingle_words)
        pairs = similar_pairs(x, cfg.group_near_duplicates)
        owner = inputs[GROUP_KEY].to_numpy()
        edges += list(zip(pairs.sim.tolist(), owner[pairs.i].tolist(), owner[pairs.j].tolist()))
    sizes = dict(df.group_by(GROUP_KEY).len().iter_rows())
    cap = max(1, int(np.floor(cfg.max_group_fraction * df.height)))
    pins: dict[str, str | None] = dict.fromkeys(sizes)
    if pin_column is not None:
        pinned = df.filter(pl.col(pin_column).is_not_null()).group_by(GROUP_KEY).agg(
            pl.col(pin_column).first()
        )
        pins.update(dict(pinned.iter_rows()))
    uf = _Union(sizes, pins)
    names = {"merged": "merged", "cap": "left_apart_by_size_cap",
             "pinned": "left_apart_by_pinned_split"}
    for sim, a, b in sorted(edges, key=lambda e: (-e[0], e[1], e[2])):
        # The same prompt or input is one equivalence class, which cannot chain: uncapped.
        outcome = uf.union(a, b, cap if sim < 1.0 else df.height)
        if outcome in names:
            stats[names[outcome]] += 1
    roots = pl.DataFrame(
        {GROUP_KEY: list(sizes), "_root": [uf.find(k) for k in sizes]},
        schema={GROUP_KEY: pl.String, "_root": pl.String},
    )
    df = (
        df.join(roots, on=GROUP_KEY, how="left", maintain_order="left")
        .with_columns(pl.col("_root").alias(GROUP_KEY))
        .drop("_root")
    )
    return df, stats


def source_group_keys(raw: dict[str, pl.DataFrame], cfg: SplitConfig) -> pl.DataFrame:
    """(source, source_key, group key) over *all* rows of shared sources, whatever a dataset kept.

    The same grouping as a dataset's (identity, same prompt, near-duplicate input), computed
    from the source alone, so every dataset reading the source derives the same key for a
    record, and with it the same split, while near-duplicates of the source stay together.
    """
    frames = [conform(f).select(RECORD_ID, SOURCE, SOURCE_KEY, "conversation_id", "text",
                                "prompt", "messages")
              for _, f in sorted(raw.items())]
    if not frames:
        return pl.DataFrame(schema={SOURCE: pl.String, SOURCE_KEY: pl.String, GROUP_KEY: pl.String})
    df = conform(pl.concat(frames, how="diagonal_relaxed")).sort(RECORD_ID)
    user = input_text("chat_sft")
    df = identity_groups(df)
    df, _ = similarity_groups(
        df, "chat_sft", cfg,
        inputs=pl.coalesce(pl.col("text"), pl.col("prompt"), user).fill_null(""),
        prompts=pl.coalesce(pl.col("prompt"), first_prompt("chat_sft"), pl.col("text")),
    )
    return df.select(SOURCE, SOURCE_KEY, GROUP_KEY)
