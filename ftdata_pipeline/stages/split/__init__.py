"""The split stage and what it measures: grouping, assignment, leakage (see ``stage``)."""

from ftdata_pipeline.stages.split.leakage import cross_dataset_conflicts, leakage_report
from ftdata_pipeline.stages.split.stage import STAGE, split

__all__ = ["STAGE", "cross_dataset_conflicts", "leakage_report", "split"]
