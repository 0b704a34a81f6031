"""Render the evidence into Markdown, LaTeX, PDF and JSON, atomically.

Everything is written into a temporary folder beside the destination and moved into
place at the end, so an interrupted build leaves the previous report whole.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path

import jinja2

from ._evidence import status_line
from ._i18n import LANGUAGES, translate
from ._latex import mathtext, psi_text

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"$\sim$",
    "^": r"\^{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}
_TEX_UNICODE = {
    "γ": r"$\gamma$",
    "μ": r"$\mu$",
    "σ": r"$\sigma$",
    "α": r"$\alpha$",
    "β": r"$\beta$",
    "ℓ": r"$\ell$",
    "≠": r"$\neq$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "→": r"$\to$\allowbreak{}",
    "×": r"$\times$",
    "±": r"$\pm$",
    "∼": r"$\sim$",
    "‖": r"$\|$",
    "½": r"$\frac{1}{2}$",
    "…": r"\dots{}",
    "²": r"$^2$",
    "³": r"$^3$",
    "·": r"$\cdot$",
    "−": "-",
    "≈": r"$\approx$",
}
_TEX_RE = re.compile("|".join(re.escape(k) for k in [*_TEX_SPECIAL, *_TEX_UNICODE]))


def tex_escape(text: object) -> str:
    """Escape plain text for LaTeX (special characters and a few Unicode symbols)."""
    return _TEX_RE.sub(lambda m: {**_TEX_SPECIAL, **_TEX_UNICODE}[m.group()], str(text))


def tex_prose(text: str) -> str:
    """Escape prose for LaTeX, keeping its ``$...$`` math segments (with psi for polygamma)."""
    parts = psi_text(str(text)).split("$")
    if len(parts) % 2 == 0:
        raise ValueError(f"unbalanced $ in prose: {text!r}")
    return "".join(f"${p}$" if k % 2 else _breakable(tex_escape(p)) for k, p in enumerate(parts))


def _breakable(text: str) -> str:
    """Long unbreakable words (exact rationals, SymPy expressions printed as text) with
    break points: every 20 digits, and after each operator, comma or parenthesis."""
    text = re.sub(
        r"\d{25,}", lambda m: r"\allowbreak{}".join(re.findall(r"\d{1,20}", m.group())), text
    )
    return re.sub(
        r"\S{30,}",
        lambda m: re.sub(r"([*+/,(=])(?!\\allowbreak)", r"\1\\allowbreak{}", m.group()),
        text,
    )


def num(x: float | None) -> str:
    """Six significant digits; ``n/a`` for missing values; p-values never print as 0."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.6g}"


def predicted(check: Mapping, lang: str = "en") -> str:
    """The prediction as the claim allows it: ``≥ y`` for a lower bound, ``y ± b`` with a
    bias bound, marked ``(lecture)`` when it is the lecture's own number."""
    pred = check.get("prediction", {})
    y, kind, bias = num(check["predicted"]), pred.get("kind", "point"), pred.get("bias_bound", 0)
    exact = f"{check['predicted']:.12g}"  # a bound is shown to the digit that bounds
    shown = {"lower_bound": f"≥ {exact}", "upper_bound": f"≤ {exact}"}.get(kind, y)
    if kind == "point" and bias:
        shown = f"{y} ± {bias:.2g}"
    return translate(shown + (" (lecture)" if pred.get("source") == "lecture" else ""), lang)


def pct(x: float) -> str:
    return f"{100 * x:.4g}%"


def pct_or_na(x: float | None) -> str:
    return "n/a" if x is None else pct(x)


def _law(w: Mapping, mean: float = 0.0) -> str:
    m = num(mean)
    return {
        "normal": lambda: f"N({m}, {num(w['std'])}²)",
        "uniform": lambda: f"{'' if mean == 0 else f'{m} + '}U[±{num(w['bound'])}]",
        "truncated_normal": lambda: (
            f"TN({m}, {num(w['std'])}², [{w.get('a', -2)}, {w.get('b', 2)}])"
        ),
    }[w["law"]]()


