"""Decontamination: drop examples sharing a word n-gram with a configured evaluation set.

Both sides are lowercased and cut into word tokens (punctuation and case never hide a match).
Eval texts of at least ``ngram`` words contribute all their n-grams; shorter ones (typical
eval *prompts*) contribute their whole token sequence as one gram of its own length, if it has
at least ``min_eval_words`` tokens (the GPT-3 paper's rule). Records are cut into grams of
each length that occurs on the eval side and joined to them in Polars: no Python loop over
records or grams. A gram is compared by a 64-bit hash: each word is hashed once (Polars'
``hash`` with a fixed seed, stable within the pinned Polars version, which is all a single run
needs) and a gram's hash is a polynomial over its words' hashes in wrapping ``UInt64``
arithmetic, so no gram string is ever built. Records are processed in batches of rows, so
memory follows the batch, not the dataset.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ftdata_pipeline.config.models import DecontaminationConfig
from ftdata_pipeline.stages.curation.filtering import Filter
from ftdata_pipeline.stages.curation.views import ALL, words

_SEED = 0x5EED
_MULT = 0x100000001B3  # FNV-64 prime: mixes the word hashes position-wise
_IDX = "_didx"
_BATCH = 50_000  # records per batch of the record side: bounds the exploded word hashes
CONTAMINATED_BY, CONTAMINATED_GRAMS = "_contaminated_by", "_contaminated_grams"


def load_eval_texts(cfg: DecontaminationConfig, root: Path | None) -> pl.DataFrame:
    """(eval_id, text) for every configured field of every eval set."""
    frames = []
    for spec in cfg.eval_sets:
        path = Path(spec.path)
        if not path.is_absolute():
            path = (root or Path.cwd()) / path
        if not path.exists():
            raise FileNotFoundError(f"decontamination eval set not found: {spec.path}")
        df = pl.read_ndjson(path, infer_schema_length=None)
        missing = [f for f in spec.fields if f not in df.columns]
        if missing:
            raise ValueError(f"eval set {spec.path}: no field(s) {missing}")
        if spec.id_field and spec.id_field in df.columns:
            ident = pl.col(spec.id_field).cast(pl.String)
        else:
            ident = pl.lit(f"{path.name}:") + pl.int_range(pl.len()).cast(pl.String)
        for field in spec.fields:
            frames.append(df.select(ident.alias("eval_id"), pl.col(field).cast(pl.String).alias("text")))
    if not frames:
        return pl.DataFrame(schema={"eval_id": pl.String, "text": pl.String})
    return pl.concat(frames).drop_nulls()


def _word_hashes(texts: pl.Expr) -> pl.Expr:
    """Per text, the list of its word tokens' 64-bit hashes (hashed inside the list: no
    exploded string column is materialized)."""
    return words(texts).list.eval(pl.element().hash(_SEED))


def _grams(tokens: pl.DataFrame, n: int) -> pl.DataFrame:
    """All n-grams of exploded word hashes (columns _didx, h in order) as (_didx, gram hash)."""
    gram = pl.col("h")
    for j in range(1, n):
        gram = gram + pl.col("h").shift(-j) * pl.lit(pow(_MULT, j, 2**64), pl.UInt64)
    return (
        tokens.with_columns(
            gram.alias("gram"), (pl.col(_IDX).shift(-(n - 1)) == pl.col(_IDX)).alias("ok")
        )
        .filter(pl.col("ok"))
        .select(_IDX, "gram")
    )


def eval_grams(evals: pl.DataFrame, cfg: DecontaminationConfig) -> pl.DataFrame:
    """(eval_id, n, gram) for every eval text (see module docstring)."""
    toks = evals.with_columns(_word_hashes(pl.col("text")).alias("h")).with_columns(
        pl.col("h").list.len().alias("m")
    )
    out = [pl.DataFrame(schema={"eval_id": pl.String, "n": pl.Int64, "gram": pl.UInt64})]
    long = toks.filter(pl.col("m") >= cfg.ngram)
    short = toks.filter((pl.col("m") < cfg.ngram) & (pl.col("m") >= cfg.min_eval_words))
    # A long text contributes every n-gram; a short one its whole sequence, the single gram
    # of its own length.
    for n, part in [(cfg.ngram, long), *short.partition_by("m", as_dict=True).items()]:
        n = n[0] if isinstance(n, tuple) else n
        if not part.height:
            continue
        part = part.with_row_index(_IDX)
        g = _grams(part.select(_IDX, "h").explode("h"), n).join(
            part.select(_IDX, "eval_id"), on=_IDX
        )
        out.append(g.select("eval_id", pl.lit(n, pl.Int64).alias("n"), "gram"))
    return pl.concat(out).unique().sort("n", "gram", "eval_id")


def _hits(batch: pl.DataFrame, grams: pl.DataFrame, lengths: list[int]) -> list[pl.DataFrame]:
    tokens = batch.select(_IDX, _word_hashes(pl.col(ALL)).alias("h")).explode("h").drop_nulls("h")
    out = []
    for n in lengths:
        side = grams.filter(pl.col("n") == n).select("gram", "eval_id")
        out.append(_grams(tokens, n).join(side, on="gram").select(_IDX, "eval_id", "gram"))
    return out


def add_contamination(df: pl.DataFrame, grams: pl.DataFrame) -> pl.DataFrame:
    """Add the first matching eval id and the number of matching grams per record."""
    base = df.with_row_index(_IDX)
    hits = [pl.DataFrame(schema={_IDX: pl.UInt32, "eval_id": pl.String, "gram": pl.UInt64})]
    if grams.height and df.height:
        lengths = sorted(grams["n"].unique().to_list())
        for start in range(0, base.height, _BATCH):
            hits += _hits(base.slice(start, _BATCH).select(_IDX, ALL), grams, lengths)
    found = (
        pl.concat(hits)
        .group_by(_IDX)
        .agg(
            pl.col("eval_id").min().alias(CONTAMINATED_BY),
            pl.col("gram").n_unique().alias(CONTAMINATED_GRAMS),
        )
    )
    return base.join(found, on=_IDX, how="left", maintain_order="left").drop(_IDX)


def decontamination_filters() -> list[Filter]:
    return [
        Filter(
            "contaminated",
            pl.col(CONTAMINATED_BY).is_not_null(),
            pl.col(CONTAMINATED_GRAMS),
            pl.col(CONTAMINATED_BY),
        )
    ]
