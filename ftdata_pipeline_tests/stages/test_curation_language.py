"""The batched language identifier against py3langid's own ``classify``, on text the project
did not write: the paragraphs of the installed packages' long descriptions (Markdown prose and
code, many languages of code, some of people), read offline from their metadata, plus the edge
cases of the library's encoding (all caps, empty, symbols only, over the vector limit)."""

from __future__ import annotations

import importlib.metadata as md

import pytest

from ftdata_pipeline.stages.curation import language


def _paragraphs() -> list[str]:
    found: dict[str, str] = {}
    for dist in md.distributions():
        body = dist.metadata.get_payload() or dist.metadata.get("Description") or ""
        if dist.metadata["Name"] and body.strip():
            found[dist.metadata["Name"]] = body
    return [p.strip() for _, body in sorted(found.items()) for p in body.split("\n\n") if p.strip()]


EDGE = [
    "", "   ", "HELLO, MY ORDER NEVER ARRIVED", "Bonjour, je voudrais un remboursement s'il vous plaît",
    "Ich habe eine Frage zu meiner Rechnung vom Mai", "¿Dónde está mi pedido? Lo pedí hace dos semanas",
    "日本語のテキストです", "🙂🙂🙂", "x", "Привет, как дела?", "a" * (language._VECTOR_BYTES + 10),
]


@pytest.mark.parametrize("batch", [1, 7, 2048])
def test_batched_identifier_equals_the_library(monkeypatch, batch) -> None:
    texts = _paragraphs()
    assert len(texts) > 2000
    texts = texts[:: max(1, len(texts) // 3000)] + EDGE
    monkeypatch.setattr(language, "_BATCH", batch)
    langs, scores = language.identify(texts)
    ident = language._identifier()
    expected = [ident.classify(t) for t in texts]
    assert langs == [lang for lang, _ in expected]
    # the same sums in another order: equal to float32 rounding
    assert max(abs(s - e) for s, (_, e) in zip(scores, expected, strict=True)) < 1e-4
    assert len(set(langs)) > 5  # real variety, not one answer for everything
