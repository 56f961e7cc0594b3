"""The one way figures are made and saved: matplotlib without a screen, PNG written atomically without the
matplotlib version in its metadata (so the bytes depend only on the data and the library's drawing)."""
from __future__ import annotations

from pathlib import Path

from .io import atomic_path


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported on first use: matplotlib costs ~0.5 s to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path) -> None:
    """Write `fig` to `path` as PNG (temp name, then rename) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    pyplot().close(fig)
