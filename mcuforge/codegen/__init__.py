"""C code for the engine from a planned graph: generate.generate / write (the files), symbol_groups (what each
weights.c constant is, for the review)."""
from mcuforge.codegen.generate import symbol_groups

__all__ = ["symbol_groups"]
