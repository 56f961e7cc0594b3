"""Shared base class for every configuration model."""
from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, models are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)
