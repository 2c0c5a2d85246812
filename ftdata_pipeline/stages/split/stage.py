"""The split stage: complete examples, grouped, sized and assigned to train/validation/test.

Order: reject incomplete examples; count tokens and apply ``tokens.max_tokens`` (see
``tokens``); group records that must share a split (see ``groups``);
apply the size target (whole groups, stratified downsampling; see ``sizing``); assign splits by hash, stratified within the group
constraint (see ``assign``; with ``rlhf``, each group first goes to one RLHF step, see
``rlhf``); then measure what is left to report: ratios against the
configuration, leakage (shared groups, near duplicates, prompt-level), representativeness
against production inputs and bias.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ftdata_pipeline.allocator import give_back
from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.formats.kinds import export_kind
from ftdata_pipeline.parquet import WRITE_ROWS, write_batches
from ftdata_pipeline.records import (
    KIND_REQUIRED_FIELDS,
    MESSAGE_FIELDS,
    RECORD_ID,
    RECORD_SCHEMA,
    SOURCE,
    SOURCE_KEY,
    SPLITS,
    TEXT_FIELDS,
    conform,
)
from ftdata_pipeline.stages.base import StageResult, concat_rejects, detached, reject
from ftdata_pipeline.stages.split.assign import (
    PINNED,
    PRIORITY,
    STRATUM,
    U,
    assign_splits,
    hash_split,
    ratio_report,
    unit_interval,
)
from ftdata_pipeline.stages.split.bias import bias_report
from ftdata_pipeline.stages.split.content import POS, Carried, Content
from ftdata_pipeline.stages.split.groups import (
    GROUP_KEY,
    base_group_key,
    identity_groups,
    similarity_groups,
    source_group_keys,
)
from ftdata_pipeline.stages.split.leakage import (
    crossing,
    leakage_report,
    near_duplicate_leaks,
    prompt_leaks,
)
from ftdata_pipeline.stages.split.representativeness import representativeness
from ftdata_pipeline.stages.split.rlhf import STEP, assign_steps, step_leaks, step_report
from ftdata_pipeline.stages.split.sizing import COMBO, downsample, size_report
from ftdata_pipeline.stages.split.slices import (
    content_fields,
    first_prompt,
    input_text,
    normalized,
    slice_key,
    with_slices,
)
from ftdata_pipeline.stages.split.tokens import (
    N_TOKENS_SEQ,
    apply_token_limit,
    load_tokenizer,
    token_stats,
)

STAGE = "split"
_WORK = (GROUP_KEY, U, PRIORITY, STRATUM, PINNED)
_READ = ("q_lang",)  # the one column a stage added that the split reads (``language`` slices)


def stratify_by(recipe: RecipeConfig) -> list[str]:
    """The recipe's strata attributes (default: the label of a classification dataset)."""
    if recipe.split.stratify_by is not None:
        return list(recipe.split.stratify_by)
    return ["label"] if recipe.kind == "classification" else []


def _complete(kind: str) -> tuple[pl.Expr, pl.Expr]:
    """(record is complete, comma-separated names of its missing fields)."""
    present = {}
    for name in KIND_REQUIRED_FIELDS[kind]:
        col = pl.col(name)
        if name == "messages":
            present[name] = col.is_not_null() & (col.list.len() > 0)
        else:
            present[name] = col.is_not_null() & (col.str.strip_chars().str.len_chars() > 0)
    missing = pl.concat_str(
        [pl.when(~ok).then(pl.lit(name)) for name, ok in present.items()],
        separator=",",
        ignore_nulls=True,
    )
    return pl.all_horizontal(present.values()), missing


def _per_split(df: pl.DataFrame, value: pl.Expr) -> dict[str, int]:
    counts = dict.fromkeys(SPLITS, 0)
    for split_name, n in df.group_by("split").agg(value).iter_rows():
        counts[split_name] = int(n)
    return counts


