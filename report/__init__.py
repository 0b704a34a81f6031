"""The report: plain evidence data, rendered to Markdown, LaTeX, PDF and JSON.

The only package that knows both :mod:`derivations` and :mod:`montecarlo`.
"""

from ._evidence import evidence as evidence
from ._evidence import verdict as verdict
from ._html import render_handout_html as render_handout_html
from ._html import render_report_html as render_report_html
from ._render import render_all as render_all
from ._render import render_handout as render_handout
from ._render import render_json as render_json
from ._render import render_latex as render_latex
from ._render import render_markdown as render_markdown
from ._render import tex_escape as tex_escape
from ._render import tex_prose as tex_prose
from ._render import write_report as write_report

__all__ = [
    "evidence",
    "render_all",
    "render_handout",
    "render_handout_html",
    "render_json",
    "render_latex",
    "render_markdown",
    "render_report_html",
    "tex_escape",
    "tex_prose",
    "verdict",
    "write_report",
]
