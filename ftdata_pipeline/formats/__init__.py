"""Export formats: one module per trainer family, one small class per format, registered by name.

Each format class defines:
  NAME: str            the name used in recipes (exports.formats)
  KINDS: tuple[str]    dataset kinds it can express
  STRICT: bool         True when the trainer rejects unknown keys: provenance then goes to a
                       line-aligned sidecar file instead of inline keys
  to_example(record: dict) -> dict   (staticmethod) one canonical record (a dict of its columns) -> one JSON line
  extra_files(dataset, splits) -> {name: text}   (optional) files written beside the split files
"""

from __future__ import annotations

from ftdata_pipeline.formats import (
    alpaca,
    bedrock,
    classification,
    feedback,
    openai,
    sharegpt,
    trl,
)

_FORMATS = (
    openai.OpenAIChat,
    openai.OpenAIPreference,
    trl.Messages,
    trl.PromptCompletion,
    trl.Preference,
    trl.Text,
    alpaca.Alpaca,
    sharegpt.ShareGPT,
    bedrock.PromptCompletion,
    bedrock.Conversation,
    classification.Classification,
    feedback.PreferenceImplicitPrompt,
    feedback.UnpairedPreference,
    feedback.PromptOnly,
    feedback.VertexPreference,
    feedback.LlamaFactoryRanking,
)
FORMATS_BY_NAME = {m.NAME: m for m in _FORMATS}
