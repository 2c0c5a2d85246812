"""The curated stage's building blocks, one concern per module; ``stages.curate`` orders them."""
