"""What an example is made of, as Polars expressions: its input, first prompt, answer, slices.

One place says, per dataset kind, which text is the example's *input* (what the model reads
at inference: user turns, prompt, text), its *first prompt* (the first user turn) and its
*answer*; grouping, leakage, representativeness and bias all read them from here.
"""

from __future__ import annotations

import polars as pl

USER, ASSISTANT = "user", "assistant"
# Word-count bucket edges of ``length_bucket`` (upper bounds, inclusive).
LENGTH_BUCKETS = (8, 16, 32, 64, 128, 256, 512)


def _turns(role: str) -> pl.Expr:
    return pl.col("messages").list.eval(
        pl.element().filter(pl.element().struct.field("role") == role).struct.field("content")
    )


def input_text(kind: str) -> pl.Expr:
    """The example's input: user turns (chat), prompt (preference), text (otherwise)."""
    if kind == "chat_sft":
        return _turns(USER).list.join("\n").fill_null("")
    if kind == "preference":
        return pl.col("prompt").fill_null("")
    return pl.col("text").fill_null("")


def first_prompt(kind: str) -> pl.Expr:
    """The first user turn (chat), the prompt (preference), the text (classification)."""
    if kind == "chat_sft":
        return _turns(USER).list.first()
    if kind == "preference":
        return pl.col("prompt")
    if kind == "classification":
        return pl.col("text")
    return pl.lit(None, dtype=pl.String)


def answer(kind: str) -> pl.Expr:
    """What the model is taught to answer: last assistant turn, chosen response, label."""
    if kind == "chat_sft":
        return _turns(ASSISTANT).list.last()
    if kind == "preference":
        return pl.col("chosen")
    if kind == "classification":
        return pl.col("label")
    return pl.lit(None, dtype=pl.String)


def content_fields(kind: str) -> tuple[str, ...]:
    """The content fields the split stage reads for ``kind``: what the expressions above, the
    completeness rule and the token count look at. Every other content field (a pre-training
    dataset's ``prompt`` and ``response``, say) is only carried to the output."""
    if kind in ("chat_sft", "distillation"):
        return ("messages", "system")
    if kind == "preference":
        return ("prompt", "chosen", "rejected", "system")
    if kind == "classification":
        return ("text", "system")
    return ("text",)


def normalized(expr: pl.Expr) -> pl.Expr:
    """Lower case, punctuation removed, whitespace collapsed: "How do I cancel?" == "how do i cancel"."""
    return (
        expr.str.to_lowercase()
        .str.replace_all(r"[^\w\s]", "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def word_count(expr: pl.Expr) -> pl.Expr:
    return expr.str.count_matches(r"\w+").fill_null(0)


def bucket_label(n: pl.Expr) -> pl.Expr:
    """'<=8', '<=16', ... '>512' for a count (words or tokens)."""
    out = pl.when(n <= LENGTH_BUCKETS[0]).then(pl.lit(f"<={LENGTH_BUCKETS[0]}"))
    for edge in LENGTH_BUCKETS[1:]:
        out = out.when(n <= edge).then(pl.lit(f"<={edge}"))
    return out.otherwise(pl.lit(f">{LENGTH_BUCKETS[-1]}"))


def slice_expr(name: str, kind: str) -> pl.Expr:
    """One slice attribute of an example, as a string (null-safe: missing -> '(none)')."""
    if name == "label":
        expr = pl.col("label")
    elif name == "source":
        expr = pl.col("source")
    elif name == "language":
        expr = pl.col("q_lang")  # set by curation's language filter
    elif name == "length_bucket":
        expr = bucket_label(word_count(input_text(kind)))
    elif name == "turns":
        expr = (
            pl.col("messages").list.len().cast(pl.String)
            if kind == "chat_sft"
            else pl.lit("1")
        )
    else:
        raise ValueError(f"unknown slice attribute {name!r}")
    return expr.cast(pl.String).fill_null("(none)").alias(name)


def with_slices(df: pl.DataFrame, names: list[str], kind: str) -> pl.DataFrame:
    """Add one column per slice attribute (``language`` reads curation's ``q_lang``)."""
    exprs = []
    for name in names:
        if name == "language":
            lang = pl.col("q_lang") if "q_lang" in df.columns else pl.lit(None, dtype=pl.String)
            exprs.append(lang.cast(pl.String).fill_null("(unknown)").alias(f"_slice_{name}"))
        else:
            exprs.append(slice_expr(name, kind).alias(f"_slice_{name}"))
    return df.with_columns(exprs) if exprs else df


def slice_key(names: list[str]) -> pl.Expr:
    """One string per combination of the slice columns added by ``with_slices``."""
    if not names:
        return pl.lit("all")
    return pl.concat_str([pl.col(f"_slice_{n}") for n in names], separator=" | ")