def split(
    records: pl.LazyFrame,
    recipe: RecipeConfig,
    *,
    shared_sources: frozenset[str] | set[str] = frozenset(),
    root: str = ".",
    reference: pl.DataFrame | pl.LazyFrame | None = None,
    shared_raw: dict[str, pl.DataFrame | pl.LazyFrame] | None = None,
    spill: Path | None = None,
) -> StageResult:
    """Reject incomplete examples, size, group and assign splits (see module docstring).

    ``shared_sources``: sources other recipes read too; with ``split.shared_sources: pin``
    their records keep their hash split whatever the stratification wants. ``root``: the
    project root a tokenizer.json path is resolved against. ``reference``: the rows of the
    recipe's reference source (production inputs), compared with the result.
    ``shared_raw``: the raw rows of the shared sources; a shared record's split then follows
    its group over the whole source (near-duplicates and same prompts of the source together),
    else its identity group. ``spill``: an empty directory; the output is written there one
    split at a time and ``kept`` is a scan of it (no sorted copy of the whole frame in memory).
    With ``spill`` the columns the stage does not read (``carried_columns``) stay in the
    input until the output is written, and the kind's content is put aside there while the
    similarity searches run (see ``content``): only the columns it decides on are in memory.
    """
    cfg = recipe.split
    # A distilled example is an SFT conversation once labeled: it is checked, counted, grouped
    # and measured by its messages, as it is exported (``formats.kinds``).
    kind = export_kind(recipe.kind)
    inputs = conform(records.lazy())
    schema = inputs.collect_schema()
    carried = carried_columns(schema, kind) if spill is not None else []
    decided = inputs
    if spill is not None:
        # Placeholders keep every column where it is, so every frame below has the columns
        # (and order) it would have with the values; a literal column takes no memory.
        decided = inputs.with_columns(
            *[pl.lit(None, dtype=schema[c]).alias(c) for c in carried],
            pl.int_range(pl.len(), dtype=pl.Int64).alias(POS),
        )
    # Sorted so that every later step sees the same row order whatever the input order.
    df = decided.collect().sort(RECORD_ID, SOURCE, SOURCE_KEY, nulls_last=True)
    rows_in = df.height
    # Each reject frame in buffers of its own (``detached``): rejects are kept to the end, and
    # a filter shares the string buffers of every row it was taken from.
    rejects: list[pl.DataFrame] = []

    complete, missing = _complete(kind)
    flagged = df.with_columns(complete.fill_null(False).alias("_ok"), missing.alias("_missing"))
    incomplete = reject(
        flagged.filter(~pl.col("_ok")),
        stage=STAGE,
        rule="incomplete_example",
        detail=pl.col("_missing"),
    )
    rejects.append(detached(incomplete.drop("_ok", "_missing")))
    df = flagged.filter(pl.col("_ok")).drop("_ok", "_missing")
    del flagged, incomplete  # every input row's content, held to the end else

    df, over, token_report = apply_token_limit(df, recipe, load_tokenizer(recipe.tokens, root))
    rejects.append(detached(
        reject(over, stage=STAGE, rule="over_max_tokens", score=pl.col(N_TOKENS_SEQ),
               detail=f"max_tokens={recipe.tokens.max_tokens}")
    ))
    del over
    # The content is final from here (the token limit may truncate it): read back by the
    # similarity searches and reports that need it, kept aside while they search.
    content = Content(df, list(content_fields(kind)), spill)

    df = identity_groups(df)
    identity_count = df[GROUP_KEY].n_unique()
    # Records of a source other recipes read keep the hash split of their group over the whole
    # source (else of their identity group): both come from the source alone, never from the
    # dataset, so every dataset reading the record computes the same split.
    pinned = cfg.shared_sources == "pin" and bool(shared_sources)
    pin_key = pl.col(GROUP_KEY)
    if pinned and shared_raw:
        source_keys = source_group_keys(
            {s: (f.collect() if isinstance(f, pl.LazyFrame) else f)
             for s, f in shared_raw.items() if s in shared_sources},
            cfg,
        )
        # A record made from several source rows (a preference pair "R1>R3") is no row of
        # the source: it takes the source-level group of its conversation, which every row of
        # that conversation is in. Else a pair would fall back to its own identity group and
        # a dataset of pairs could split a prompt otherwise than one of its responses.
        by_conversation = (
            source_keys.filter(pl.col("conversation_id").is_not_null())
            .group_by(SOURCE, "conversation_id").agg(pl.col(GROUP_KEY).min().alias("_conv_group"))
        )
        df = df.join(
            source_keys.select(SOURCE, SOURCE_KEY, pl.col(GROUP_KEY).alias("_source_group")),
            on=[SOURCE, SOURCE_KEY], how="left", maintain_order="left",
        ).join(by_conversation, on=[SOURCE, "conversation_id"], how="left", maintain_order="left")
        pin_key = pl.coalesce(pl.col("_source_group"), pl.col("_conv_group"), pl.col(GROUP_KEY))
    is_shared = pl.col(SOURCE).is_in(sorted(shared_sources)) & pl.lit(pinned)
    df = df.with_columns(
        # one pin per identity group: its smallest shared record's source-level key
        pl.when(is_shared).then(pin_key).otherwise(None).min().over(GROUP_KEY).alias("_pin_key")
    ).with_columns(
        pl.when(pl.col("_pin_key").is_not_null())
        .then(hash_split(unit_interval(cfg.seed, pl.col("_pin_key")), cfg.ratios))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias(PINNED)
    ).drop("_pin_key", "_source_group", "_conv_group", strict=False)
    df = content.aside(df)
    df, grouping = similarity_groups(
        df, kind, cfg, pin_column=PINNED,
        texts=lambda frame: content.texts(
            frame, input_text(kind).alias("_input"),
            normalized(first_prompt(kind)).alias("_prompt"),
        ),
    )
    give_back()  # the grouping's links and merges
    df = content.restore(df)
    # Hashed once per group, not per record.
    keys = df.select(GROUP_KEY).unique().with_columns(
        unit_interval(cfg.seed, pl.col(GROUP_KEY)).alias(U),
        unit_interval(cfg.seed, pl.col(GROUP_KEY), offset=8).alias(PRIORITY),
    )
    df = df.join(keys, on=GROUP_KEY, how="left", maintain_order="left")
    downsampling = None
    if cfg.max_records is not None and df.height > cfg.max_records:
        sized = with_slices(df, cfg.downsample_by, kind).with_columns(
            slice_key(cfg.downsample_by).alias(COMBO)
        )
        sized, dropped, downsampling = downsample(sized, cfg, GROUP_KEY, PRIORITY)
        helpers = [COMBO, *[f"_slice_{a}" for a in cfg.downsample_by]]
        df = sized.drop(*helpers)
        rejects.append(detached(
            reject(dropped.drop(*helpers), stage=STAGE, rule="size_target",
                   score=pl.col("_running"), detail=f"max_records={cfg.max_records}")
            .drop("_running", *_WORK, strict=False)
        ))
        del dropped, sized

    strata = stratify_by(recipe)
    df = with_slices(df, strata, kind).with_columns(slice_key(strata).alias(STRATUM))
    if recipe.rlhf is not None:
        # one RLHF step per group; each step is then split at the ratios (see ``rlhf``)
        df = assign_steps(df, GROUP_KEY, cfg.seed, recipe.rlhf).with_columns(
            pl.concat_str([pl.col(STEP), pl.col(STRATUM)], separator=" / ").alias(STRATUM)
        )
    df = assign_splits(df, GROUP_KEY, cfg.ratios, stratified=True)
    counts = _per_split(df, pl.len())
    stats = {
        "records": counts,
        "groups": _per_split(df, pl.col(GROUP_KEY).n_unique()),
        # distinct prompts (preference) or conversations: what an evaluation averages over
        "prompts": _per_split(df, pl.coalesce("conversation_id", RECORD_ID).n_unique()),
        "groups_crossing_splits": crossing(df, GROUP_KEY),
        "merged_groups": int(
            df.group_by(GROUP_KEY).agg(base_group_key().n_unique().alias("_n"))
            .filter(pl.col("_n") > 1).height
        ),
        "grouping": {"identity_groups": identity_count, **grouping},
        "stratify_by": strata,
        "pinned_records": int(df[PINNED].is_not_null().sum()),
        "ratios": ratio_report(counts, cfg.ratios, cfg.tolerance),
        "size": size_report(df.height, cfg, downsampling),
    }
    if recipe.rlhf is not None:
        stats["rlhf"] = {**step_report(df, recipe.rlhf), "leaks": step_leaks(df, GROUP_KEY)}
    labels = _label_counts(df) if kind == "classification" else None
    # From here the output's content is read back only by what needs it (and as it is written)
    out = content.aside(df.drop(*_WORK, *[f"_slice_{s}" for s in strata], strict=False))
    del df
    stats["tokens"] = {**token_report, **token_stats(out, SPLITS, recipe.tokens.epochs)}
    stats["leakage"] = leakage_report(out)
    stats["near_duplicates"] = near_duplicate_leaks(
        out, kind, cfg.leakage, texts=lambda frame: content.texts(frame, input_text(kind))
    )
    give_back()  # the leak report's search
    stats["prompt_leakage"] = prompt_leaks(out, kind, content.restore)
    if recipe.reference is not None and reference is not None:
        stats["representativeness"] = representativeness(
            content.restore(out), conform(reference).lazy().collect(), kind, recipe.reference
        )
    if recipe.bias.attributes:
        stats["bias"] = bias_report(content.restore(out), kind, recipe.bias)
    if labels is not None:
        stats["labels"] = labels

    order = [RECORD_ID, SOURCE, SOURCE_KEY]
    out = conform(out)
    rejected = concat_rejects(rejects, out.clear()).sort(order, nulls_last=True)
    if spill is None:
        kept = out.sort(["split", *order], nulls_last=True)
    else:
        fill = Carried(inputs, carried)
        rejected = fill(rejected)
        kept = _spill_by_split(out, order, spill, lambda batch: fill(content.restore(batch)))
        content.discard()
    return StageResult(kept=kept, rejected=rejected, rows_in=rows_in, stats=stats)


