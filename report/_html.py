"""The report and the handout as self-contained web pages, in every language.

One HTML file per edition, readable with no network: the style is inline, every figure
is a PNG embedded as a ``data:`` URI, and every formula is MathML, converted offline by
``latex2mathml`` from the LaTeX of the evidence, which browsers render natively. The
handout's blanks are ``<details>`` elements: the derivation's result (the key's
content) appears when the blank is clicked, with no script.

A formula the converter refuses, or whose MathML is malformed, is replaced by a marker
(never by its TeX) and recorded; :func:`failures` lists them, and the tests require
none. The same evidence gives the same bytes: nothing depends on the time or the order
of a set.
"""

from __future__ import annotations

import base64
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from functools import cache, lru_cache, partial
from importlib import resources
from pathlib import Path

import jinja2
from latex2mathml.converter import convert
from markupsafe import Markup, escape

from ._i18n import needs_translation, split, translate
from ._latex import psi_text
from ._render import (
    SECTIONS,
    cjk_mathtext,
    context,
    counterexamples,
    describe_observable,
    describe_scenario,
    handout_context,
    math_line,
    num,
    outcome,
    outcomes,
    pct,
    pct_or_na,
    predicted,
    status_counts,
    translate_figure,
)

#: Formulas that could not be converted since the last clear: (TeX, reason).
_failed: list[tuple[str, str]] = []
#: The literal messages of the HTML templates met while rendering (catalogue keys).
_literals: set[str] = set()
_MATHML = "{http://www.w3.org/1998/Math/MathML}"
#: How many children a MathML script or fraction element must have.
_ARITY = {"msub": 2, "msup": 2, "msubsup": 3, "mfrac": 2, "mover": 2, "munder": 2}
_ENVIRONMENT = re.compile(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S)
_DROP = re.compile(r"\\allowbreak(?:\{\})?|\\tag\*?\{[^{}]*\}|\\nonumber|\\notag")
#: A named operator (``\\operatorname{Var}``, ``\\min``): an upright identifier, spaced as one.
_OPERATOR_NAME = re.compile(r"<mo>([A-Za-z]{2,})</mo>")
#: A slash between a numerator and a denominator, without an operator's spacing.
_SLASH = '<mo lspace="0" rspace="0">&#x0002F;</mo>'
#: A symbol named in LaTeX inside plain text: letters, then braced sub- or superscripts.
_SYMBOL = re.compile(r"(?<![\\\w])[^\W\d_]+(?:[_^]\{[^{}\s]*\})+")
_FENCE = re.compile(r"\\(left|right)(\\[{}|]|\\[lr]?[a-zA-Z]+|[()\[\].|])")
#: What makes a line taller than text: fences around it keep their stretch.
_TALL = re.compile(r"\\(?:frac|dfrac|sum|prod|int|begin|binom|sqrt|overline|underset)")
_DOLLAR = re.compile(r"(?<!\\)\$")
_SPAN = re.compile(r"(\$[^$]*\$|`[^`]*`)")


def failures(*, clear: bool = False) -> list[tuple[str, str]]:
    """The formulas :func:`mathml` could not convert since the last clear."""
    found = list(_failed)
    if clear:
        _failed.clear()
    return found


def prepare(tex: str) -> str:
    r"""LaTeX as ``latex2mathml`` reads it.

    ``polygamma`` becomes :math:`\psi`; line-breaking hints and equation tags are
    dropped; an environment (``bmatrix``, ``array``) is wrapped in a group, so that a
    subscript after it (``\end{bmatrix}_{2\times 3}``) applies to the whole matrix.
    """
    tex = _DROP.sub(" ", psi_text(str(tex)))
    return _flat_fences(_ENVIRONMENT.sub(lambda m: "{" + m.group(0) + "}", tex))


