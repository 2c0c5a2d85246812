"""Deduplication across partitions: what earlier partitions kept, and matching a new one to it.

A partitioned dataset curates one partition at a time. To deduplicate as one run over all of
them would, each curated partition leaves in a per-dataset index one entry per record it kept,
and one per record it dropped as a near duplicate (one run clusters those too, so a later copy
linked to a kept text only through such a record is still found): the content hash (exact
duplicates), the MinHash signature and its LSH band keys (near duplicates), the record id, the
kept record it stands for and the partition key -- hashes and ids only, never text.

Matching a new partition (``PartitionDedup``):

- exact: a record whose content hash an earlier partition kept is rejected
  (``exact_duplicate_of_partition``, detail ``<partition>:<record id>``);
- near: the partition's records are clustered together with the index entries that share an
  LSH band key with one of them, by the same functions and settings as the one-run near
  dedup (``neardup``); a cluster holding an index entry keeps that entry, so its partition
  members are rejected (``near_duplicate_of_partition``).

Semantics: the first partition to keep a text wins. A full backfill runs partitions in key
order, so its result is deterministic and equals one run over all rows wherever both see the
same duplicate order (earlier keys sort first). Chains through a text an earlier partition
dropped for another reason than near duplication are not followed (one run removes such a text
before clustering too). What cannot match one run: a later text that links two texts earlier
partitions both kept (one run would keep only the first of the three; an earlier partition's
kept rows are never taken back). Rematerializing a partition replaces
its own entries and is never matched against itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ftdata_pipeline.config.models import NearDedupConfig
from ftdata_pipeline.records import RECORD_ID
from ftdata_pipeline.stages.curation import neardup
from ftdata_pipeline.stages.curation.filtering import Filter

EXACT_RULE = "exact_duplicate_of_partition"
NEAR_RULE = "near_duplicate_of_partition"
PRIOR_EXACT = "_prior_exact"  # working column: "<partition>:<record id>" of the kept original
PRIOR_NEAR = "_prior_near"
SIGNATURE = "_signature"  # working column: the record's MinHash signature (partitioned runs)

INDEX_SCHEMA: dict[str, pl.DataType] = {
    "partition": pl.String,
    RECORD_ID: pl.String,
    "content_hash": pl.String,
    # "<partition>:<record id>" of the kept record this entry stands for: itself, or for a
    # near duplicate the partition dropped, the record its cluster kept
    "kept_by": pl.String,
    "params": pl.String,  # the near-dedup settings the signature was made with
    "signature": pl.List(pl.UInt32),
    "bands": pl.List(pl.UInt64),
}

_BAND_SALT = np.uint64(0x9E3779B97F4A7C15)


def params_key(nd: NearDedupConfig) -> str:
    """The settings a signature depends on; entries made with others are not compared."""
    return json.dumps(
        {k: getattr(nd, k) for k in ("shingle_words", "num_perm", "bands", "rows", "seed")},
        sort_keys=True,
    )


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64: one key per LSH band, salted with the band number so equal rows in
    two different bands never share a key. Only used to look up index entries; candidate pairs
    themselves come from ``neardup.cluster_signatures``."""
    n = sig.shape[0]
    out = np.zeros((n, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            key = np.full(n, np.uint64(band + 1) * _BAND_SALT, dtype=np.uint64)
            for r in range(rows):
                key = key * _BAND_SALT + sig[:, band * rows + r].astype(np.uint64)
            out[:, band] = key
    return out


def _matrix(column: pl.Series, width: int) -> np.ndarray:
    """A list/array column of signatures as an (n, width) uint32 matrix, without Python lists."""
    if column.len() == 0:
        return np.zeros((0, width), dtype=np.uint32)
    return column.cast(pl.Array(pl.UInt32, width)).to_numpy().astype(np.uint32, copy=False)


def empty_index() -> pl.DataFrame:
    return pl.DataFrame(schema=INDEX_SCHEMA)


@dataclass
class PartitionDedup:
    """One partition's curation against the entries of every other partition.

    ``prior`` holds the other partitions' entries (ordered by partition key, then record id);
    after ``curate`` ran, ``kept_entries`` holds this partition's entries for its kept rows.
    """

    partition: str
    prior: pl.DataFrame = field(default_factory=empty_index)
    kept_entries: pl.DataFrame = field(default_factory=empty_index)
    matched: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prior = (
            self.prior.filter(pl.col("partition") != self.partition)
            .cast(INDEX_SCHEMA)
            .sort("partition", RECORD_ID)
        )

    # exact -------------------------------------------------------------------------------
    def mark_exact(self, df: pl.DataFrame) -> pl.DataFrame:
        """Add PRIOR_EXACT: the kept original of the row's content hash in another partition."""
        first = self.prior.unique("content_hash", keep="first", maintain_order=True)
        ref = dict(zip(first["content_hash"].to_list(), first["kept_by"].to_list(), strict=True))
        return df.with_columns(
            pl.col("content_hash").replace_strict(ref, default=None, return_dtype=pl.String)
            .alias(PRIOR_EXACT)
        )

    @staticmethod
    def exact_filter() -> Filter:
        return Filter(EXACT_RULE, pl.col(PRIOR_EXACT).is_not_null(), detail=pl.col(PRIOR_EXACT))

    # near --------------------------------------------------------------------------------
    def cluster(self, sig: np.ndarray, has: np.ndarray, nd: NearDedupConfig, priority: np.ndarray):
        """Cluster the partition's records (their MinHash signatures, and whether each has a
        token) with the index entries they may match.

        Returns (rep, sim, prior_ref, verified pairs joining clusters): per partition row, the
        index of its kept representative within the partition (itself when a cluster has no
        other member here), its estimated Jaccard with that representative, and the
        "<partition>:<record id>" of the index entry its cluster keeps (else null).
        """
        n = sig.shape[0]
        prior = self._candidates(sig, has, nd)
        m = prior.height
        prior_sig = _matrix(prior["signature"], nd.num_perm)
        stacked = np.vstack([prior_sig, sig])
        all_has = np.concatenate([np.ones(m, dtype=bool), has])
        found = neardup.cluster_signatures(
            stacked, all_has, bands=nd.bands, rows=nd.rows, threshold=nd.threshold
        )
        labels = found.labels
        # index entries first and first-kept: a cluster holding one keeps it (first partition
        # to keep a text wins), else the partition's own keep policy decides
        full_priority = np.concatenate([np.full(m, np.inf), priority.astype(np.float64)])
        rep = neardup.representatives(labels, full_priority)[m:]
        own = np.arange(n)
        from_prior = rep < m
        prior_ref = np.full(n, None, dtype=object)
        if m:
            refs = prior["kept_by"].to_numpy()
            prior_ref[from_prior] = refs[rep[from_prior]]
        local_rep = np.where(from_prior, own, rep - m)
        rep_global = np.where(from_prior, rep, m + local_rep)
        similarity = (sig == stacked[rep_global]).mean(axis=1) if n else np.zeros(0)
        self.matched["index_entries_compared"] = m
        self.matched["near_duplicates_of_partitions"] = int(from_prior.sum())
        return local_rep, similarity, prior_ref, int(found.pair_i.size)

    def _candidates(self, sig: np.ndarray, has: np.ndarray, nd: NearDedupConfig) -> pl.DataFrame:
        """Index entries made with the same settings sharing a band key with the partition."""
        usable = self.prior.filter(pl.col("params") == params_key(nd))
        if usable.is_empty() or not has.any():
            return usable.clear()
        keys = pl.Series(band_keys(sig[has], nd.bands, nd.rows).ravel(), dtype=pl.UInt64)
        hit = (
            usable.with_row_index("_i").select("_i", "bands").explode("bands")
            .filter(pl.col("bands").is_in(keys.implode()))["_i"].unique()
        )
        return usable.with_row_index("_i").filter(pl.col("_i").is_in(hit.implode())).drop("_i")

    @staticmethod
    def near_filter() -> Filter:
        return Filter(NEAR_RULE, pl.col(PRIOR_NEAR).is_not_null(), detail=pl.col(PRIOR_NEAR))

    # what this partition leaves in the index ----------------------------------------------
    def record_kept(
        self, kept: pl.DataFrame, nd: NearDedupConfig, near_dropped: pl.DataFrame | None = None
    ) -> None:
        """Entries for the rows the partition kept (signatures when near dedup ran), and for
        ``near_dropped`` (record id, content hash, signature, ``kept_by``)."""
        own = kept.select(
            RECORD_ID, "content_hash",
            (pl.lit(self.partition + ":") + pl.col(RECORD_ID)).alias("kept_by"),
            *([pl.col(SIGNATURE)] if SIGNATURE in kept.columns else []),
        )
        if near_dropped is not None and near_dropped.height and SIGNATURE in own.columns:
            own = pl.concat([own, near_dropped.select(own.columns)], how="vertical_relaxed")
        if SIGNATURE in own.columns and own.height:
            sig = _matrix(own[SIGNATURE], nd.num_perm)
            bands = pl.Series(band_keys(sig, nd.bands, nd.rows)).cast(pl.List(pl.UInt64))
            signature = pl.Series(sig).cast(pl.List(pl.UInt32))
            params = params_key(nd)
        else:
            bands = pl.Series([[]] * own.height, dtype=pl.List(pl.UInt64))
            signature = pl.Series([[]] * own.height, dtype=pl.List(pl.UInt32))
            params = ""
        self.kept_entries = pl.DataFrame({
            "partition": [self.partition] * own.height,
            RECORD_ID: own[RECORD_ID],
            "content_hash": own["content_hash"],
            "kept_by": own["kept_by"],
            "params": [params] * own.height,
            "signature": signature,
            "bands": bands,
        }, schema=INDEX_SCHEMA).sort(RECORD_ID)
