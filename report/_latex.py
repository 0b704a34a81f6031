r"""LaTeX for printed pages: SymPy expressions as a reader expects them, and short lines.

:func:`latex` prints :math:`\psi(x)` and :math:`\psi'(x)` instead of SymPy's
``polygamma(0, x)``. :func:`display` cuts an expression into lines a page can hold: a
matrix larger than :math:`2\times 2` is shown by its top-left :math:`2\times 2` block
(with its shape), or by its :math:`(1, 1)` entry when even that block is too wide, and a
long sum is broken before a top-level ``+`` or ``-``, and repeated parts are named and
defined below (:func:`sympy.cse`). Nothing is ever scaled down: a substitution is written
"at x = a" in full-size type rather than as a stacked subscript.

:func:`mathtext` typesets a rule label or a title written in ASCII (``dh^2/dh^1``,
``diag(sigma'(z^1))``, ``q -> 0``) as math, and :func:`psi_text` rewrites
``polygamma`` in LaTeX that was printed elsewhere.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.printing.latex import LatexPrinter

#: Characters of visible math a line of a display holds at the report's text width.
LINE_WIDTH = 60


class _Printer(LatexPrinter):
    """SymPy's LaTeX printer with psi for digamma and trigamma, and flat substitutions."""

    def _print_polygamma(self, expr, exp=None):
        order, arg = expr.args
        primes = {0: "", 1: "'", 2: "''"}.get(int(order), None) if order.is_Integer else None
        head = r"\psi" + (primes if primes is not None else "^{(%s)}" % self._print(order))
        tex = r"%s\left(%s\right)" % (head, self._print(arg))
        return tex if exp is None else r"%s^{%s}" % (tex, exp)

    def _print_Subs(self, subs):
        """``expr`` at ``x = a, y = b`` in full-size type (never a stacked subscript)."""
        expr, old, new = subs.args
        at = r",\ ".join(
            f"{self._print(o)} = {self._print(v)}" for o, v in zip(old, new, strict=True)
        )
        return (
            r"\left. %s \right|_{%s}" % (self._print(expr), at)
            if len(old) == 1 and not any(v.has(sp.Rational) and not v.is_Integer for v in new)
            else r"%s\ \Big|\ %s" % (self._print(expr), at)
        )

    def _print_digamma(self, expr, exp=None):
        return self._print_polygamma(sp.polygamma(0, expr.args[0], evaluate=False), exp)


def latex(expr: sp.Basic) -> str:
    """``expr`` in LaTeX, with :math:`\\psi` for ``polygamma(0, .)``."""
    return _Printer().doprint(expr)


_COMMAND = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])|\\operatorname|[{}]")
_WORD = re.compile(r"\\[a-zA-Z]+")


_MATRIX = re.compile(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}")


def _matrix_width(m: re.Match) -> str:
    rows = m.group(1).split(r"\\")
    widest = max(sum(width(cell) + 4 for cell in row.split("&")) for row in rows)
    return "x" * widest


def width(tex: str) -> int:
    """An estimate of how many characters wide ``tex`` prints (commands count as one;
    a matrix counts as its widest row)."""
    tex = _MATRIX.sub(_matrix_width, tex)
    text = _COMMAND.sub("", tex)
    text = _WORD.sub("x", text)
    text = re.sub(r"[\^_]", "", text)
    return len(text.replace(" ", ""))


def _top_level_terms(tex: str) -> list[str]:
    """``tex`` cut before each ``+`` or ``-`` outside every brace and ``\\left...\\right``."""
    terms, depth, start, k = [], 0, 0, 0
    while k < len(tex):
        if tex.startswith(r"\left", k) and not tex[k + 5 : k + 6].isalpha():
            depth, k = depth + 1, k + 5
            continue
        if tex.startswith(r"\right", k) and not tex[k + 6 : k + 7].isalpha():
            depth, k = depth - 1, k + 6
            continue
        c = tex[k]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c in "+-" and depth == 0 and k > start and tex[:k].rstrip()[-1:] not in "({[=,^_":
            terms.append(tex[start:k].rstrip())
            start = k
        k += 1
    terms.append(tex[start:].strip())
    return [t for t in terms if t]


def break_lines(tex: str, line_width: int = LINE_WIDTH) -> list[str]:
    """``tex`` as lines of at most ``line_width`` visible characters where it can be cut."""
    lines: list[str] = []
    for term in _top_level_terms(tex):
        if lines and width(lines[-1]) + width(term) <= line_width:
            lines[-1] = f"{lines[-1]} {term}"
        else:
            lines.append(term)
    return lines