def _flat_fences(tex: str) -> str:
    r"""``\left(`` ... ``\right)`` around one line of type as plain parentheses or
    brackets, which a browser sets at text size (a stretched one takes a larger glyph,
    with gaps); fences around a fraction, a sum or a matrix stay stretchy."""
    edits: list[tuple[int, int, str]] = []
    stack: list[re.Match] = []
    for m in _FENCE.finditer(tex):
        if m.group(1) == "left":
            stack.append(m)
            continue
        if not stack:
            return tex  # unbalanced: left to the converter
        left = stack.pop()
        plain = left.group(2) in "([" and m.group(2) in ")]"
        if plain and not _TALL.search(tex, left.end(), m.start()):
            edits += [(left.start(), left.end(), left.group(2)), (m.start(), m.end(), m.group(2))]
    for start, end, text in sorted(edits, reverse=True):
        tex = tex[:start] + text + tex[end:]
    return tex


def _problem(markup: str) -> str:
    """Why ``markup`` is not sound MathML (``""`` when it is)."""
    try:
        root = ET.fromstring(markup)
    except ET.ParseError as err:
        return f"not well-formed: {err}"
    for el in root.iter():
        tag = el.tag.removeprefix(_MATHML)
        if tag in _ARITY and len(el) != _ARITY[tag]:
            return f"<{tag}> with {len(el)} children"
        if "\\" in (el.text or "") or "$" in (el.text or ""):
            return f"TeX left in <{tag}>: {el.text!r}"
    return ""


@cache
def _convert(tex: str, display: bool) -> tuple[str, str]:
    try:
        markup = convert(prepare(tex), display="block" if display else "inline")
    except Exception as err:  # the converter raises many kinds
        return "", f"{type(err).__name__}: {err}"
    markup = _OPERATOR_NAME.sub(r"<mi>\1</mi>", markup).replace("<mo>&#x0002F;</mo>", _SLASH)
    return markup, _problem(markup)


def mathml(tex: object, display: bool = False) -> Markup:
    """``tex`` as a MathML element; a marker (and a recorded failure) if it cannot be."""
    tex = str(tex)
    if not tex.strip():
        return Markup("")
    markup, problem = _convert(tex, display)
    if problem:
        _failed.append((tex, problem))
        return Markup('<span class="math-error">[formula]</span>')
    return Markup(markup)


def _text(text: str) -> Markup:
    """Plain text escaped, with the symbols named in LaTeX that SymPy prints in text
    (``w^{1}_{12}``, ``n_{t-1}``: counterexamples, details) set as MathML."""
    out, k = [], 0
    for m in _SYMBOL.finditer(text):
        out += [escape(text[k : m.start()]), mathml(m.group(0))]
        k = m.end()
    out.append(escape(text[k:]))
    return Markup("").join(out)


def prose(text: object, lang: str) -> Markup:
    """Prose in ``lang``: text escaped, ``$...$`` spans as MathML, ```code``` as code."""
    out = []
    for k, part in enumerate(_SPAN.split(translate(text, lang))):
        if not k % 2:
            out.append(_text(part))
        elif part.startswith("$"):
            out.append(mathml(part[1:-1]))
        else:
            out.append(Markup("<code>%s</code>") % part[1:-1])
    return Markup("").join(out)


_UNTEX = {
    r"\textbackslash{}": "\\",
    r"\&": "&",
    r"\%": "%",
    r"\$": "$",
    r"\#": "#",
    r"\_": "_",
    r"\{": "{",
    r"\}": "}",
    r"\^{}": "^",
    r"\textless{}": "<",
    r"\textgreater{}": ">",
    r"\dots{}": "…",
    r"\allowbreak{}": "",
}
_UNTEX_RE = re.compile(r"\\texttt\{((?:[^{}]|\{\})*)\}|" + "|".join(map(re.escape, _UNTEX)))


def _text_of_tex(tex: str) -> Markup:
    """The text parts of :func:`report._latex.mathtext`'s output back to HTML (its
    formulas are the ``$...$`` parts, converted by :func:`mathml`)."""
    out, k = [], 0
    text = ""
    for m in _UNTEX_RE.finditer(tex):
        text += tex[k : m.start()]
        if m.group(1) is not None:
            inner = _UNTEX_RE.sub(lambda n: _UNTEX.get(n.group(0), n.group(0)), m.group(1))
            out += [_text(text), Markup("<code>%s</code>") % inner]
            text = ""
        else:
            text += _UNTEX[m.group(0)]
        k = m.end()
    out.append(_text(text + tex[k:]))
    return Markup("").join(out)


