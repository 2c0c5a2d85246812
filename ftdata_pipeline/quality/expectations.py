"""Resolve an expectation named in a recipe (class or snake_case name + kwargs) to a GX object."""

from __future__ import annotations

import inspect
import re
from functools import cache
from typing import Any

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation


@cache
def _registry() -> dict[str, type[Expectation]]:
    # Only the expectations GX exports publicly: the registry also holds abstract and
    # experimental classes that a recipe should not be able to name.
    by_name: dict[str, type[Expectation]] = {}
    for name, obj in vars(gxe).items():
        if (
            inspect.isclass(obj)
            and issubclass(obj, Expectation)
            and obj is not Expectation
            and getattr(obj, "expectation_type", None)
        ):
            by_name[name] = obj
            by_name[obj.expectation_type] = obj
    return by_name


def expectation_class(name: str) -> type[Expectation]:
    """The GX expectation class for a class name or its snake_case type name."""
    cls = _registry().get(name)
    if cls is None:
        raise ValueError(
            f"unknown expectation {name!r}: use a Great Expectations core expectation such as "
            "ExpectColumnValuesToNotBeNull or expect_column_values_to_not_be_null"
        )
    return cls


def snake_name(name: str) -> str:
    """The snake_case type name of an expectation given either spelling."""
    return expectation_class(name).expectation_type


def resolve_expectation(name: str, kwargs: dict[str, Any]) -> Expectation:
    """Build the GX expectation ``name`` with ``kwargs``; ValueError if either is invalid."""
    cls = expectation_class(name)
    try:
        return cls(**kwargs)
    except Exception as exc:  # GX validates with pydantic v1: its errors carry no data values
        detail = re.sub(r"\s*\n\s*", "; ", str(exc).strip())
        raise ValueError(f"invalid arguments for {cls.__name__}: {detail}") from None
