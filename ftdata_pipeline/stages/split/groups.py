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

from collections.abc import Callable, Iterator

import numpy as np
import polars as pl

from ftdata_pipeline.config.models import SplitConfig
from ftdata_pipeline.records import RECORD_ID, SOURCE, SOURCE_KEY, conform
from ftdata_pipeline.stages.split.similarity import (
    distinct_texts,
    shingle_matrix,
    similar_pairs,
)
from ftdata_pipeline.stages.split.slices import first_prompt, input_text, normalized

GROUP_KEY = "_group_key"
# Links merged at a time: their similarities and group numbers are Python objects only then
# (~100 bytes a link; a million inputs make millions of links).
_UNION_BATCH = 100_000
_LINKS = ("conversation_id", "dup_cluster_id", "content_hash")
_LINK_CHUNK = 1 << 16  # links filtered at a time (masks and selections: ~1 MB)
_SORT_LINKS = 1 << 20  # links below similarity 1 sorted at once (~40 MB of temporaries)


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
    """Union-find over group numbers (their keys' sorted order) with record counts; the
    smallest number, i.e. the smallest key, names a group.

    ``pins``: the split a group is pinned to (records of a source other datasets read keep
    their own group's hash split); two groups pinned to different splits are never merged.
    Numbers, not keys: at a million inputs the links run to millions.
    """

    def __init__(self, sizes: list[int], pins: list[str | None]):
        self.parent = list(range(len(sizes)))
        self.size = list(sizes)
        self.pin = list(pins)

    def find(self, k: int) -> int:
        parent = self.parent
        root = k
        while parent[root] != root:
            root = parent[root]
        while parent[k] != root:
            parent[k], k = root, parent[k]
        return root

    def union(self, a: int, b: int, cap: int) -> str:
        """Merge; 'merged', 'together' (already), 'cap' or 'pinned' (refused, and why)."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return "together"
        if self.size[ra] + self.size[rb] > cap:
            return "cap"
        pa, pb = self.pin[ra], self.pin[rb]
        if pa is not None and pb is not None and pa != pb:
            return "pinned"
        lo, hi = (ra, rb) if ra < rb else (rb, ra)
        self.parent[hi] = lo
        self.size[lo] += self.size[hi]
        self.pin[lo] = pa if pa is not None else pb
        return "merged"


def _chain(keys: pl.DataFrame, by: str) -> tuple[np.ndarray, np.ndarray]:
    """Edges (first group, other group) linking every group number that shares a value of ``by``."""
    return _linked(keys.filter(pl.col(by).is_not_null() & (pl.col(by) != "")), by)


def _linked(keys: pl.DataFrame, by: str) -> tuple[np.ndarray, np.ndarray]:
    linked = (
        keys.unique([by, "_g"])
        .group_by(by)
        .agg(pl.col("_g").sort())
        .filter(pl.col("_g").list.len() > 1)
        .select(pl.col("_g").list.first().alias("_a"), pl.col("_g").list.slice(1).alias("_b"))
        .explode("_b")
    )
    return linked["_a"].to_numpy().astype(np.int32), linked["_b"].to_numpy().astype(np.int32)


def _id_chain(values: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_chain`` over integer values (a distinct input's number): no copy of the texts."""
    return _linked(pl.DataFrame({"_v": values, "_g": g}), "_v")