def _factors(term: str) -> list[str]:
    """``term`` cut at the spaces between its top-level factors."""
    parts, depth, start = [], 0, 0
    for k, c in enumerate(term):
        if term.startswith(r"\left", k) and not term[k + 5 : k + 6].isalpha():
            depth += 1
        elif term.startswith(r"\right", k) and not term[k + 6 : k + 7].isalpha():
            depth -= 1
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == " " and depth == 0 and term[k - 1 : k] != "\\":
            parts.append(term[start:k])
            start = k + 1
    parts.append(term[start:])
    return [p for p in parts if p]


def _fit(tex: str, line_width: int) -> list[str]:
    """Lines of ``tex``: cut at top-level signs, then long products between factors."""
    lines: list[str] = []
    for line in break_lines(tex, line_width):
        if width(line) <= line_width:
            lines.append(line)
            continue
        for factor in _factors(line):
            if lines and lines[-1] != line and width(lines[-1]) + width(factor) <= line_width:
                lines[-1] = f"{lines[-1]} {factor}"
            else:
                lines.append(factor)
    return lines


def _is_matrix(expr) -> bool:
    return isinstance(expr, sp.MatrixBase)


def _matrices(expr) -> list[sp.MatrixBase]:
    """The matrices of a matrix expression, left to right."""
    if _is_matrix(expr):
        return [expr]
    if isinstance(expr, (sp.MatMul, sp.MatAdd)):
        return [m for a in expr.args for m in _matrices(a)]
    return []


def _block(m: sp.MatrixBase) -> sp.Matrix:
    """The top-left :math:`2\\times 2` block of ``m`` (all of it when smaller)."""
    return sp.Matrix(m[: min(m.rows, 2), : min(m.cols, 2)])


def _corner(block: sp.MatrixBase, shape: tuple[int, int]) -> str:
    """``block`` as the top-left corner of a matrix of ``shape``, with dots and the shape."""
    rows, cols = shape
    body = []
    for i in range(block.rows):
        row = [latex(block[i, j]) for j in range(block.cols)]
        if cols > 2:
            row.append(r"\cdots")
        body.append(" & ".join(row))
    if rows > 2:
        body.append(" & ".join([r"\vdots"] * block.cols + ([r"\ddots"] if cols > 2 else [])))
    size = r"_{%d\times %d}" % shape if rows > 2 or cols > 2 else ""
    return r"\begin{bmatrix}%s\end{bmatrix}%s" % (r" \\ ".join(body), size)


def _parts(expr, blocks: list) -> list[str]:
    """``expr`` cut into printable parts: one per matrix factor (``blocks`` consumed in
    order: the block shown for each matrix), ``+`` before each term of a sum."""
    if _is_matrix(expr):
        return [_corner(blocks.pop(0), expr.shape)]
    if isinstance(expr, sp.MatAdd):
        out = []
        for k, a in enumerate(expr.args):
            p = _parts(a, blocks)
            out += [("+ " if k else "") + p[0], *p[1:]]
        return out
    if isinstance(expr, sp.MatMul):
        return [p for a in expr.args for p in _parts(a, blocks)]
    return [latex(expr)]


def _join(parts: list[str], line_width: int) -> list[str]:
    lines: list[str] = []
    for part in parts:
        if lines and width(lines[-1]) + width(part) <= line_width:
            lines[-1] = f"{lines[-1]} {part}"
        else:
            lines.append(part)
    return lines


def _where(pairs, line_width: int) -> list[str]:
    """``where u_1 = ...`` lines defining the names of :func:`sympy.cse`."""
    out = []
    for k, (name, value) in enumerate(pairs):
        defined = _fit(latex(value), line_width - 10)
        lead = r"\text{where } " if k == 0 else r"\phantom{\text{where }} "
        out.append(f"{lead}{latex(name)} = {defined[0]}")
        out.extend(rf"\phantom{{\text{{where }}{latex(name)} = }} {d}" for d in defined[1:])
    return out


def _fits(lines: list[str], line_width: int) -> bool:
    return max(map(width, lines)) <= line_width


def _cse(exprs: list) -> tuple[list, list]:
    pairs, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("u", start=1))
    return pairs, reduced


