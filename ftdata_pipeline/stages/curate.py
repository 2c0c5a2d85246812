"""The curated stage: shape, normalize, gate, filter, deduplicate and decontaminate records.

``curate()`` orders the steps of ``stages/curation/`` (one module per concern):

1. shape (kind-specific fields) and normalize (markup, mojibake, NFC, whitespace, boilerplate);
2. governance gates: licence allow-list, retention cutoff, consent;
3. content and length filters, then exact dedup on a normalized content hash;
4. quality heuristics, language identification, the stop-word rule, harmful content;
5. decontamination against evaluation sets;
6. near-duplicate removal (MinHash + LSH) last, so it only clusters surviving records and a
   record dropped for a cheaper, clearer reason is never reported as "near duplicate".

Steps 1-3 run in a first pass over the input, ``CURATE_ROWS`` records at a time; exact dedup
then needs only the content hashes; step 4-5 run in a second pass and leave each record's
MinHash signature; near dedup clusters the signatures and a third pass applies it. Records
between passes, kept rows and rejects are written as they are made (``stages/spill.py``), so
memory holds one batch plus thin per-record state (key ranks, hashes, signatures).

Every check is a named ``Filter``; its name is the reject ``rule`` and the key of its counts in
``stats["steps"]``. A record is rejected by the first rule it fails, so
``rows_in == rows_kept + rows_rejected`` by construction. Scores stay on kept rows as ``q_*``
columns. Stats hold counts, ids of rules and column names only, never text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from ftdata_pipeline.config.models import CurateConfig, RecipeConfig, SourceConfig
from ftdata_pipeline.records import (
    MESSAGE,
    RECORD_ID,
    SOURCE,
    SOURCE_KEY,
    TEXT_FIELDS,
    conform,
    sha256_hex,
)
from ftdata_pipeline.stages.base import REJECT_COLUMNS, StageResult, reject
from ftdata_pipeline.stages.curation import decontaminate, governance, language, neardup, quality, safety
from ftdata_pipeline.stages.curation.index import PRIOR_EXACT, PRIOR_NEAR, SIGNATURE, PartitionDedup
from ftdata_pipeline.stages.curation.filtering import STAGE, Filter, run_filters
from ftdata_pipeline.stages.curation.normalize import (
    count_controls,
    normalize_messages,
    normalize_text,
)
from ftdata_pipeline.stages.curation.views import NEAR, VIEW_COLUMNS, add_prose, add_views
from ftdata_pipeline.stages.spill import BUCKET, SEQ, Matrix, Parts, SortedRows

__all__ = ["STAGE", "curate", "normalize_text"]

# The fields the ALL view is made of, per kind (code_fields among them: no prose to judge).
_CONTENT_FIELDS = {
    "chat_sft": ("messages",),
    "preference": ("prompt", "response", "chosen"),
    "classification": ("text",),
    "pretraining": ("text",),
    "distillation": ("prompt",),  # the teacher's answers join at the labeled stage
}

# Working columns; dropped before anything leaves the stage.
_CHARS, _WORDS, _TURNS, _PROMPT_CHARS = "_chars", "_words", "_turns", "_prompt_chars"
_CHANGED, _CONTROLS = "_normalized_changed", "_control_chars"
_NEAR_SIM, _NEAR_REP, _POS = "_near_sim", "_near_rep", "_dedup_pos"
_WORKING = (
    _CHARS, _WORDS, _TURNS, _PROMPT_CHARS, _CHANGED, _CONTROLS, _NEAR_SIM, _NEAR_REP,
    decontaminate.CONTAMINATED_BY, decontaminate.CONTAMINATED_GRAMS, *VIEW_COLUMNS,
    PRIOR_EXACT, PRIOR_NEAR, SIGNATURE,
)
# The output order (of kept and rejected rows).
_ORDER = (RECORD_ID, SOURCE, SOURCE_KEY)
# Records read, judged and written at a time (see curate()).
CURATE_ROWS = 50_000
_COMPACT_ROWS = 1 << 16  # signature rows moved at a time when closing up near-dedup rows


def _shape(lf: pl.LazyFrame, recipe: RecipeConfig) -> pl.LazyFrame:
    """Fill the fields the kind's exporters read, from what the sources provided."""
    if recipe.kind != "chat_sft":
        return lf
    from_pair = pl.concat_list(
        [
            pl.struct(role=pl.lit("user"), content=pl.col("prompt")),
            pl.struct(role=pl.lit("assistant"), content=pl.col("response")),
        ]
    ).cast(pl.List(MESSAGE))
    build = (
        pl.col("messages").is_null() & pl.col("prompt").is_not_null() & pl.col("response").is_not_null()
    )
    exprs = [pl.when(build).then(from_pair).otherwise(pl.col("messages")).alias("messages")]
    if recipe.system_prompt is not None:
        # A system prompt the source itself carries is more specific than the recipe default.
        exprs.append(pl.col("system").fill_null(pl.lit(recipe.system_prompt)).alias("system"))
    return lf.with_columns(exprs)