class _Edges:
    """Links between group numbers with their similarity, given out most similar first.

    Links within one group are left out. ``add`` takes the arrays it is given (they are
    compacted in place); ``ordered`` gives the links in batches, in the order (-similarity,
    a, b), without joining the parts: every link of similarity 1 first (as ordered keys, 8
    bytes a link), then the others a range of similarities at a time (at most ~``_SORT_LINKS``
    links sorted at once). At ~15M near-duplicate links, joining the parts into new arrays
    and sorting all of them by index held the links twice over (~40 bytes a link at once).
    """

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray | float, np.ndarray, np.ndarray]] = []

    def add(self, sim: np.ndarray | float, a: np.ndarray, b: np.ndarray) -> None:
        """Links (a, b) with their similarity (one for all, or one each); takes the arrays."""
        kept = 0
        for start, stop in _chunks(a.size):  # masks and selections of one chunk at a time
            apart = a[start:stop] != b[start:stop]
            n = int(np.count_nonzero(apart))
            # kept <= start: a chunk is read before anything is written over it
            if np.ndim(sim) != 0:
                sim[kept : kept + n] = sim[start:stop][apart]
            a[kept : kept + n] = a[start:stop][apart]
            b[kept : kept + n] = b[start:stop][apart]
            kept += n
        self._parts.append((sim if np.ndim(sim) == 0 else sim[:kept], a[:kept], b[:kept]))

    def ordered(self, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(similarity, a, b) of every link, ``batch`` at a time, in the order (-sim, a, b)."""
        ones = []
        for sim, a, b in self._parts:
            for start, stop in _chunks(a.size):
                top = slice(start, stop)
                if np.ndim(sim) != 0:
                    top = start + np.flatnonzero(sim[start:stop] == 1.0)
                ones.append((a[top].astype(np.uint64) << np.uint64(32))
                            | b[top].astype(np.uint64))
        keys = np.sort(np.concatenate(ones)) if ones else np.empty(0, dtype=np.uint64)
        del ones
        for start in range(0, keys.size, batch):
            part = keys[start : start + batch]
            yield (np.ones(part.size), (part >> np.uint64(32)).astype(np.int32),
                   (part & np.uint64(0xFFFFFFFF)).astype(np.int32))
        del keys
        near = [(s, a, b) for s, a, b in self._parts if np.ndim(s) != 0]
        self._parts.clear()
        if len(near) == 1:
            sim, a, b = near.pop()
        elif near:
            sim, a, b = (np.concatenate(arrays) for arrays in zip(*near, strict=True))
            near.clear()
        else:
            return
        for lo, hi in _similarity_ranges(sim, _SORT_LINKS):
            at = np.concatenate([
                start + np.flatnonzero((sim[start:stop] >= lo) & (sim[start:stop] <= hi))
                for start, stop in _chunks(sim.size)
            ])
            s, x, y = sim[at], a[at], b[at]
            order = np.lexsort((y, x, -s))
            for start in range(0, order.size, batch):
                pick = order[start : start + batch]
                yield s[pick], x[pick], y[pick]


def _similarity_ranges(sim: np.ndarray, size: int) -> Iterator[tuple[float, float]]:
    """(lowest, highest) similarity of consecutive ranges below 1, highest first, each
    holding ~``size`` links (a value is never split: one value may hold more)."""
    values, counts = [], []
    for start, stop in _chunks(sim.size):
        part = sim[start:stop]
        v, c = np.unique(part[part < 1.0], return_counts=True)
        values.append(v)
        counts.append(c)
    v, inverse = np.unique(np.concatenate(values or [sim[:0]]), return_inverse=True)
    if not v.size:
        return
    c = np.bincount(inverse, weights=np.concatenate(counts))
    v, c = v[::-1], c[::-1]  # highest first
    bucket = (np.cumsum(c) - c) // size  # links before each value, in ranges of ``size``
    edges = np.flatnonzero(np.diff(bucket)) + 1
    for first, last in zip(np.concatenate(([0], edges)).tolist(),
                           (np.concatenate((edges, [v.size])) - 1).tolist(), strict=True):
        yield float(v[last]), float(v[first])


def _chunks(n: int, size: int = _LINK_CHUNK) -> Iterator[tuple[int, int]]:
    return ((start, min(start + size, n)) for start in range(0, n, size))


def _gather(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` written over ``index`` (same dtype), a chunk at a time: no second
    array of the index's size."""
    for start, stop in _chunks(index.size):
        index[start:stop] = table[index[start:stop]]
    return index


def similarity_groups(
    df: pl.DataFrame,
    kind: str,
    cfg: SplitConfig,
    pin_column: str | None = None,
    *,
    inputs: pl.Expr | None = None,
    prompts: pl.Expr | None = None,
    texts: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
) -> tuple[pl.DataFrame, dict]:
    """Merge identity groups linked by the same first prompt or near-duplicate inputs.

    ``pin_column``: per record, the split its group is pinned to (null: free); groups pinned
    to different splits stay apart, so a shared record keeps its split in every dataset.
    ``inputs`` / ``prompts``: what is compared (default: the kind's input and first prompt).
    ``texts``: gives them instead, as the columns ``_input`` and ``_prompt`` for the frame's
    rows (when ``df`` holds no content: the stage put it aside). They are dropped before the
    search, which then holds only the shingle matrix.
    """
    stats: dict = {"merged": 0, "left_apart_by_size_cap": 0, "left_apart_by_pinned_split": 0}
    if df.is_empty() or (not cfg.group_prompts and cfg.group_near_duplicates is None):
        return df, stats
    groups = df.group_by(GROUP_KEY).len().sort(GROUP_KEY).with_row_index("_g")
    if texts is None:
        keys = df.select(
            (input_text(kind) if inputs is None else inputs).alias("_input"),
            normalized(first_prompt(kind) if prompts is None else prompts).alias("_prompt"),
        )
    else:
        keys = texts(df).select("_input", "_prompt")
    keys = keys.with_columns(df[GROUP_KEY]).join(
        groups.select(GROUP_KEY, "_g"), on=GROUP_KEY, how="left", maintain_order="left"
    )
    edges = _Edges()
    if cfg.group_prompts:
        edges.add(1.0, *_chain(keys, "_prompt"))
    column, g = keys["_input"], keys["_g"].to_numpy().astype(np.int32)
    del keys  # the texts are in ``column`` alone from here, dropped before the search
    if cfg.group_near_duplicates is not None:
        # The distinct inputs as positions in the frame (no copy of the texts), in text order
        rows, inverse = distinct_texts(column)
        owner = np.full(rows.size, np.iinfo(np.int32).max, dtype=np.int32)
        np.minimum.at(owner, inverse, g)  # each input's smallest group
        filled = (column.str.len_bytes() > 0).fill_null(False).to_numpy()  # "" links nothing
        edges.add(1.0, *_id_chain(inverse[filled], g[filled]))  # identical inputs: similarity 1
        del inverse, g, filled
        x = shingle_matrix(column, cfg.leakage.shingle_words, rows=rows)
        del column, rows
        pairs = similar_pairs(x, cfg.group_near_duplicates)
        del x
        stats["near_duplicate_pairs"] = len(pairs)
        stats["near_duplicate_search"] = "exact" if pairs.exact else "lsh"
        edges.add(pairs.sim, _gather(owner, pairs.i), _gather(owner, pairs.j))
        del pairs
    else:
        del column, g
    pins: list[str | None] = [None] * groups.height
    if pin_column is not None:
        pinned = (
            df.filter(pl.col(pin_column).is_not_null())
            .group_by(GROUP_KEY)
            .agg(pl.col(pin_column).first())
            .join(groups, on=GROUP_KEY)
        )
        for g, pin in pinned.select("_g", pin_column).iter_rows():
            pins[g] = pin
    uf = _Union(groups["len"].to_list(), pins)
    cap = max(1, int(np.floor(cfg.max_group_fraction * df.height)))
    names = {"merged": "merged", "cap": "left_apart_by_size_cap",
             "pinned": "left_apart_by_pinned_split"}
    # most similar first; group numbers follow their keys' order, so ties break by key
    for sims, a, b in edges.ordered(_UNION_BATCH):  # Python numbers for one batch at a time
        for s_, x_, y_ in zip(sims.tolist(), a.tolist(), b.tolist(), strict=True):
            # The same prompt or input is one equivalence class, which cannot chain: uncapped.
            outcome = uf.union(x_, y_, cap if s_ < 1.0 else df.height)
            if outcome in names:
                stats[names[outcome]] += 1
    root_of = pl.Series([uf.find(g) for g in range(groups.height)], dtype=pl.Int64)
    roots = groups.select(GROUP_KEY, pl.col(GROUP_KEY).gather(root_of).alias("_root_key"))
    df = (
        df.join(roots, on=GROUP_KEY, how="left", maintain_order="left")
        .with_columns(pl.col("_root_key").alias(GROUP_KEY))
        .drop("_root_key")
    )
    return df, stats


def source_group_keys(raw: dict[str, pl.DataFrame], cfg: SplitConfig) -> pl.DataFrame:
    """(source, source_key, conversation_id, group key) over *all* rows of shared sources,
    whatever a dataset kept.

    The same grouping as a dataset's (identity, same prompt, near-duplicate input), computed
    from each source alone, so every dataset reading the source derives the same key for a
    record, and with it the same split, while near-duplicates of the source stay together.
    Each source is grouped on its own: grouped together, a record's key would depend on which
    other shared sources a dataset happens to read (a link to a near-duplicate there, the size
    cap), and two datasets could pin it to different splits.
    """
    parts = [_one_source_group_keys(frame, cfg) for _, frame in sorted(raw.items())]
    if not parts:
        return pl.DataFrame(schema={SOURCE: pl.String, SOURCE_KEY: pl.String,
                                    "conversation_id": pl.String, GROUP_KEY: pl.String})
    return pl.concat(parts)


def _one_source_group_keys(frame: pl.DataFrame, cfg: SplitConfig) -> pl.DataFrame:
    df = conform(conform(frame).select(RECORD_ID, SOURCE, SOURCE_KEY, "conversation_id", "text",
                                       "prompt", "messages")).sort(RECORD_ID)
    user = input_text("chat_sft")
    df = identity_groups(df)
    df, _ = similarity_groups(
        df, "chat_sft", cfg,
        inputs=pl.coalesce(pl.col("text"), pl.col("prompt"), user).fill_null(""),
        prompts=pl.coalesce(pl.col("prompt"), first_prompt("chat_sft"), pl.col("text")),
    )
    return df.select(SOURCE, SOURCE_KEY, "conversation_id", GROUP_KEY)
