"""The curated stage: shape, normalize, gate, filter, deduplicate and decontaminate records.

``curate()`` orders the steps of ``stages/curation/`` (one module per concern):

1. shape (kind-specific fields) and normalize (markup, mojibake, NFC, whitespace, boilerplate);
2. governance gates: licence allow-list, retention cutoff, consent;
3. content and length filters, then exact dedup on a normalized content hash;
4. quality heuristics, language identification, the stop-word rule, harmful content;
5. decontamination against evaluation sets;
6. near-duplicate removal (MinHash + LSH) last, so it only clusters surviving records and a
   record dropped for a cheaper, clearer reason is never reported as "near duplicate".

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
from ftdata_pipeline.stages.base import StageResult, concat_rejects
from ftdata_pipeline.stages.curation import decontaminate, governance, language, neardup, quality, safety
from ftdata_pipeline.stages.curation.index import PRIOR_EXACT, PRIOR_NEAR, SIGNATURE, PartitionDedup
from ftdata_pipeline.stages.curation.filtering import STAGE, Filter, run_filters
from ftdata_pipeline.stages.curation.normalize import (
    count_controls,
    normalize_messages,
    normalize_text,
)
from ftdata_pipeline.stages.curation.views import NEAR, VIEW_COLUMNS, add_prose, add_views

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
_NEAR_SIM, _NEAR_REP = "_near_sim", "_near_rep"
_WORKING = (
    _CHARS, _WORDS, _TURNS, _PROMPT_CHARS, _CHANGED, _CONTROLS, _NEAR_SIM, _NEAR_REP,
    decontaminate.CONTAMINATED_BY, decontaminate.CONTAMINATED_GRAMS, *VIEW_COLUMNS,
    PRIOR_EXACT, PRIOR_NEAR, SIGNATURE,
)
# Views only the per-record rules read (the near-duplicate step reads NEAR).
_BATCH_VIEWS = tuple(c for c in VIEW_COLUMNS if c != NEAR)
# Records the per-record rules judge at a time (see curate()).
CURATE_ROWS = 50_000


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
    """content_hash, dup_cluster_id (first record per hash) and, for preference, prompt ids.

    The frame is sorted by (source, source_key, record_id), so ``first()`` picks the record
    that exact dedup keeps.
    """
    df = df.with_columns(sha256_hex(_canonical(_content_parts(kind))).alias("content_hash"))
    df = df.with_columns(pl.col(RECORD_ID).first().over("content_hash").alias("dup_cluster_id"))
    if kind == "preference":
        # Ranked responses without a prompt id are grouped by their prompt, so all pairs of one
        # prompt can later be built together and kept in one split.
        prompt_id = sha256_hex(pl.lit("prompt\x1f") + _canonical(pl.col("prompt")), 16)
        df = df.with_columns(pl.col("conversation_id").fill_null(prompt_id))
    return df


def _near_dedup(
    df: pl.DataFrame, cfg: CurateConfig, partition: PartitionDedup | None = None
) -> tuple[pl.DataFrame, dict]:
    """Cluster near duplicates; set dup_cluster_id and the working columns the filter reads.

    With ``partition``, the rows are clustered together with what other partitions kept
    (``curation/index.py``); rows whose cluster an earlier partition keeps get ``PRIOR_NEAR``.
    """
    nd = cfg.near_dedup
    if nd.keep == "longest":
        priority = df[NEAR].str.len_chars().fill_null(0).to_numpy().astype(np.float64)
    elif nd.keep == "best_quality" and quality.Q_QUALITY in df.columns:
        priority = df[quality.Q_QUALITY].fill_null(0.0).to_numpy().astype(np.float64)
    else:
        priority = np.zeros(df.height)
    if partition is not None:
        rep, sim, prior_ref, sig, verified = partition.cluster(df[NEAR], nd, priority)
        df = df.with_columns(
            pl.Series(PRIOR_NEAR, prior_ref.tolist(), dtype=pl.String),
            pl.Series(SIGNATURE, sig),  # (rows, num_perm) -> an Array column, no Python lists
        )
        clusters_of = rep
    else:
        result = neardup.find_near_duplicates(
            df[NEAR],
            shingle_words=nd.shingle_words,
            num_perm=nd.num_perm,
            bands=nd.bands,
            rows=nd.rows,
            threshold=nd.threshold,
            seed=nd.seed,
        )
        rep = neardup.representatives(result.labels, priority)
        sim = (neardup.jaccard_estimate(result.signatures, np.arange(df.height), rep)
               if df.height else np.zeros(0))
        clusters_of, verified = result.labels, int(result.pair_i.size)
    idx = np.arange(df.height)
    ids = df[RECORD_ID]
    df = df.with_columns(
        pl.Series(_NEAR_REP, ids.gather(rep), dtype=pl.String),
        pl.Series(_NEAR_SIM, sim, dtype=pl.Float64),
    ).with_columns(
        # Exact-dedup clusters are already collapsed to one survivor each: the near cluster's
        # representative now stands for all of them.
        pl.when(pl.col(_NEAR_REP) != pl.col(RECORD_ID))
        .then(pl.col(_NEAR_REP))
        .otherwise(pl.col("dup_cluster_id"))
        .alias("dup_cluster_id")
    )
    clusters = int(np.unique(clusters_of[rep != idx]).size) if df.height else 0
    # verified pairs that joined two clusters (pairs inside a cluster are not re-verified)
    return df, {"verified_pairs_joining": verified, "clusters": clusters}


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
) -> StageResult:
    """Curate a recipe's records (see module docstring).

    ``sources`` (name -> config) enables the licence and retention gates; ``root`` resolves
    relative eval-set paths (default: the working directory). ``partition``: the records are
    one partition of the dataset, deduplicated also against what other partitions kept; its
    ``kept_entries`` are set to this partition's index entries.
    """
    cfg, kind = recipe.curate, recipe.kind
    lf = conform(records)
    lf = _normalize(_shape(lf, recipe), cfg)
    # Deterministic regardless of input order; this order also decides which duplicate is kept.
    df = lf.collect().sort(SOURCE, SOURCE_KEY, RECORD_ID, nulls_last=True)
    rows_in = df.height
    normalized_changed = int(df[_CHANGED].sum() or 0)
    control_chars_removed = int(df[_CONTROLS].sum() or 0)
    as_of, as_of_from = governance.resolve_as_of(cfg)
    refused = governance.refused_sources(recipe.governance, sources)

    steps: dict[str, dict[str, int]] = {
        "shape": {"in": rows_in, "dropped": 0},
        "normalize": {"in": rows_in, "dropped": 0},
    }
    rejects: list[pl.DataFrame] = []

    def run(frame: pl.DataFrame, filters: list[Filter]) -> pl.DataFrame:
        return run_filters(frame, filters, steps, rejects)

    df = run(df, governance.governance_filters(cfg, recipe.governance, sources, as_of))
    df = run(df, [_missing_content(kind)])
    df = run(_measure(df, kind), _length_filters(kind, cfg))
    df = _add_hashes(df, kind)
    if partition is not None and cfg.dedup != "none":
        df = run(partition.mark_exact(df), [partition.exact_filter()])
    if cfg.dedup == "exact":
        dedup = Filter(
            "exact_duplicate",
            pl.col(RECORD_ID) != pl.col("dup_cluster_id"),
            detail=pl.col("dup_cluster_id"),
        )
        df = run(df, [dedup])

    eval_items, grams = 0, None
    if cfg.decontamination.eval_sets:
        evals = decontaminate.load_eval_texts(cfg.decontamination, root)
        eval_items = evals["eval_id"].n_unique()
        grams = decontaminate.eval_grams(evals, cfg.decontamination)
    # The per-record rules (views, quality, language, harm, contamination) judge each record on
    # its own, so they run CURATE_ROWS records at a time: their views of the texts, scores and
    # temporaries exist for one batch (on a million tickets the whole frame's peaked at
    # 3.8 GB). Only the near-duplicate view of the records they keep stays for the last step.
    kept_parts: list[pl.DataFrame] = []
    harmful_flagged = 0
    for start in range(0, max(df.height, 1), CURATE_ROWS):
        part_steps: dict[str, dict[str, int]] = {}
        first_reject = len(rejects)
        part = _per_record_rules(df.slice(start, CURATE_ROWS), cfg, kind, grams,
                                 lambda frame, filters: run_filters(frame, filters, part_steps,
                                                                    rejects))
        for name, counts in part_steps.items():
            total = steps.setdefault(name, {"in": 0, "dropped": 0})
            total["in"] += counts["in"]
            total["dropped"] += counts["dropped"]
        # rejects leave the stage without working columns: drop the batch's views now
        rejects[first_reject:] = [r.drop(_BATCH_VIEWS, strict=False) for r in rejects[first_reject:]]
        if safety.Q_HARMFUL_FLAG in part.columns:
            harmful_flagged += int(part[safety.Q_HARMFUL_FLAG].sum() or 0)
        kept_parts.append(part.drop(_BATCH_VIEWS, strict=False))
    del df
    df = pl.concat(kept_parts, how="vertical") if len(kept_parts) > 1 else kept_parts[0]
    del kept_parts
    near_stats: dict = {}
    if cfg.near_dedup.enabled and cfg.dedup != "none":
        df, near_stats = _near_dedup(df, cfg, partition)
        near_from = len(rejects)
        if partition is not None:
            df = run(df, [partition.near_filter()])
        near = Filter(
            "near_duplicate",
            pl.col(_NEAR_REP) != pl.col(RECORD_ID),
            score=pl.col(_NEAR_SIM),
            detail=pl.col(_NEAR_REP),
        )
        df = run(df, [near])

    if partition is not None:
        # near duplicates dropped here stay in the index: a later copy may link through them
        dropped = [
            r.select(RECORD_ID, "content_hash", SIGNATURE, pl.coalesce(
                PRIOR_NEAR, pl.lit(partition.partition + ":") + pl.col(_NEAR_REP)
            ).alias("kept_by"))
            for r in (rejects[near_from:] if SIGNATURE in df.columns else [])
        ]
        partition.record_kept(df, cfg.near_dedup, pl.concat(dropped) if dropped else None)
        near_stats |= partition.matched
    order = [RECORD_ID, SOURCE, SOURCE_KEY]
    kept = conform(df.drop(_WORKING, strict=False)).sort(order, nulls_last=True)
    rejected = concat_rejects(
        [
            # Rejects carry the record as it was when dropped, without working columns.
            conform(r.drop(_WORKING, strict=False).drop("stage", "rule", "score", "detail")).hstack(
                r.select("stage", "rule", "score", "detail")
            )
            for r in rejects
        ],
        kept.clear(),
    ).sort(order, nulls_last=True)
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