def _label_counts(df: pl.DataFrame) -> dict[str, dict[str, int]]:
    labels: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for split_name, label, n in (
        df.group_by("split", "label").len().sort("split", "label").iter_rows()
    ):
        labels[split_name][label] = int(n)
    return labels


def carried_columns(schema: pl.Schema | dict, kind: str) -> list[str]:
    """Columns of a split input that no rule of the stage reads, only carries to the output:
    content fields other than the kind's (``slices.content_fields``) and the scores earlier
    stages kept (but ``q_lang``)."""
    read = set(content_fields(kind))
    content = (*TEXT_FIELDS, *MESSAGE_FIELDS)
    return [
        name for name in schema
        if (name in content and name not in read)
        or (name not in RECORD_SCHEMA and name not in _READ)
    ]


def _spill_by_split(
    out: pl.DataFrame, order: list[str], spill: Path, fill=lambda batch: batch
) -> pl.LazyFrame:
    """``out`` sorted by (split, *order), written one split at a time: a scan of the files.

    The rows are already in ``order`` (sorted on entry, kept in order since), so each split's
    rows are gathered and written a batch at a time; sorting the whole frame would copy it.
    Should a step ever reorder them, each split is sorted on its own instead. ``fill`` turns a
    batch into output rows (the carried columns read back from the input).
    """
    ids = out.select(order)
    in_order = ids.equals(ids.sort(order, nulls_last=True))
    del ids
    spill.mkdir(parents=True, exist_ok=True)
    schema = fill(out.clear()).schema
    parts = []
    for name in sorted(out["split"].unique().to_list()):  # the sort's order of split names
        rows = (out["split"] == name).arg_true()
        if in_order:  # the split's rows, gathered a batch at a time
            batches = (out[rows.slice(s, WRITE_ROWS)] for s in range(0, rows.len(), WRITE_ROWS))
        else:
            batches = out[rows].sort(order, nulls_last=True).iter_slices(WRITE_ROWS)
        parts.append(spill / f"{name}.parquet")
        write_batches((fill(batch) for batch in batches), parts[-1], schema)
    return pl.scan_parquet(parts) if parts else fill(out.clear()).lazy()