def describe_scenario(sc: Mapping, lang: str = "en") -> str:
    """One line describing a plain-data scenario of any kind (its words in ``lang``)."""
    kind = sc.get("kind", "mlp")
    if kind == "scalar":
        f = "f'" if sc.get("function") == "derivative" else "f"
        return f"{f}(x), f = {sc['activation']}, x ∼ N(0, {num(sc['q'])})"
    if kind == "product":
        text = f"{sc['depth']} products of {sc['n']}×{sc['n']} N(0, {num(sc['std'])}²) matrices"
        return translate(text, lang)
    if "widths" not in sc:  # another kind: its fields as they are
        fields = ", ".join(
            f"{k} {num(v) if isinstance(v, float) else v}"
            for k, v in sc.items()
            if k != "kind" and not isinstance(v, Mapping | list)
        )
        return translate(f"{kind}: {fields}", lang)
    widths = "→".join(map(str, sc["widths"]))
    if len(sc["widths"]) > 6:
        layers = translate(f"({len(sc['widths']) - 1} layers)", lang)
        widths = f"{sc['widths'][0]}→…→{sc['widths'][-1]} {layers}"
    w = sc["weights"] if isinstance(sc["weights"], Mapping) else sc["weights"][0]
    inp = sc.get("input", {})
    parts = [
        widths,
        f"w ∼ {_law(w)}",
        f"x ∼ {_law({'law': 'normal', 'std': 1.0, **inp}, inp.get('mean', 0.0))}",
        sc.get("activation", "linear"),
    ]
    if sc.get("biases"):
        parts.append(f"b ∼ {_law(sc['biases'])}")
    if sc.get("residual"):
        parts.append(translate("residual", lang))
    up = sc.get("upstream")
    if up:
        loss = translate("loss ½‖h‖²", lang)
        parts.append(loss if "loss" in up else f"g ∼ N(0, {num(up['std'])}²)")
    parts.append(sc.get("dtype", "float64"))
    return ", ".join(parts)


def describe_observable(ob: Mapping, lang: str = "en") -> str:
    """The quantity a check estimates, e.g. ``forward second moment, layer 3`` (in ``lang``)."""
    return translate(_observable(ob), lang)


def _observable(ob: Mapping) -> str:
    if "quantity" in ob:
        text = f"{ob['quantity'].replace('_', ' ')} {ob.get('moment', '')}".strip()
        return text + (f", layer {ob['layer']}" if "layer" in ob else "")
    if "direction" not in ob:
        return f"{ob['moment']}"
    site = "pre-activation " if ob.get("of") == "preactivation" else ""
    log = ob["moment"] == "log_m2"
    moment = "mean log m2" if log else ob["moment"]
    text = f"{ob['direction']} {site}{moment}, layer {ob['layer']}"
    if ob.get("relative_to") is not None:
        # a log moment relative to another layer is a difference (the log of a ratio)
        text += f" {'−' if log else '/'} layer {ob['relative_to']}"
    return text


def outcomes(claim: Mapping, lang: str = "en") -> str:
    """Check outcomes against expectations, e.g. ``6/6 as expected``."""
    checks = claim["checks"]
    met = sum(k["outcome"] == k["expected"] for k in checks)
    refuted = sum(k["outcome"] == k["expected"] == "disagrees" for k in checks)
    inconclusive = sum(k["outcome"] == "inconclusive" for k in checks)
    text = f"{met}/{len(checks)} as expected"
    if refuted:
        text += f" ({refuted} refuting the lecture's version)"
    if inconclusive:
        text += f", {inconclusive} inconclusive"
    return translate(text, lang)


def status_counts(counts: Mapping[str, int], lang: str = "en") -> str:
    """Counts by status, strongest first: ``4 proved, 1 computed, 2 tested, ...``."""
    return translate(status_line(counts), lang)


def counterexamples(checks: list[Mapping]) -> str:
    """The counterexamples some checks carry, e.g. ``x = 1, n = 2``; ``""`` if none."""
    return "; ".join(
        ", ".join(f"{name} = {value}" for name, value in k["counterexample"].items())
        for k in checks
        if k.get("counterexample")
    )


def outcome(check: Mapping, lang: str = "en") -> str:
    """A check's outcome, marked when it refutes the lecture's version as expected."""
    if check["outcome"] == check["expected"] == "disagrees":
        return translate("refuted as expected", lang)
    return translate(check["outcome"], lang)