def _controls(fields: list[str]) -> pl.Expr:
    """Control characters, escape sequences and bidi overrides in a row, before removal."""
    counts = [count_controls(pl.col(f)) for f in TEXT_FIELDS]
    counts.append(
        pl.col("messages").list.eval(count_controls(pl.element().struct.field("content")))
        .list.sum().fill_null(0)
    )
    return pl.sum_horizontal(counts)


def _normalize(lf: pl.LazyFrame, cfg: CurateConfig) -> pl.LazyFrame:
    fields = [*TEXT_FIELDS, "messages"]
    code = set(cfg.code_fields)
    new = {f: normalize_text(pl.col(f), cfg, code=f in code) for f in TEXT_FIELDS}
    new["messages"] = normalize_messages(pl.col("messages"), cfg, code="messages" in code)
    return (
        lf.with_columns(_controls(fields).alias(_CONTROLS))
        .with_columns(expr.alias(f"_new_{f}") for f, expr in new.items())
        .with_columns(
            pl.any_horizontal(pl.col(f).ne_missing(pl.col(f"_new_{f}")) for f in fields).alias(
                _CHANGED
            )
        )
        .with_columns(pl.col(f"_new_{f}").alias(f) for f in fields)
        .drop([f"_new_{f}" for f in fields])
    )


def _content_parts(kind: str) -> pl.Expr:
    """The kind's main content as one string, the input of the content hash."""
    if kind == "chat_sft":
        turns = pl.element().struct
        return pl.col("messages").list.eval(
            pl.concat_str(
                [turns.field("role").fill_null(""), turns.field("content").fill_null("")],
                separator="\x1f",
            )
        ).list.join("\x1e")
    if kind == "preference":
        return pl.concat_str([pl.col("prompt"), pl.col("response")], separator="\x1e")
    if kind == "distillation":
        return pl.col("prompt")
    return pl.col("text")


