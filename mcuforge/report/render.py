"""The review's rendering: the facts (facts.py) through the Jinja templates under templates/ into report.md (images
beside it) and a one-file report.html (images embedded as data URIs), with the number formats the templates use."""
from __future__ import annotations

import base64
from pathlib import Path

import jinja2

from mcuforge.report.review import TEMPLATES

IMAGES = ("memory", "layers", "size", "pareto", "cdf", "confusion", "roc", "scores")


def _fmt_int(value) -> str:
    return "—" if value is None else f"{int(round(value)):,}"


def _fmt_pct(value) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def _fmt_num(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=jinja2.select_autoescape(["html"]),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["int"] = _fmt_int
    env.filters["pct"] = _fmt_pct
    env.filters["num"] = _fmt_num
    return env


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render(facts: dict, images: dict[str, Path]) -> tuple[str, str]:
    """(Markdown, HTML) of the review; `images` maps the keys of IMAGES to the PNGs that exist."""
    env = _environment()
    names = {key: images[key].name if key in images else None for key in IMAGES}
    uris = {key: data_uri(images[key]) if key in images else None for key in IMAGES}
    md = env.get_template("report.md.j2").render(f=facts, images=names)
    html = env.get_template("report.html.j2").render(f=facts, images=uris)
    return md, html