#: Runs of Chinese characters and full-width punctuation.
_CJK = re.compile(r"([\u2e80-\u2fff\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]+)")


def cjk_mathtext(text: object) -> str:
    """:func:`~report._latex.mathtext` for text mixing Chinese and formulas: the
    formulas between runs of Chinese characters are set as in English, the Chinese
    is escaped text (never inside math)."""
    chunks = _CJK.split(str(text))
    return "".join(
        tex_escape(c) if k % 2 else mathtext(c) if c else "" for k, c in enumerate(chunks)
    )


#: Words that SymPy's displays carry as text inside a formula (``\\text{where }``).
_MATH_WORDS = re.compile(r"\\text\{( ?)(where|entry)( ?)\}")


def math_line(line: object, lang: str) -> str:
    """A displayed formula with its few words (``where``, ``entry``) in ``lang``."""
    return _MATH_WORDS.sub(
        lambda m: r"\text{%s%s%s}" % (m[1], translate(m[2], lang), m[3]), str(line)
    )


def _block(text: str, lang: str) -> str:
    """A template's literal paragraph in ``lang``: its lines joined, surrounding space kept."""
    core = text.strip()
    if not core:
        return text
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
    return lead + translate(" ".join(core.split()), lang) + trail


def _filters(latex: bool, lang: str) -> dict[str, Callable]:
    """The filters whose output depends on the language (all identities of English)."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {', '.join(LANGUAGES)}; got {lang!r}")
    if lang == "en":
        plain = {"t": tex_escape if latex else str, "tr": str, "mathline": str}
        return {
            **plain,
            "prose": tex_prose if latex else psi_text,
            "mathtext": mathtext if latex else str,
            "predicted": predicted,
            "scenario": describe_scenario,
            "quantity": describe_observable,
            "outcomes": outcomes,
            "outcome": outcome,
            "status_counts": status_counts,
        }

    def tr(text: object) -> str:
        return translate(text, lang)

    return {
        "t": (lambda x: tex_escape(tr(x))) if latex else tr,
        "tr": partial(_block, lang=lang),
        "mathline": partial(math_line, lang=lang),
        "prose": (lambda x: tex_prose(tr(x))) if latex else (lambda x: psi_text(tr(x))),
        "mathtext": (lambda x: cjk_mathtext(tr(x))) if latex else tr,
        "predicted": partial(predicted, lang=lang),
        "scenario": partial(describe_scenario, lang=lang),
        "quantity": partial(describe_observable, lang=lang),
        "outcomes": partial(outcomes, lang=lang),
        "outcome": partial(outcome, lang=lang),
        "status_counts": partial(status_counts, lang=lang),
    }


def _environment(latex: bool, lang: str = "en") -> jinja2.Environment:
    """The templates' environment in ``lang``: prose filters translate, ``t`` translates
    and escapes a field, ``tr`` translates a literal paragraph and ``_`` a literal."""
    options = dict(
        loader=jinja2.FileSystemLoader(str(resources.files("report") / "templates")),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    if latex:
        options.update(
            block_start_string=r"\BLOCK{",
            block_end_string="}",
            variable_start_string=r"\VAR{",
            variable_end_string="}",
            comment_start_string=r"\#{",
            comment_end_string="}",
            trim_blocks=True,
            lstrip_blocks=True,
        )
    env = jinja2.Environment(**options)
    env.filters.update(
        tex=tex_escape,
        num=num,
        pct=pct,
        pct_or_na=pct_or_na,
        counterexamples=counterexamples,
        label=(lambda t: tex_escape(t).replace(r"\_", r"\_\allowbreak{}")) if latex else str,
        psi=psi_text,
    )
    env.filters.update(_filters(latex, lang))
    env.globals.update(lang=lang, figdir=figure_folder(lang), _=partial(translate, lang=lang))
    return env


def figure_folder(lang: str) -> str:
    """The folder of an edition's figures: ``figures`` in English, ``figures-zh``, ..."""
    return "figures" if lang == "en" else f"figures-{lang}"


def file_name(stem: str, suffix: str, lang: str) -> str:
    """An edition's file name: ``report.tex`` in English, ``report-zh.tex`` in Chinese."""
    return f"{stem}{'' if lang == 'en' else '-' + lang}{suffix}"