def display(expr: sp.Basic, line_width: int = LINE_WIDTH) -> list[str]:
    """``expr`` as LaTeX lines a page can print at full size.

    A matrix larger than :math:`2\\times 2` is shown by its top-left :math:`2\\times 2`
    block with dots and its shape (or, alone and too wide, by its :math:`(1, 1)`
    entry); a product or sum of matrices factor by factor; a long sum is broken before
    a top-level sign and a long product between factors. When that is not enough,
    repeated subexpressions are named :math:`u_1, u_2, \\dots` (:func:`sympy.cse`) and
    defined on the lines after. The lines are meant for an ``aligned`` environment.
    """
    matrices = _matrices(expr)
    if not matrices:
        lines = _fit(latex(expr), line_width)
        if _fits(lines, line_width):
            return lines
        pairs, (reduced,) = _cse([expr])
        return _fit(latex(reduced), line_width) + _where(pairs, line_width) if pairs else lines
    blocks = [_block(m) for m in matrices]
    lines = _join(_parts(expr, list(blocks)), line_width)
    if _fits(lines, line_width):
        return lines
    pairs, reduced = _cse(blocks)
    lines = _join(_parts(expr, [sp.Matrix(b) for b in reduced]), line_width)
    if _fits(lines, line_width) or not _is_matrix(expr):
        return lines + _where(pairs, line_width)
    head = r"\left[\,\cdot\,\right]_{%d\times %d},\ (1,1)\text{ entry}" % expr.shape
    entry = expr[0, 0]
    lines = _fit(latex(entry), line_width)
    if not _fits(lines, line_width) or len(lines) > 3:
        pairs, (reduced,) = _cse([entry])
        lines = _fit(latex(reduced), line_width) + _where(pairs, line_width)
    return [head, *lines]


# --------------------------------------------------------------------------- labels

#: Words that are math wherever they appear in a label, and their LaTeX.
_MATH_WORDS = {
    "sigma": r"\sigma",
    "gamma": r"\gamma",
    "epsilon": r"\epsilon",
    "theta": r"\theta",
    "beta": r"\beta",
    "alpha": r"\alpha",
    "psi": r"\psi",
    "mu": r"\mu",
    "exp": r"\exp",
    "log": r"\log",
    "log10": r"\log_{10}",
    "diag": r"\operatorname{diag}",
    "tanh": r"\tanh",
    "Var": r"\operatorname{Var}",
    "max": r"\max",
    "min": r"\min",
    "kappa": r"\kappa",
    "rho": r"\rho",
    "lambda": r"\lambda",
}
_OPERATORS = {"+", "-", "=", "<", ">", "<=", ">=", "->", "*", "/"}
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_CODE = re.compile(
    r"^(?:sympy|numpy|Matrix|mpmath|scipy)\.[\w.]+$|^[a-z]{2,}_[a-z]{2,}[a-z_]*$|^gammasimp$"
)


def _split_punctuation(token: str) -> tuple[str, str, str]:
    """``(lead, core, trail)``: unmatched brackets and trailing ``,:;`` moved out of ``core``."""
    lead = trail = ""
    while token[-1:] in ",:;" and len(token) > 1:
        token, trail = token[:-1], token[-1] + trail
    if token.startswith("(") and token.endswith(")") and token.count("(") == 1:
        return "(", token[1:-1], ")" + trail
    while token.startswith("(") and token.count("(") > token.count(")"):
        token, lead = token[1:], lead + "("
    while token.endswith(")") and token.count(")") > token.count("("):
        token, trail = token[:-1], ")" + trail
    while token[-1:] in ",:;" and len(token) > 1:
        token, trail = token[:-1], token[-1] + trail
    return lead, token, trail


def _kind(core: str) -> str:
    """``math``, ``weak`` (a number or an operator: math only beside math), ``code`` or ``text``."""
    if not core:
        return "text"
    if _CODE.match(core):
        return "code"
    if core in _OPERATORS:
        return "weak"
    if _NUMBER.match(core):
        return "weak"
    if (core in _MATH_WORDS and core not in ("max", "min")) or (
        len(core) == 1 and core.isalpha() and core not in "aAI"
    ):
        return "math"
    if "." in core and not re.search(r"\d\.\d", core):
        return "text"
    if re.search(r"\w's$", core):
        return "text"
    words = re.findall(r"[A-Za-z]+", core)
    if any(len(w) > 2 and w not in _MATH_WORDS and w != "log" for w in words):
        return "text"
    return "math" if re.search(r"[\^_/=<>|\[\]']|\d[x]\d|\(", core) else "text"