def _canonical(expr: pl.Expr) -> pl.Expr:
    """Case- and whitespace-insensitive form: near-identical copies hash alike."""
    return expr.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def _measure(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Length, word and turn counts of the kind's main content (0 where it is missing)."""
    words = r"\S+"
    if kind == "chat_sft":
        content = pl.element().struct.field("content").fill_null("")
        msgs = pl.col("messages")
        return df.with_columns(
            msgs.list.eval(content.str.len_chars()).list.sum().fill_null(0).alias(_CHARS),
            msgs.list.eval(content.str.count_matches(words)).list.sum().fill_null(0).alias(_WORDS),
            msgs.list.len().fill_null(0).alias(_TURNS),
        )
    # distillation: the prompts (the teacher's answers join at the labeled stage)
    main = {"preference": "response", "distillation": "prompt"}.get(kind, "text")
    out = df.with_columns(
        pl.col(main).str.len_chars().fill_null(0).alias(_CHARS),
        pl.col(main).str.count_matches(words).fill_null(0).alias(_WORDS),
    )
    if kind == "preference":
        out = out.with_columns(pl.col("prompt").str.len_chars().fill_null(0).alias(_PROMPT_CHARS))
    return out


def _missing_content(kind: str) -> Filter:
    if kind == "chat_sft":
        fails = pl.col("messages").is_null() | (pl.col("messages").list.len() == 0)
        detail = pl.lit("messages")
    elif kind == "preference":
        fails = pl.col("prompt").is_null() | pl.col("response").is_null()
        detail = pl.when(pl.col("prompt").is_null()).then(pl.lit("prompt")).otherwise(
            pl.lit("response")
        )
    else:
        field = "prompt" if kind == "distillation" else "text"
        fails = pl.col(field).is_null()
        detail = pl.lit(field)
    return Filter("missing_content", fails, detail=detail)


def _length_filters(kind: str, cfg: CurateConfig) -> list[Filter]:
    chars, words = pl.col(_CHARS), pl.col(_WORDS)
    if kind == "preference":
        # A ranked response is useless without the prompt it answers.
        empty = Filter(
            "empty",
            (chars == 0) | (pl.col(_PROMPT_CHARS) == 0),
            score=pl.lit(0),
            detail=pl.when(pl.col(_PROMPT_CHARS) == 0).then(pl.lit("prompt")).otherwise(
                pl.lit("response")
            ),
        )
    else:
        empty = Filter("empty", chars == 0, score=chars)
    filters = [
        empty,
        Filter("too_short", chars < cfg.min_chars, score=chars, detail=pl.lit(f"min_chars={cfg.min_chars}")),
        Filter("too_long", chars > cfg.max_chars, score=chars, detail=pl.lit(f"max_chars={cfg.max_chars}")),
        Filter("too_few_words", words < cfg.min_words, score=words, detail=pl.lit(f"min_words={cfg.min_words}")),
    ]
    if kind == "chat_sft":
        last_role = pl.col("messages").list.last().struct.field("role")
        filters.append(
            Filter(
                "too_few_turns",
                pl.col(_TURNS) < cfg.min_turns,
                score=pl.col(_TURNS),
                detail=pl.lit(f"min_turns={cfg.min_turns}"),
            )
        )
        if cfg.require_assistant_last:
            filters.append(
                Filter(
                    "last_turn_not_assistant",
                    last_role.ne_missing(pl.lit("assistant")),
                    detail=pl.lit("last role: ") + last_role.fill_null("null"),
                )
            )
        # A blank turn (e.g. an empty response) would teach the model to answer with nothing.
        blank_turns = pl.col("messages").list.eval(
            pl.element().struct.field("content").fill_null("").str.len_chars() == 0
        ).list.sum()
        filters.append(Filter("empty_turn", blank_turns > 0, score=blank_turns))
    return filters


def _add_hashes(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """content_hash and, for preference, prompt ids (dup_cluster_id: see ``_exact_clusters``)."""
    df = df.with_columns(sha256_hex(_canonical(_content_parts(kind))).alias("content_hash"))
    if kind == "preference":
        # Ranked responses without a prompt id are grouped by their prompt, so all pairs of one
        # prompt can later be built together and kept in one split.
        prompt_id = sha256_hex(pl.lit("prompt\x1f") + _canonical(pl.col("prompt")), 16)
        df = df.with_columns(pl.col("conversation_id").fill_null(prompt_id))
    return df


def _key_ranks(lf: pl.LazyFrame) -> tuple[int, np.ndarray, np.ndarray]:
    """Input rows; per input row its position in the dedup order and its output sort bucket.

    Read from the key columns alone (about 100 bytes a record). The dedup order (source,
    source_key, record_id) decides which duplicate is kept, whatever the input order; the
    output order is ``_ORDER``, written bucket by bucket (``spill.SortedRows``).
    """
    keys = lf.select(RECORD_ID, SOURCE, SOURCE_KEY).collect()
    n = keys.height
    rank = np.arange(n, dtype=np.int64)

    def ordered(*by: str) -> np.ndarray:
        # Row numbers in ``by`` order, ties in input order: no sorted copy of the key columns.
        stable = pl.arg_sort_by(*by, nulls_last=True, maintain_order=True)
        return keys.select(stable).to_series().to_numpy()

    pos = np.empty(n, dtype=np.int64)
    pos[ordered(SOURCE, SOURCE_KEY, RECORD_ID)] = rank
    bucket = np.empty(n, dtype=np.int64)
    bucket[ordered(*_ORDER)] = rank // CURATE_ROWS
    return n, pos, bucket


def _exact_clusters(hashes: pl.DataFrame, pos: np.ndarray) -> pl.DataFrame:
    """(SEQ, dup_cluster_id): per content hash, the first record in the dedup order."""
    return (
        hashes.with_columns(pl.Series(_POS, pos[hashes[SEQ].to_numpy()]))
        .sort(_POS)
        .select(SEQ, pl.col(RECORD_ID).first().over("content_hash").alias("dup_cluster_id"))
    )


def _priority(df: pl.DataFrame, cfg: CurateConfig) -> np.ndarray:
    """Which member of a near-duplicate cluster is kept: higher first, then the earliest."""
    keep = cfg.near_dedup.keep
    if keep == "longest":
        return df[NEAR].str.len_chars().fill_null(0).to_numpy().astype(np.float64)
    if keep == "best_quality" and quality.Q_QUALITY in df.columns:
        return df[quality.Q_QUALITY].fill_null(0.0).to_numpy().astype(np.float64)
    return np.zeros(df.height)


class _NearInputs:
    """What near dedup needs of the records that reach it: ids and MinHash signatures (448
    bytes a record at the default settings), never their texts, in the dedup order, where a
    cluster's lowest index is its earliest record.

    ``seqs``: the records that may reach it (pass 1's survivors). Each gets its row of one
    signature array up front, at its rank in the dedup order, and each batch signs straight
    into its rows: gathering per-batch arrays and copying them into order held the signatures
    twice at the corpus's largest moment (+0.7 GB on two million tickets). Rows of records a
    later rule drops stay unwritten and are closed up at the end, in place. With a ``spill``
    folder the array is a file and memory holds a quarter of it (``neardup.
    SpilledSignatures``): the signatures were the stage's largest state, linear in the corpus.
    """

    def __init__(
        self, cfg: CurateConfig, seqs: np.ndarray, pos: np.ndarray, spill: Path | None
    ) -> None:
        self.nd = cfg.near_dedup
        self.cfg = cfg
        order = np.argsort(pos[seqs], kind="stable")
        self.seqs = seqs[order]  # per row, its record
        self.row = np.full(pos.size, -1, dtype=np.int64)  # per record (SEQ), its row
        self.row[self.seqs] = np.arange(order.size)
        shape = (order.size, self.nd.num_perm)
        self.sig = Matrix(spill, "signatures", shape, np.uint32)
        self.sketch = np.empty(shape, dtype=np.uint8) if self.sig.mapped else None
        self.has = np.zeros(order.size, dtype=bool)
        self.priority = np.zeros(order.size)
        self.filled = np.zeros(order.size, dtype=bool)
        self.ids: list[tuple[np.ndarray, pl.Series]] = []

    def add(self, df: pl.DataFrame) -> None:
        rows = self.row[df[SEQ].to_numpy()]
        if (rows < 0).any():
            raise ValueError("near dedup: a record that did not pass the first pass reached it")
        neardup.sign_into(df[NEAR], self.nd.shingle_words, self.nd.seed, self.sig.array,
                          self.has, rows, self.sketch)
        self.sig.release()
        self.priority[rows] = _priority(df, self.cfg)
        self.filled[rows] = True
        self.ids.append((rows, df[RECORD_ID]))

    def in_dedup_order(self):
        """(SEQ, record ids, signatures, has tokens, priority) of the records that reached it;
        the signatures are an array, or ``SpilledSignatures`` with a spill folder."""
        keep = np.flatnonzero(self.filled)
        sig, sketch = self.sig.array, self.sketch
        # In place, a block at a time: the k-th kept row comes from row keep[k] >= k, so a
        # block's sources lie at or after its destination and after every earlier block's.
        for start in range(0, keep.size, _COMPACT_ROWS):
            src = keep[start : start + _COMPACT_ROWS]
            sig[start : start + src.size] = sig[src]
            if sketch is not None:
                sketch[start : start + src.size] = sketch[src]
            self.sig.release()
        del sig
        signatures = self.sig.first_rows(keep.size)  # in memory, the unused tail is given back
        if sketch is not None:
            sketch.resize((keep.size, sketch.shape[1]), refcheck=False)
            signatures = neardup.SpilledSignatures(self.sig, sketch)
        rows = np.concatenate([r for r, _ in self.ids]) if self.ids else np.zeros(0, np.int64)
        ids = (pl.concat([i for _, i in self.ids]) if self.ids
               else pl.Series(RECORD_ID, [], dtype=pl.String))
        ids = ids.gather(np.argsort(rows, kind="stable"))  # rows are ``keep``, unordered
        self.ids, self.sketch = [], None
        return self.seqs[keep], ids, signatures, self.has[keep], self.priority[keep]


def _near_dedup(
    inputs: _NearInputs, cfg: CurateConfig, partition: PartitionDedup | None
) -> tuple[pl.DataFrame, dict]:
    """Cluster near duplicates: per record (SEQ), its cluster's kept record and similarity.

    With ``partition``, the rows are clustered together with what other partitions kept
    (``curation/index.py``); rows whose cluster an earlier partition keeps get ``PRIOR_NEAR``,
    and every row its ``SIGNATURE`` for the index.
    """
    nd = cfg.near_dedup
    seqs, ids, sig, has, priority = inputs.in_dedup_order()
    n = seqs.size
    extra: list[pl.Series] = []
    if partition is not None:
        # a partition is clustered with the index entries it may match, in memory
        if isinstance(sig, neardup.SpilledSignatures):
            sig = sig.in_memory()
        rep, sim, prior_ref, verified = partition.cluster(sig, has, nd, priority)
        extra = [
            pl.Series(PRIOR_NEAR, prior_ref.tolist(), dtype=pl.String),
            pl.Series(SIGNATURE, sig),  # (rows, num_perm) -> an Array column, no Python lists
        ]
        clusters_of = rep
    else:
        found = neardup.cluster_signatures(
            sig, has, bands=nd.bands, rows=nd.rows, threshold=nd.threshold
        )
        rep = neardup.representatives(found.labels, priority)
        sim = neardup.similarity(sig, np.arange(n), rep) if n else np.zeros(0)
        clusters_of, verified = found.labels, int(found.pair_i.size)
    near = pl.DataFrame([
        pl.Series(SEQ, seqs, dtype=pl.Int64),
        ids.gather(rep).alias(_NEAR_REP),
        pl.Series(_NEAR_SIM, sim, dtype=pl.Float64),
        *extra,
    ])
    del sig
    inputs.sig.discard()
    clusters = int(np.unique(clusters_of[rep != np.arange(n)]).size) if n else 0
    # verified pairs that joined two clusters (pairs inside a cluster are not re-verified)
    return near, {"verified_pairs_joining": verified, "clusters": clusters}


def _per_record_rules(
    df: pl.DataFrame, cfg: CurateConfig, kind: str, grams, run
) -> pl.DataFrame:
    """Views, quality, language, stop words, harm and decontamination of some records."""
    df = add_views(df, kind)
    df = add_prose(df, all_is_code=bool(set(cfg.code_fields) & set(_CONTENT_FIELDS[kind])))
    if cfg.quality.enabled:
        df = run(quality.add_quality_scores(df, cfg.quality), quality.quality_filters(cfg.quality, kind))
    if cfg.language.enabled:
        df = run(language.add_language(df, cfg.language), language.language_filters(cfg.language))
    if cfg.quality.enabled:
        df = run(df, quality.stop_words_filter(cfg.quality, language.english_expr(df)))
    if cfg.harmful.enabled:
        df = run(safety.add_harm(df, cfg.harmful), safety.harmful_filters(cfg.harmful))
    if grams is not None:
        df = run(decontaminate.add_contamination(df, grams), decontaminate.decontamination_filters())
    return df


def curate(
    records: pl.LazyFrame,
    recipe: RecipeConfig,
    sources: dict[str, SourceConfig] | None = None,
    *,
    root: Path | None = None,
    partition: PartitionDedup | None = None,
    spill: Path | None = None,
) -> StageResult:
    """Curate a recipe's records (see module docstring).

    ``sources`` (name -> config) enables the licence and retention gates; ``root`` resolves
    relative eval-set paths (default: the working directory). ``partition``: the records are
    one partition of the dataset, deduplicated also against what other partitions kept; its
    ``kept_entries`` are set to this partition's index entries. ``spill``: an empty directory
    (restricted: it holds raw records); the records between passes and the output are written
    there, and ``kept`` and ``rejected`` are scans of it. Without it they stay in memory.

    Memory: the records are read, judged and written ``CURATE_ROWS`` at a time, in three
    passes (per-record rules; exact dedup; near dedup). Between passes only thin state is held:
    each record's key ranks, the content hashes and the MinHash signatures. On a million
    tickets the whole-frame version peaked at 3.7 GB, most of it texts and their views.
    """
    cfg, kind = recipe.curate, recipe.kind
    lf = conform(records)
    rows_in, pos, bucket = _key_ranks(lf)
    as_of, as_of_from = governance.resolve_as_of(cfg)
    refused = governance.refused_sources(recipe.governance, sources)
    folder = (lambda name: spill / name) if spill is not None else (lambda name: None)
    kept_rows = SortedRows(folder("kept"), list(_ORDER))
    rejected_rows = SortedRows(folder("rejected"), list(_ORDER))

    steps: dict[str, dict[str, int]] = {
        "shape": {"in": rows_in, "dropped": 0},
        "normalize": {"in": rows_in, "dropped": 0},
    }

    def run(frame: pl.DataFrame, filters: list[Filter], dropped_out: list | None = None):
        """Apply filters to one batch: counts add up in ``steps``, rejects are stored."""
        batch_steps: dict[str, dict[str, int]] = {}
        dropped: list[pl.DataFrame] = []
        frame = run_filters(frame, filters, batch_steps, dropped)
        for name, counts in batch_steps.items():
            total = steps.setdefault(name, {"in": 0, "dropped": 0})
            total["in"] += counts["in"]
            total["dropped"] += counts["dropped"]
        for r in dropped:
            if dropped_out is not None:
                dropped_out.append(r)
            # Rejects carry the record as it was when dropped, without working columns.
            rejected_rows.add(conform(r.drop(*_WORKING, *REJECT_COLUMNS, strict=False))
                              .hstack(r.select(REJECT_COLUMNS)))
        return frame

    # Pass 1: shape, normalize, gates, content and length filters, content hash.
    normalized_changed = control_chars_removed = 0
    hashes: list[pl.DataFrame] = []
    first = Parts(folder("pass1"))
    for start in range(0, max(rows_in, 1), CURATE_ROWS):
        batch = _normalize(_shape(lf.slice(start, CURATE_ROWS), recipe), cfg).collect()
        seq = np.arange(start, start + batch.height, dtype=np.int64)
        batch = batch.with_columns(pl.Series(SEQ, seq), pl.Series(BUCKET, bucket[seq]))
        normalized_changed += int(batch[_CHANGED].sum() or 0)
        control_chars_removed += int(batch[_CONTROLS].sum() or 0)
        batch = run(batch, governance.governance_filters(cfg, recipe.governance, sources, as_of))
        batch = run(batch, [_missing_content(kind)])
        batch = run(_measure(batch, kind), _length_filters(kind, cfg))
        batch = _add_hashes(batch, kind)
        if partition is not None and cfg.dedup != "none":
            batch = run(partition.mark_exact(batch), [partition.exact_filter()])
        hashes.append(batch.select(SEQ, RECORD_ID, "content_hash"))
        first.add(batch)
    clusters = _exact_clusters(pl.concat(hashes), pos)
    del hashes

    # Pass 2: exact dedup, then the per-record rules (views, quality, language, stop words,
    # harm, decontamination); only the near-duplicate signatures stay for the last step.
    eval_items, grams = 0, None
    if cfg.decontamination.eval_sets:
        evals = decontaminate.load_eval_texts(cfg.decontamination, root)
        eval_items = evals["eval_id"].n_unique()
        grams = decontaminate.eval_grams(evals, cfg.decontamination)
    near_on = cfg.near_dedup.enabled and cfg.dedup != "none"
    near_inputs = (_NearInputs(cfg, clusters[SEQ].to_numpy(), pos, folder("near"))
                   if near_on else None)
    second = Parts(folder("pass2"))
    harmful_flagged = 0
    for batch in first.drain():
        batch = batch.drop("dup_cluster_id").join(clusters, on=SEQ, how="left",
                                                  maintain_order="left")
        if cfg.dedup == "exact":
            dedup = Filter(
                "exact_duplicate",
                pl.col(RECORD_ID) != pl.col("dup_cluster_id"),
                detail=pl.col("dup_cluster_id"),
            )
            batch = run(batch, [dedup])
        batch = _per_record_rules(batch, cfg, kind, grams, run)
        if safety.Q_HARMFUL_FLAG in batch.columns:
            harmful_flagged += int(batch[safety.Q_HARMFUL_FLAG].sum() or 0)
        if near_on:
            near_inputs.add(batch)
        second.add(batch.drop(VIEW_COLUMNS, strict=False))
    del clusters

    # Pass 3: near dedup over the signatures, then its filter and the output, part by part.
    near, near_stats = None, {}
    if near_on:
        near, near_stats = _near_dedup(near_inputs, cfg, partition)
    del near_inputs
    # a partition's near duplicates (and its kept rows' keys) go to its dedup index
    near_dropped: list[pl.DataFrame] | None = [] if partition is not None else None
    kept_entries: list[pl.DataFrame] = []
    template = None
    for batch in second.drain():
        if near is not None:
            batch = batch.join(near, on=SEQ, how="left", maintain_order="left").with_columns(
                # Exact-dedup clusters are already collapsed to one survivor each: the near
                # cluster's representative now stands for all of them.
                pl.when(pl.col(_NEAR_REP) != pl.col(RECORD_ID))
                .then(pl.col(_NEAR_REP))
                .otherwise(pl.col("dup_cluster_id"))
                .alias("dup_cluster_id")
            )
            if partition is not None:
                batch = run(batch, [partition.near_filter()], near_dropped)
            near_filter = Filter(
                "near_duplicate",
                pl.col(_NEAR_REP) != pl.col(RECORD_ID),
                score=pl.col(_NEAR_SIM),
                detail=pl.col(_NEAR_REP),
            )
            batch = run(batch, [near_filter], near_dropped)
        if partition is not None:
            kept_entries.append(batch.select(RECORD_ID, "content_hash",
                                             *([SIGNATURE] if SIGNATURE in batch.columns else [])))
        out = conform(batch.drop(*_WORKING, strict=False))
        template = out.drop(SEQ, BUCKET).clear()
        kept_rows.add(out)
    del near

    if partition is not None:
        # near duplicates dropped here stay in the index: a later copy may link through them
        dropped = [
            r.select(RECORD_ID, "content_hash", SIGNATURE, pl.coalesce(
                PRIOR_NEAR, pl.lit(partition.partition + ":") + pl.col(_NEAR_REP)
            ).alias("kept_by"))
            for r in near_dropped or []
        ]
        partition.record_kept(pl.concat(kept_entries), cfg.near_dedup,
                              pl.concat(dropped) if dropped else None)
        near_stats |= partition.matched
    kept = kept_rows.sorted(template)
    rejected = rejected_rows.sorted(reject(template, stage="", rule=""))
    return StageResult(
        kept=kept,
        rejected=rejected,
        rows_in=rows_in,
        stats={
            "steps": steps,
            "normalized_changed": normalized_changed,
            # terminal escapes, control and bidi-override characters removed from the texts
            "control_chars_removed": control_chars_removed,
            "governance": {
                "as_of": as_of.isoformat(),
                "as_of_from": as_of_from,
                "sources_checked": sources is not None,
                "allowed_licences": (
                    None
                    if recipe.governance.allowed_licences is None
                    else list(recipe.governance.allowed_licences)
                ),
                "refused_sources": refused,
            },
            "near_dedup": near_stats,
            # kept rows the harmful-content model flagged (action: flag)
            "harmful_flagged": harmful_flagged,
            "decontamination": {"eval_items": eval_items},
        },
    )