#: The lecture's sections, in its order: (first lecture number, heading).
SECTIONS = (
    (1, "Gradients of a deep network"),
    (2, "Exploding and vanishing gradients"),
    (3, "Making training stable"),
    (4, "Constant variance in every layer"),
    (5, "Forward and backward moments"),
    (7, "Xavier initialization"),
    (8, "Activation functions"),
    (9, "Beyond the lecture"),
)
_LECTURE = re.compile(r"^L(\d+)\.")
#: Items of claims the lecture does not make (mean field, SELU, framework gains): ``B1``, ...
_BEYOND = re.compile(r"^B\d+")


def section_of(claim: Mapping) -> str:
    """The heading of the lecture section of a claim's first lecture item.

    A claim whose items are all ``B...`` goes to the last part, "Beyond the lecture".
    """
    items = claim["lecture"]
    if items and all(_BEYOND.match(x) for x in items):
        return SECTIONS[-1][1]
    numbers = [int(m.group(1)) for x in items if (m := _LECTURE.match(x))]
    first = min(numbers) if numbers else 8
    return [h for n, h in SECTIONS if n <= first][-1]


def context(ev: Mapping, handout: bool = False, lang: str = "en") -> dict:
    """What the templates render: the evidence, grouped by section, plus the soft spots.

    Section titles stay English here (figures are matched to them); the templates
    translate what they show into ``lang``.
    """
    sections = [
        {"title": h, "claims": [c for c in ev["claims"] if section_of(c) == h]} for _, h in SECTIONS
    ]
    loose = []
    for c in ev["claims"]:
        spots = [x for x in c["lecture"] if x.startswith("S")]
        if spots or c.get("corrected") or c.get("qualification"):
            loose.append(
                {
                    "spots": spots,
                    "claim": c,
                    "lecture_checks": [k for k in c["checks"] if k["expected"] == "disagrees"],
                }
            )
    loose.sort(key=lambda x: (x["spots"] or ["S9"])[0])
    return {
        "ev": ev,
        "sections": [
            {**s, "figures": [f for f in ev.get("figures", []) if f.get("section") == s["title"]]}
            for s in sections
            if s["claims"]
        ],
        "loose": loose,
        "handout": handout,
        "lang": lang,
        "figdir": figure_folder(lang),
    }


def render_markdown(ev: Mapping, handout: bool = False, lang: str = "en") -> str:
    """The evidence report in Markdown, in ``lang``."""
    template = _environment(latex=False, lang=lang).get_template("report.md.j2")
    return template.render(**context(ev, handout, lang))


def render_latex(ev: Mapping, handout: bool = False, lang: str = "en") -> str:
    """The evidence report in LaTeX, in ``lang`` (the handout is :func:`render_handout`)."""
    template = _environment(latex=True, lang=lang).get_template("report.tex.j2")
    return template.render(**context(ev, handout, lang))


def render_handout(ev: Mapping, key: bool = False, lang: str = "en") -> str:
    """The printable handout in LaTeX, in ``lang``: the student's version, or with
    ``key`` its key."""
    template = _environment(latex=True, lang=lang).get_template("handout.tex.j2")
    return template.render(**handout_context(ev, key=key, lang=lang))


@dataclass(frozen=True)
class HandoutSection:
    """One slide group of the handout: what it derives, shows and corrects.

    ``key`` names the section's prose in ``handout.tex.j2``; ``blanks`` are the
    derivations (claim id, derivation name) whose results the student fills in;
    ``figure`` is the id of the figure shown; ``loose`` the claims whose corrected
    claim or condition goes into the section's box; ``numbers`` the claims whose
    derived probes give the box its numbers when they have no probe of the slide's
    own version.
    """

    key: str
    lecture: tuple[str, ...]
    blanks: tuple[tuple[str, str], ...]
    figure: str
    loose: tuple[str, ...]
    numbers: tuple[tuple[str, str], ...] = ()


