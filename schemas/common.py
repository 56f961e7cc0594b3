"""Shared base class for every configuration model."""
from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, NaN and inf are not numbers, models are immutable once
    validated. (The loader validates strictly: schemas/loader.py `validate`.)"""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True, allow_inf_nan=False)