def label(text: object, lang: str) -> Markup:
    """A title or a rule label in ``lang``, its ASCII formulas as MathML (as in the PDF)."""
    parts = _DOLLAR.split(cjk_mathtext(translate(text, lang)))
    return Markup("").join(mathml(p) if k % 2 else _text_of_tex(p) for k, p in enumerate(parts))


def _record(text: object) -> str:
    text = " ".join(str(text).split())  # a template's paragraph, its lines joined
    key = split(text)[0]
    if needs_translation(key):
        _literals.add(key)
    return text


def literal(text: object, lang: str) -> str:
    """A message written in a template, translated (and recorded as the template's)."""
    return translate(_record(text), lang)


def literal_prose(text: object, lang: str) -> Markup:
    """A message with ``$...$`` math written in a template, as :func:`prose`."""
    return prose(_record(text), lang)


def literals() -> set[str]:
    """The catalogue keys of the templates' own messages rendered so far."""
    return set(_literals)


@lru_cache(maxsize=64)
def _png(fig_json: str, lang: str) -> str:
    """A figure (as JSON) drawn in ``lang``, as a base64 PNG ``data:`` URI."""
    import json

    from ._figures import render_figure

    fig = translate_figure(json.loads(fig_json), lang)
    with tempfile.TemporaryDirectory() as folder:
        path = render_figure(fig, Path(folder) / "figure.png", lang=lang)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    return "data:image/png;base64," + data


def figure_uris(figures: list[Mapping], lang: str) -> dict[str, str]:
    """Each figure drawn in ``lang`` as a PNG ``data:`` URI, by figure id."""
    import json

    return {f["id"]: _png(json.dumps(f, sort_keys=True), lang) for f in figures}


def _environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files("report") / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        t=lambda text: literal(text, lang),
        tr=lambda text: translate(text, lang),
        prose=lambda text: prose(text, lang),
        tprose=lambda text: literal_prose(text, lang),
        label=lambda text: label(text, lang),
        math=mathml,
        dmath=lambda tex: mathml(math_line(tex, lang), display=True),
        num=num,
        pct=pct,
        pct_or_na=pct_or_na,
        counterexamples=counterexamples,
        symbols=_text,
        predicted=partial(predicted, lang=lang),
        scenario=partial(describe_scenario, lang=lang),
        quantity=partial(describe_observable, lang=lang),
        outcomes=partial(outcomes, lang=lang),
        outcome=partial(outcome, lang=lang),
        status_counts=partial(status_counts, lang=lang),
    )
    return env


def _anchor(text: str) -> str:
    return "s-" + re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def render_report_html(ev: Mapping, lang: str = "en") -> str:
    """The evidence report as one self-contained HTML page in ``lang``."""
    ctx = context(ev, lang=lang)
    sections = [{**s, "anchor": _anchor(s["title"])} for s in ctx["sections"]]
    figures = [f for s in sections for f in s["figures"]]
    template = _environment(lang).get_template("report.html.j2")
    return template.render(
        **{**ctx, "sections": sections, "lang": lang},
        figures=figure_uris(figures, lang),
        beyond=SECTIONS[-1][1],
    )


def render_handout_html(ev: Mapping, lang: str = "en") -> str:
    """The handout as one self-contained HTML page in ``lang``: each blank reveals its
    answer (the key's content) on click, and each exercise its worked answer."""
    ctx = handout_context(ev, key=True, lang=lang)
    figures = [s["figure"] for s in ctx["sections"] if s["figure"]]
    template = _environment(lang).get_template("handout.html.j2")
    return template.render(**{**ctx, "lang": lang}, figures=figure_uris(figures, lang))