#: The handout, in the lecture's order: one section per slide group.
HANDOUT: tuple[HandoutSection, ...] = (
    HandoutSection(
        "gradients",
        ("L1.1", "L1.2", "L2.1", "L2.2", "L2.3", "S6"),
        (
            ("mlp-jacobian", "layer Jacobian (3 -> 2)"),
            ("float-range", "1.5^100: decade"),
            ("gaussian-products", "mean log growth"),
            ("gaussian-products", "top Lyapunov exponent, D2L demo"),
        ),
        "products",
        ("mlp-jacobian", "gaussian-products"),
        (("gaussian-products", "n4-std1-d100-log-growth-mean"),),
    ),
    HandoutSection(
        "sigmoid",
        ("L2.4", "L2.5"),
        (
            ("sigmoid-derivative", "second derivative"),
            ("sigmoid-derivative", "maximum"),
            ("sigmoid-derivative", "tail"),
            ("sigmoid-derivative", "mean slope bound, wide input"),
        ),
        "sigmoid-derivative",
        (),
        (("sigmoid-derivative", "mean-derivative-q100"),),
    ),
    HandoutSection(
        "stable",
        ("L3.1", "L3.2", "L4.1", "L4.2"),
        (
            ("residual-and-clipping", "norm of a scaled gradient"),
            ("relu-log-norm", "mean log-norm increment of a relu layer"),
        ),
        "log-norm-depth",
        ("relu-log-norm", "small-init-depth"),
    ),
    HandoutSection(
        "moments",
        ("L5.1", "L5.2", "L6.1", "L6.2", "L7.1", "L7.2", "S1", "S5"),
        (
            ("forward-variance", "second moment"),
            ("xavier", "fan average"),
            ("xavier", "uniform variance"),
        ),
        "variance-depth",
        ("second-moment-recursion", "backward-independence"),
    ),
    HandoutSection(
        "activations",
        ("L8.1", "L8.2", "L8.3", "L8.4", "L8.5", "S2", "S3", "S4"),
        (
            ("linear-activation", "forward mean"),
            ("taylor-identity-near-zero", "sigmoid: series at 0"),
            ("relu-halves-variance", "second moment"),
            ("taylor-range-of-validity", "tanh: variance ratio"),
        ),
        "tanh-variance",
        ("linear-activation", "relu-halves-variance", "taylor-range-of-validity"),
    ),
)
#: Labels of the derivations within a section: a, b, c, ...
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def report_sections(ev: Mapping) -> dict[str, str]:
    """Each claim's section number in the evidence report (``"3.2"``), and the number
    of the report's section "Where the lecture is loose" under the key ``"loose"``."""
    refs = {}
    sections = context(ev)["sections"]
    for i, section in enumerate(sections, start=1):
        for j, c in enumerate(section["claims"], start=1):
            refs[c["id"]] = f"{i}.{j}"
    refs["loose"] = str(len(sections) + 1)
    return refs


def _claim(ev: Mapping, claim_id: str) -> Mapping:
    for c in ev["claims"]:
        if c["id"] == claim_id:
            return c
    raise KeyError(f"the evidence has no claim {claim_id!r}")


def _blank(ev: Mapping, claim_id: str, name: str, label: str, refs: Mapping) -> dict:
    """A derivation with its steps labelled for the student: ``1a.1``, ``1a.2``, ..."""
    c = _claim(ev, claim_id)
    (d,) = [d for d in c["symbolic"]["derivations"] if d["name"] == name] or [None]
    if d is None:
        raise KeyError(f"claim {claim_id!r} has no derivation {name!r}")
    steps = [s for s in c["symbolic"]["steps"] if s["derivation"] == name]
    return {
        "claim": c,
        "name": name,
        "label": label,
        "ref": refs[claim_id],
        "start": d.get("start_display") or [d["start"]],
        "status": d["status"],
        "steps": [
            {**s, "label": f"{label}.{s['number']}", "lines": s.get("display") or [s["after"]]}
            for s in steps
        ],
    }


def _box(ev: Mapping, section: HandoutSection, refs: Mapping) -> dict:
    """The "where the slide is loose" box: corrected claims and their numbers."""
    items = []
    for claim_id in section.loose:
        c = _claim(ev, claim_id)
        items.append(
            {
                "claim": c,
                "ref": refs[claim_id],
                "text": c.get("corrected") or c.get("qualification") or "",
                "checks": [k for k in c["checks"] if k["expected"] == "disagrees"][:2],
            }
        )
    numbers = []
    for claim_id, probe in section.numbers:
        c = _claim(ev, claim_id)
        numbers += [{**k, "ref": refs[claim_id]} for k in c["checks"] if k["probe"] == probe]
    return {"items": items, "numbers": numbers}