def _math(span: str) -> str:
    """An ASCII formula of a label in LaTeX."""
    tex = span
    for a, b in (("->", r"\to "), (">=", r"\geq "), ("<=", r"\leq ")):
        tex = tex.replace(a, b)
    tex = re.sub(r"\bdl/", r"\\partial\\ell/", tex)
    tex = re.sub(r"\bd([hW])\^", r"\\partial \1^", tex)
    tex = re.sub(r"\bE(?=\[| )", r"\\mathbb{E}", tex)
    tex = re.sub(r"(?<=\d)x(?=\d)", r"\\times ", tex)
    tex = re.sub(
        r"(?<![\\A-Za-z])("
        + "|".join(sorted(_MATH_WORDS, key=len, reverse=True))
        + r")(?![A-Za-z])",
        lambda m: _MATH_WORDS[m.group(1)] + (" " if tex[m.end() : m.end() + 1].isalnum() else ""),
        tex,
    )
    tex = re.sub(
        r"([\^_])(\{[^}]*\}|\\[A-Za-z]+|[A-Za-z0-9]+)",
        lambda m: m.group(1) + "{" + m.group(2).strip("{}") + "}",
        tex,
    )
    bars = iter([r"\lvert ", r"\rvert "] * tex.count("|"))
    return _break_points(re.sub(r"\|", lambda m: next(bars), tex).strip())


def _break_points(tex: str) -> str:
    """``tex`` with ``\allowbreak`` at its top-level spaces, so a label can wrap."""
    out, depth = [], 0
    for k, c in enumerate(tex):
        depth += c in "{(" and tex[k - 1 : k] != "\\"
        depth -= c in "})" and tex[k - 1 : k] != "\\"
        between = c == " " and depth == 0 and tex[k - 1 : k] in (")", "}", "]")
        out.append(r" \allowbreak " if between else c)
    return "".join(out)


def _open(text: str) -> bool:
    return text.count("(") > text.count(")")


def mathtext(label: object) -> str:
    """A rule label or a title in LaTeX: its formulas as math, code names in typewriter.

    ``dh^2/dh^1`` becomes :math:`\\partial h^{2}/\\partial h^{1}`, ``diag(sigma'(z^1))``
    :math:`\\operatorname{diag}(\\sigma'(z^{1}))`, ``q -> 0`` :math:`q \\to 0`, and
    ``sympy.integrate`` is set in typewriter; the rest is escaped text.
    """
    from ._render import tex_escape

    out: list[str] = []
    span: list[str] = []
    strong = False

    def flush() -> None:
        nonlocal span, strong
        if span and strong:
            out.append("$" + _math(" ".join(span)) + "$")
        elif span:
            out.append(tex_escape(" ".join(span)))
        span, strong = [], False

    for k, token in enumerate(str(label).split(" ")):
        lead, core, trail = _split_punctuation(token) if token else ("", "", "")
        kind = _kind(core)
        sep = " " if k else ""
        if span and strong and kind in ("math", "weak"):
            core, lead = lead + core, ""
            while trail[:1] == ")" and _open(" ".join([*span, core])):
                core, trail = core + ")", trail[1:]
        if kind in ("math", "weak") and not lead:
            if not span:
                out.append(sep)
            span.append(core)
            strong = strong or kind == "math" or core in _OPERATORS - {"-"}
        else:
            flush()
            out.append(sep + tex_escape(lead))
            if kind in ("math", "weak"):
                span, strong = [core], kind == "math" or core in _OPERATORS - {"-"}
            elif kind == "code":
                out.append(r"\texttt{" + tex_escape(core) + "}")
            else:
                out.append(tex_escape(core))
        if trail:
            flush()
            out.append(tex_escape(trail))
    flush()
    return "".join(out)


_POLYGAMMA = r"\operatorname{polygamma}{\left("


def psi_text(tex: str) -> str:
    r"""``tex`` with SymPy's ``\operatorname{polygamma}{\left(k,x \right)}`` written as
    :math:`\psi(x)`, :math:`\psi'(x)` or :math:`\psi^{(k)}(x)` (for text that was
    printed before it reached :func:`latex`)."""
    out, k = [], 0
    while (start := tex.find(_POLYGAMMA, k)) >= 0:
        out.append(tex[k:start])
        i, depth = start + len(_POLYGAMMA), 1
        body_start = i
        while i < len(tex) and depth:
            if tex.startswith(r"\left", i) and not tex[i + 5 : i + 6].isalpha():
                depth += 1
            elif tex.startswith(r"\right", i) and not tex[i + 6 : i + 7].isalpha():
                depth -= 1
                if not depth:
                    break
            i += 1
        body = tex[body_start:i].strip()
        order, _, arg = body.partition(",")
        head = {"0": r"\psi", "1": r"\psi'"}.get(order.strip(), r"\psi^{(%s)}" % order.strip())
        out.append(r"%s\left(%s\right)" % (head, arg.strip()))
        k = i + len(r"\right)")
        if tex[k : k + 1] == "}":
            k += 1
    out.append(tex[k:])
    return "".join(out)
