"""Harmful/offensive content: alt-profanity-check's model and/or a recipe word list.

The model (a linear SVM over character/word n-grams, shipped inside the package) scores the
distinct texts in ``predict_prob`` calls of ``_BATCH`` texts: each row is scored on its own,
and the n-gram matrix of a whole corpus would not fit in memory. A word-list hit scores 1.0.
``q_harm`` is kept on every row; action ``drop`` rejects rows at or above the threshold as
``harmful_content``, action ``flag`` keeps them and sets ``q_harmful_flag``.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import polars as pl

from ftdata_pipeline.config.models import HarmfulConfig
from ftdata_pipeline.stages.curation.filtering import Filter
from ftdata_pipeline.stages.curation.views import PROSE

Q_HARM, Q_HARMFUL_FLAG = "q_harm", "q_harmful_flag"
_BATCH = 20_000  # texts per model call: bounds the sparse n-gram matrix


@lru_cache(maxsize=1)
def _model():
    # Imported lazily: loading the pickled model takes about a second.
    import profanity_check

    return profanity_check.predict_prob


def model_scores(texts: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros(0)
    predict = _model()
    return np.concatenate([
        np.asarray(predict(texts[i : i + _BATCH]), dtype=np.float64)
        for i in range(0, len(texts), _BATCH)
    ])


def add_harm(df: pl.DataFrame, cfg: HarmfulConfig) -> pl.DataFrame:
    text = pl.col(PROSE).fill_null("")
    score = pl.lit(0.0)
    if cfg.model:
        distinct = df.select(text.unique().sort())[PROSE].to_list()
        table = pl.DataFrame(
            {"_harm_text": distinct, "_harm_model": model_scores(distinct)},
            schema={"_harm_text": pl.String, "_harm_model": pl.Float64},
        )
        df = df.with_columns(text.alias("_harm_text")).join(
            table, on="_harm_text", how="left", maintain_order="left"
        )
        score = pl.col("_harm_model")
    if cfg.words:
        pattern = r"(?i)\b(?:" + "|".join(re.escape(w) for w in cfg.words) + r")\b"
        score = pl.when(text.str.contains(pattern)).then(1.0).otherwise(score)
    df = df.with_columns(score.cast(pl.Float64).alias(Q_HARM)).drop(
        "_harm_text", "_harm_model", strict=False
    )
    if cfg.action == "flag":
        df = df.with_columns((pl.col(Q_HARM) >= cfg.threshold).alias(Q_HARMFUL_FLAG))
    return df


def harmful_filters(cfg: HarmfulConfig) -> list[Filter]:
    # With action flag the step stays in the stats (0 dropped); the flagged count is reported
    # by the stage as harmful_flagged.
    drops = pl.col(Q_HARM) >= cfg.threshold if cfg.action == "drop" else pl.lit(False)
    return [
        Filter(
            "harmful_content",
            drops,
            pl.col(Q_HARM),
            pl.lit(f"threshold={cfg.threshold}"),
        )
    ]