def handout_context(ev: Mapping, key: bool = False, lang: str = "en") -> dict:
    """What ``handout.tex.j2`` renders: the sections of :data:`HANDOUT` with their
    blanks, figure and box, the worked exercises, and the report's section numbers."""
    refs = report_sections(ev)
    figures = {f["id"]: f for f in ev.get("figures", [])}
    sections = []
    for number, section in enumerate(HANDOUT, start=1):
        blanks = [
            _blank(ev, cid, name, f"{number}{_LETTERS[k]}", refs)
            for k, (cid, name) in enumerate(section.blanks)
        ]
        sections.append(
            {
                "key": section.key,
                "number": number,
                "lecture": section.lecture,
                "blanks": blanks,
                "figure": figures.get(section.figure),
                "box": _box(ev, section, refs),
            }
        )
    exercises = {e["id"]: e for e in ev.get("exercises", [])}
    return {
        "ev": ev,
        "sections": sections,
        "exercises": exercises,
        "key": key,
        "refs": refs,
        "lang": lang,
        "figdir": figure_folder(lang),
    }


def render_json(ev: Mapping) -> str:
    return json.dumps(ev, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


#: The TeX engine of each language: pdfLaTeX for English, XeLaTeX (xeCJK) for Chinese.
ENGINES = {"en": "pdflatex", "zh": "xelatex"}


def compile_pdf(tex: Path, *, clean: bool = True, engine: str = "pdflatex") -> Path | None:
    """Compile ``tex`` with latexmk and ``engine`` (``pdflatex`` or ``xelatex``);
    ``None`` when that engine is not installed.

    Dates come from ``SOURCE_DATE_EPOCH`` (0 unless set) and the PDF trailer ID is
    suppressed (pdfTeX) or derived from that date (xdvipdfmx), so the same source gives
    the same bytes. With ``clean`` the auxiliary files and the log are removed
    afterwards; without, the ``.log`` stays for reading.
    """
    if engine not in ("pdflatex", "xelatex"):
        raise ValueError(f"engine must be pdflatex or xelatex; got {engine!r}")
    if shutil.which("latexmk") is None or shutil.which(engine) is None:
        return None
    env = {**os.environ, "FORCE_SOURCE_DATE": "1"}
    env.setdefault("SOURCE_DATE_EPOCH", "0")
    mode = "-pdf" if engine == "pdflatex" else "-xelatex"
    cmd = ["latexmk", mode, "-interaction=nonstopmode", "-halt-on-error", "-quiet", tex.name]
    run = subprocess.run(cmd, cwd=tex.parent, env=env, capture_output=True, text=True)
    log = tex.with_suffix(".log")
    text = log.read_text(errors="replace") if log.exists() else run.stdout
    if run.returncode != 0:
        raise RuntimeError(f"latexmk failed on {tex.name}:\n{text[-3000:]}")
    undefined = re.findall(r"^(?:LaTeX|Package \w+) Warning: .*undefined.*$", text, re.M)
    if undefined:
        raise RuntimeError(f"{tex.name} has undefined references: {undefined[:5]}")
    if clean:
        subprocess.run(["latexmk", "-c", tex.name], cwd=tex.parent, env=env, capture_output=True)
    return tex.with_suffix(".pdf")


def translate_figure(fig: Mapping, lang: str) -> dict:
    """A figure's data with its words in ``lang``: title, caption, axis labels, panel
    titles and legend entries (the numbers and the id are the same)."""
    if lang == "en":
        return dict(fig)

    def tr(text: object) -> object:
        return translate(text, lang) if isinstance(text, str) else text

    return {
        **fig,
        **{k: tr(fig[k]) for k in ("title", "caption", "xlabel", "ylabel") if k in fig},
        "panels": [tr(p) for p in fig.get("panels") or []],
        "series": [
            {**s, **{k: tr(s[k]) for k in ("label", "group") if k in s}}
            for s in fig.get("series", [])
        ],
    }


@dataclass(frozen=True)
class Edition:
    """One rendered file of a build.

    ``stem`` and ``suffix`` name it (``report`` and ``.tex``; in another language
    ``report-zh.tex``), ``handout`` says whether it belongs to the handout's build or
    the report's, and ``render`` gives its text from the evidence and the language.
    A ``.tex`` edition is also compiled to PDF.
    """

    stem: str
    suffix: str
    handout: bool
    render: Callable[[Mapping, str], str]


#: Every edition, in the order they are written.
EDITIONS: tuple[Edition, ...] = (
    Edition("report", ".md", False, lambda ev, lang: render_markdown(ev, lang=lang)),
    Edition("report", ".tex", False, lambda ev, lang: render_latex(ev, lang=lang)),
    Edition("handout", ".tex", True, lambda ev, lang: render_handout(ev, lang=lang)),
    Edition("handout-key", ".tex", True, lambda ev, lang: render_handout(ev, True, lang)),
    Edition("report", ".html", False, lambda ev, lang: _html_page("report", ev, lang)),
    Edition("handout", ".html", True, lambda ev, lang: _html_page("handout", ev, lang)),
)


def _html_page(page: str, ev: Mapping, lang: str) -> str:
    """The self-contained web page of the report or the handout (:mod:`report._html`)."""
    from ._html import render_handout_html, render_report_html

    return (render_report_html if page == "report" else render_handout_html)(ev, lang)


def render_all(ev: Mapping, lang: str) -> dict[str, str]:
    """The text of every edition in ``lang`` by file name, and the figures' words
    (``figures.json``): everything a reader of that language sees."""
    texts = {file_name(e.stem, e.suffix, lang): e.render(ev, lang) for e in EDITIONS}
    figures = [translate_figure(f, lang) for f in ev.get("figures", [])]
    texts["figures.json"] = json.dumps(figures, ensure_ascii=False, indent=1)
    return texts


def _parse_langs(langs: Sequence[str]) -> tuple[str, ...]:
    bad = [x for x in langs if x not in LANGUAGES]
    if bad or not langs:
        raise ValueError(f"langs must be among {', '.join(LANGUAGES)}; got {list(langs)!r}")
    return tuple(dict.fromkeys(langs))


def write_report(
    ev: Mapping,
    out: Path,
    *,
    pdf: bool = True,
    handout: bool = False,
    langs: Sequence[str] = ("en",),
    suffixes: Sequence[str] = (".md", ".tex"),
) -> list[Path]:
    """Write the report (or the handout) into ``out`` atomically, in each of ``langs``.

    The report is ``report.md``, ``report.tex``, ``report.pdf`` (when a TeX engine is
    installed), ``evidence.json`` and ``figures/*.png``; the handout is
    ``handout.tex``/``handout.pdf`` (the student's version: no results, no verdicts),
    ``handout-key.tex``/``handout-key.pdf`` (its answer key) and its figures. Another
    language adds the same files named ``report-zh.tex``, ... with its figures in
    ``figures-zh/``; only the editions of :data:`EDITIONS` whose suffix is in
    ``suffixes`` are written. Everything is built in a temporary sibling folder and
    moved into place at the end, so the previous contents of ``out`` stay whole until
    the new build is complete.
    """
    out = Path(out)
    langs = _parse_langs(langs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o755)
        if not handout:
            (tmp / "evidence.json").write_text(render_json(ev), encoding="utf-8")
        for lang in langs:
            if ev.get("figures"):
                from ._figures import render_figures

                figures = [translate_figure(f, lang) for f in ev["figures"]]
                render_figures(figures, tmp / figure_folder(lang), lang=lang)
            for edition in EDITIONS:
                if edition.handout != handout or edition.suffix not in suffixes:
                    continue
                path = tmp / file_name(edition.stem, edition.suffix, lang)
                path.write_text(edition.render(ev, lang), encoding="utf-8")
                if edition.suffix == ".tex" and pdf:
                    if compile_pdf(path, engine=ENGINES[lang]) is None:
                        print(f"{path.stem}.pdf skipped: no {ENGINES[lang]} (install TeX Live)")
        old = out.parent / f".{out.name}.old"
        if old.exists():
            shutil.rmtree(old)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(p for p in out.rglob("*") if p.is_file())
