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
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import jinja2

from ._evidence import status_line

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
    "→": r"$\to$",
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
    """Escape prose for LaTeX, keeping its ``$...$`` math segments as they are."""
    parts = str(text).split("$")
    if len(parts) % 2 == 0:
        raise ValueError(f"unbalanced $ in prose: {text!r}")
    return "".join(f"${p}$" if k % 2 else tex_escape(p) for k, p in enumerate(parts))


def num(x: float | None) -> str:
    """Six significant digits; ``n/a`` for missing values; p-values never print as 0."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.6g}"


def predicted(check: Mapping) -> str:
    """The prediction as the claim allows it: ``≥ y`` for a lower bound, ``y ± b`` with a
    bias bound, marked ``(lecture)`` when it is the lecture's own number."""
    pred = check.get("prediction", {})
    y, kind, bias = num(check["predicted"]), pred.get("kind", "point"), pred.get("bias_bound", 0)
    exact = f"{check['predicted']:.12g}"  # a bound is shown to the digit that bounds
    shown = {"lower_bound": f"≥ {exact}", "upper_bound": f"≤ {exact}"}.get(kind, y)
    if kind == "point" and bias:
        shown = f"{y} ± {bias:.2g}"
    return shown + (" (lecture)" if pred.get("source") == "lecture" else "")


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


def describe_scenario(sc: Mapping) -> str:
    """One line describing a plain-data scenario of any kind."""
    kind = sc.get("kind", "mlp")
    if kind == "scalar":
        f = "f'" if sc.get("function") == "derivative" else "f"
        return f"{f}(x), f = {sc['activation']}, x ∼ N(0, {num(sc['q'])})"
    if kind == "product":
        return f"{sc['depth']} products of {sc['n']}×{sc['n']} N(0, {num(sc['std'])}²) matrices"
    widths = "→".join(map(str, sc["widths"]))
    if len(sc["widths"]) > 6:
        widths = f"{sc['widths'][0]}→…→{sc['widths'][-1]} ({len(sc['widths']) - 1} layers)"
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
        parts.append("residual")
    up = sc.get("upstream")
    if up:
        parts.append("loss ½‖h‖²" if "loss" in up else f"g ∼ N(0, {num(up['std'])}²)")
    parts.append(sc.get("dtype", "float64"))
    return ", ".join(parts)


def describe_observable(ob: Mapping) -> str:
    if "quantity" in ob:
        return f"{ob['quantity'].replace('_', ' ')} {ob['moment']}"
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


def outcomes(claim: Mapping) -> str:
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
    return text


def status_counts(counts: Mapping[str, int]) -> str:
    """Counts by status, strongest first: ``4 proved, 1 computed, 2 tested, ...``."""
    return status_line(counts)


def counterexamples(checks: list[Mapping]) -> str:
    """The counterexamples some checks carry, e.g. ``x = 1, n = 2``; ``""`` if none."""
    return "; ".join(
        ", ".join(f"{name} = {value}" for name, value in k["counterexample"].items())
        for k in checks
        if k.get("counterexample")
    )


def outcome(check: Mapping) -> str:
    """A check's outcome, marked when it refutes the lecture's version as expected."""
    if check["outcome"] == check["expected"] == "disagrees":
        return "refuted as expected"
    return check["outcome"]


def _environment(latex: bool) -> jinja2.Environment:
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
        prose=tex_prose if latex else str,
        num=num,
        predicted=predicted,
        pct=pct,
        pct_or_na=pct_or_na,
        scenario=describe_scenario,
        quantity=describe_observable,
        outcomes=outcomes,
        outcome=outcome,
        status_counts=status_counts,
        counterexamples=counterexamples,
    )
    return env


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


def context(ev: Mapping, handout: bool = False) -> dict:
    """What the templates render: the evidence, grouped by section, plus the soft spots."""
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
    }


def render_markdown(ev: Mapping, handout: bool = False) -> str:
    template = _environment(latex=False).get_template("report.md.j2")
    return template.render(**context(ev, handout))


def render_latex(ev: Mapping, handout: bool = False) -> str:
    template = _environment(latex=True).get_template("report.tex.j2")
    return template.render(**context(ev, handout))


def render_json(ev: Mapping) -> str:
    return json.dumps(ev, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def compile_pdf(tex: Path) -> Path | None:
    """Compile ``tex`` with latexmk/pdflatex; ``None`` when no TeX engine is installed.

    Dates come from ``SOURCE_DATE_EPOCH`` (0 unless set) and the PDF trailer ID is
    suppressed, so the same source gives the same bytes.
    """
    if shutil.which("latexmk") is None or shutil.which("pdflatex") is None:
        return None
    env = {**os.environ, "FORCE_SOURCE_DATE": "1"}
    env.setdefault("SOURCE_DATE_EPOCH", "0")
    cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-quiet", tex.name]
    run = subprocess.run(cmd, cwd=tex.parent, env=env, capture_output=True, text=True)
    log = tex.with_suffix(".log")
    text = log.read_text(errors="replace") if log.exists() else run.stdout
    if run.returncode != 0:
        raise RuntimeError(f"latexmk failed on {tex.name}:\n{text[-3000:]}")
    undefined = re.findall(r"^(?:LaTeX|Package \w+) Warning: .*undefined.*$", text, re.M)
    if undefined:
        raise RuntimeError(f"{tex.name} has undefined references: {undefined[:5]}")
    subprocess.run(["latexmk", "-c", tex.name], cwd=tex.parent, env=env, capture_output=True)
    return tex.with_suffix(".pdf")


def write_report(ev: Mapping, out: Path, *, pdf: bool = True, handout: bool = False) -> list[Path]:
    """Write the report (or the handout) into ``out`` atomically.

    The report is ``report.md``, ``report.tex``, ``report.pdf`` (when a TeX engine is
    installed), ``evidence.json`` and ``figures/*.png``; the handout is
    ``handout.md``, ``handout.tex``, ``handout.pdf`` and its figures. Everything is
    built in a temporary sibling folder and moved into place at the end, so the
    previous contents of ``out`` stay whole until the new build is complete.
    """
    out = Path(out)
    name = "handout" if handout else "report"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o755)
        if ev.get("figures"):
            from ._figures import render_figures

            render_figures(ev["figures"], tmp / "figures")
        if not handout:
            (tmp / "evidence.json").write_text(render_json(ev), encoding="utf-8")
        (tmp / f"{name}.md").write_text(render_markdown(ev, handout), encoding="utf-8")
        tex = tmp / f"{name}.tex"
        tex.write_text(render_latex(ev, handout), encoding="utf-8")
        if pdf and compile_pdf(tex) is None:
            print(f"{name}.pdf skipped: no TeX engine (install latexmk and TeX Live to build it)")
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
