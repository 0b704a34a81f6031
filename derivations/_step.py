r"""One step of a derivation of one's own: is ``BEFORE = AFTER`` under the declarations?

:func:`check_step` takes the two sides as text, in SymPy syntax plus two notations of
the lecture, and the declarations of the symbols (the ``--given`` of ``initproof
step``); it parses them with the whitelist parser of :mod:`derivations._user` and asks
the checking kernel (:func:`derivations.check_algebraic`) whether the two sides agree
on the whole declared domain.

Notation
--------
* ``E[...]``: the expectation over the one random variable inside the brackets,
  declared by ``--given 'x ~ N(0, q)'`` (Gaussian, mean 0, variance ``q``; also
  ``N(mu, s2)``) or ``--given 'x ~ U(-a, a)'`` (uniform on ``[-a, a]``; also
  ``U(lo, hi)``). :math:`\mathbb{E}[f(x)]` for :math:`x \sim N(\mu, s^2)` is the
  project's canonical :func:`derivations._gaussian.gaussian_integral`
  :math:`\int f(\mu + s z)\,\varphi(z)\,dz`; for :math:`x \sim U(lo, hi)` it is
  :math:`\int_{lo}^{hi} f(x)\,dx / (hi - lo)`.
* ``O(q**k)``: in ``AFTER`` only, once, as the last term of ``P + O(q**k)``: a series
  step, ``BEFORE - P`` vanishes to order :math:`q^k` at :math:`q = 0`.

Declarations
------------
``x real``, ``x > 0``, ``x >= 0``, ``x < 0``, ``x <= 0``, ``n integer``,
``n integer > 0`` (or ``n positive integer``), ``n integer >= 0``; several names at
once (``x, y real``); several declarations in one string, separated by ``;``. A symbol
in the variance of a Gaussian or the bounds of a uniform law is positive unless
declared otherwise (one in a mean is real); every other undeclared symbol is real, and
the result says so. The domain of each symbol becomes its SymPy assumptions, which is
where the kernel draws its test points from.

Text is never evaluated as Python: every token is checked against the whitelist
before :func:`derivations._user.parse_expression` (itself a whitelist in front of
``parse_expr``) sees it, and the brackets of ``E[...]`` and the ``O(...)`` term are
cut out and parsed separately, replaced by placeholder symbols the user cannot name.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import sympy as sp

from ._budget import CHECK_SECONDS, BudgetExceeded, time_budget
from ._check import check_algebraic
from ._claim import Status
from ._gaussian import gaussian_integral
from ._user import (
    _DECIMAL,
    _PARSER_GLOBALS,
    CONSTANTS,
    FUNCTIONS,
    MAX_LENGTH,
    OPERATORS,
    InputError,
    check_text,
    parse_expression,
)

#: Most declarations (after splitting on ``;``) one step may carry.
MAX_GIVEN = 16
#: Most distinct symbols one step may use (declared and undeclared).
MAX_SYMBOLS = 16
#: Wall time after which the whole step is abandoned as undecided; the kernel bounds
#: each of its own operations by :data:`derivations._budget.CHECK_SECONDS`, so this
#: backstop only acts if the kernel does not.
STEP_SECONDS = CHECK_SECONDS + 5

#: Names a symbol may not take: functions, constants, the ``O`` of series, and the
#: constructors the parser emits for numbers and operators.
RESERVED = frozenset({*FUNCTIONS, *CONSTANTS, "O", *_PARSER_GLOBALS})
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

GIVEN_FORMS = (
    "'x ~ N(0, q)' (x Gaussian, mean 0, variance q), 'x ~ N(mu, s2)', "
    "'x ~ U(-a, a)' (x uniform on [-a, a]), 'x ~ U(lo, hi)', "
    "'x real', 'x > 0', 'x >= 0', 'x < 0', 'x <= 0', 'n integer', "
    "'n integer > 0' (or 'n positive integer'), 'n integer >= 0'; "
    "several names: 'x, y real'; several declarations: 'x real; n integer > 0'"
)

# --------------------------------------------------------------------------- domains

_SIGNS: dict[str, tuple[str, str]] = {
    # assumption -> (word, comparison)
    "positive": ("positive", "> 0"),
    "nonnegative": ("nonnegative", ">= 0"),
    "negative": ("negative", "< 0"),
    "nonpositive": ("nonpositive", "<= 0"),
}


def _domain_phrases() -> dict[str, dict[str, bool]]:
    """Every accepted domain phrase (normalised) and the SymPy assumptions it sets."""
    table: dict[str, dict[str, bool]] = {}
    for kind in ("real", "integer"):
        table[kind] = {kind: True}
        for sign, (word, cmp) in _SIGNS.items():
            assumptions = {kind: True, sign: True}
            table[f"{word} {kind}"] = assumptions
            table[f"{kind} {cmp}"] = assumptions
            if kind == "real":
                table[word] = assumptions
                table[cmp] = assumptions
    return table


DOMAINS: dict[str, dict[str, bool]] = _domain_phrases()


def _normalise_phrase(text: str) -> str:
    text = re.sub(r"\s*(>=|<=|>|<)\s*", r" \1 ", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def describe_domain(symbol: sp.Symbol) -> str:
    """The domain a symbol's assumptions give it, in the words of ``--given``.

    >>> describe_domain(sp.Symbol("n", integer=True, positive=True))
    'integer > 0'
    """
    kind = "integer" if symbol.is_integer else "real"
    for sign, (_, cmp) in _SIGNS.items():
        if getattr(symbol, f"is_{sign}"):
            return f"{kind} {cmp}"
    return kind


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Law:
    """The law of a random variable declared with ``x ~ N(mean, variance)`` or ``U(lo, hi)``.

    Attributes
    ----------
    variable : sympy.Symbol
        The random variable (real).
    kind : {"normal", "uniform"}
        Gaussian or uniform.
    first, second : sympy.Expr
        ``mean`` and ``variance`` (normal), or ``lo`` and ``hi`` (uniform).
    """

    variable: sp.Symbol
    kind: Literal["normal", "uniform"]
    first: sp.Expr
    second: sp.Expr

    def __str__(self) -> str:
        head = "N" if self.kind == "normal" else "U"
        return f"{self.variable} ~ {head}({sp.sstr(self.first)}, {sp.sstr(self.second)})"

    def expectation(self, f: sp.Expr, z: sp.Symbol) -> sp.Expr:
        """:math:`\\mathbb{E}[f]` over this variable, unevaluated.

        Normal: :func:`~derivations._gaussian.gaussian_integral` of
        ``f(mean + x)`` with variance ``second``, in the standard variable ``z``;
        uniform: ``Integral(f, (x, lo, hi)) / (hi - lo)``.
        """
        x = self.variable
        if self.kind == "normal":
            shifted = f if self.first == 0 else f.xreplace({x: self.first + x})
            return gaussian_integral(shifted, x, self.second, z)
        return sp.Integral(f, (x, self.first, self.second)) / (self.second - self.first)


@dataclass(frozen=True)
class Declaration:
    """One symbol of a step: its name, SymPy symbol, domain and, if random, its law.

    Attributes
    ----------
    name : str
        As typed.
    symbol : sympy.Symbol
        With the assumptions of its domain.
    domain : str
        ``"real"``, ``"real > 0"``, ``"integer > 0"``, ...
    origin : {"given", "parameter", "default"}
        Declared by a ``--given``; a parameter of a law (positive when it is a variance
        or a bound, unless declared otherwise); or undeclared, hence real.
    law : Law, optional
        For a random variable.
    """

    name: str
    symbol: sp.Symbol
    domain: str
    origin: Literal["given", "parameter", "default"]
    law: Law | None = None

    def __str__(self) -> str:
        if self.law is not None:
            return str(self.law)
        how = {"given": "", "parameter": " (law parameter)", "default": " (undeclared)"}
        return f"{self.name} {self.domain}{how[self.origin]}"


@dataclass(frozen=True)
class StepResult:
    """The verdict on one step ``before = after``.

    Attributes
    ----------
    before_text, after_text : str
        The two sides as given.
    before, after : sympy.Expr
        As parsed: ``E[...]`` is an unevaluated integral, ``O(...)`` a SymPy ``Order``.
    given : tuple of str
        The declarations as given (split on ``;``, whitespace trimmed).
    declarations : tuple of Declaration
        Every symbol of the step, including the undeclared ones (real).
    status : Status
        The kernel's verdict: ``proved``, ``computed``, ``tested``, ``undecided`` or
        ``refuted``.
    method : str
        How the kernel checked it.
    reason : str
        What it compared, in words (the kernel's detail).
    counterexample : mapping of str to str, optional
        For a refutation: the point, ``name -> value``.
    notes : tuple of str
        What the step assumed that the user did not say (undeclared symbols).
    """

    before_text: str
    after_text: str
    before: sp.Expr
    after: sp.Expr
    given: tuple[str, ...]
    declarations: tuple[Declaration, ...]
    status: Status
    method: str
    reason: str
    counterexample: Mapping[str, str] | None = field(default=None, hash=False, compare=False)
    notes: tuple[str, ...] = ()

    @property
    def defaulted(self) -> tuple[str, ...]:
        """Names used but not declared (taken as real)."""
        return tuple(d.name for d in self.declarations if d.origin == "default")

    def headline(self) -> str:
        """``refuted: Max(0, x) = x fails at x = -3 (points)``."""
        line = f"{self.status}: {self.before_text} = {self.after_text}"
        if self.status is Status.REFUTED and self.counterexample:
            point = ", ".join(f"{k} = {v}" for k, v in self.counterexample.items())
            line += f" fails at {point}"
        return f"{line} ({self.method})"


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Tok:
    kind: int
    text: str
    start: int
    end: int


def _tokens(text: str, argument: str, *, brackets: bool) -> list[_Tok]:
    """Tokenize one line and reject what the whitelist does not allow.

    Allowed: decimal numbers, the operators of :data:`derivations._user.OPERATORS`
    (and ``[``, ``]`` when ``brackets``), and names: whitelisted functions and
    constants, and symbol names (checked by :func:`_symbol_name`).
    """
    try:
        raw = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        raise InputError(
            f"`{argument}` is not an expression ({exc.args[0]}); got {argument}={text!r}."
        ) from None
    allowed_ops = OPERATORS | {"[", "]"} if brackets else OPERATORS
    out = []
    for tok in raw:
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        (_, start), (_, end) = tok.start, tok.end
        ok = (
            (tok.type == tokenize.NUMBER and _DECIMAL.match(tok.string))
            or (tok.type == tokenize.OP and tok.string in allowed_ops)
            or tok.type == tokenize.NAME
        )
        if not ok:
            what = "number" if tok.type == tokenize.NUMBER else "token"
            raise InputError(
                f"`{argument}` may contain only numbers, the operators "
                f"{' '.join(sorted(allowed_ops))}, function names and symbol names; got the "
                f"{what} {tok.string!r} in {argument}={text!r}. Nothing was evaluated."
            )
        out.append(_Tok(tok.type, tok.string, start, end))
    return out


def _symbol_name(name: str, argument: str, text: str) -> str:
    """``name`` if it may be a symbol: ASCII letters, digits, ``_``; a letter first."""
    if not _NAME.fullmatch(name) or keyword.iskeyword(name):
        raise InputError(
            f"`{argument}` uses the name {name!r}, which cannot be a symbol: a symbol is a "
            f"letter followed by letters, digits or '_' (not a Python keyword); got "
            f"{argument}={text!r}. Nothing was evaluated."
        )
    if name in RESERVED:
        raise InputError(
            f"`{argument}` uses {name!r} as a symbol, but it is a reserved name (functions "
            f"{', '.join(FUNCTIONS)}; constants {', '.join(CONSTANTS)}; O for series); "
            f"got {argument}={text!r}."
        )
    return name


def _match(toks: list[_Tok], i: int, text: str, argument: str) -> int:
    """Index of the bracket closing ``toks[i]`` (``(`` or ``[``)."""
    pairs = {"(": ")", "[": "]"}
    stack = []
    for j in range(i, len(toks)):
        t = toks[j].text
        if toks[j].kind != tokenize.OP:
            continue
        if t in pairs:
            stack.append(pairs[t])
        elif t in (")", "]"):
            if not stack or stack.pop() != t:
                break
            if not stack:
                return j
    raise InputError(f"`{argument}` has unbalanced brackets; got {argument}={text!r}.")


def _names(text: str, argument: str) -> list[str]:
    """The symbol names ``text`` uses (not functions, constants, ``E[`` or ``O(``)."""
    toks = _tokens(text, argument, brackets=True)
    names = []
    for i, tok in enumerate(toks):
        if tok.kind != tokenize.NAME:
            continue
        nxt = toks[i + 1].text if i + 1 < len(toks) else ""
        if tok.text in FUNCTIONS or tok.text in CONSTANTS or tok.text == "O":
            continue
        if nxt == "(":
            raise InputError(
                f"`{argument}` calls {tok.text!r}, which is not an allowed function; the "
                f"functions are {', '.join(FUNCTIONS)} (and O(...) for series); got "
                f"{argument}={text!r}. Nothing was evaluated."
            )
        names.append(_symbol_name(tok.text, argument, text))
    return names


# --------------------------------------------------------------------------- declarations


def _split_args(body: str) -> list[str]:
    """Split ``body`` at the commas outside parentheses."""
    parts, depth, last = [], 0, 0
    for i, ch in enumerate(body):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[last:i])
            last = i + 1
    parts.append(body[last:])
    return [p.strip() for p in parts]


_LAW = re.compile(r"^([A-Za-z_]\w*)\s*~\s*([A-Za-z]+)\s*[(\[](.*)[)\]]$")
_DOMAIN = re.compile(r"^([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*(.*)$")


def _bad_given(text: str, why: str) -> InputError:
    return InputError(f"`--given` {why}; got --given={text!r}. Accepted forms: {GIVEN_FORMS}.")


def split_given(given: Sequence[str] | str | None) -> tuple[str, ...]:
    """The declarations, one per item: split on ``;``, trimmed, empty ones dropped."""
    if given is None:
        return ()
    if isinstance(given, str):
        given = [given]
    if not isinstance(given, Sequence) or not all(isinstance(g, str) for g in given):
        raise InputError(f"`--given` must be strings; got --given={given!r}.")
    out = []
    for g in given:
        if len(g) > MAX_LENGTH:
            raise InputError(
                f"`--given` is {len(g)} characters long; at most {MAX_LENGTH} are accepted."
            )
        if "\n" in g or "\r" in g:
            raise InputError(f"`--given` must be one line; got --given={g!r}.")
        out += [part.strip() for part in g.split(";") if part.strip()]
    if len(out) > MAX_GIVEN:
        raise InputError(f"`--given` allows at most {MAX_GIVEN} declarations; got {len(out)}.")
    return tuple(out)


@dataclass(frozen=True)
class _LawText:
    variable: str
    kind: Literal["normal", "uniform"]
    args: tuple[str, str]
    text: str


def _parse_declaration(
    text: str, domains: dict[str, dict[str, bool]], laws: dict[str, _LawText]
) -> None:
    """Record one declaration in ``domains`` (name -> assumptions) or ``laws``."""
    m = _LAW.match(text)
    if m is not None:
        name, head, body = m.groups()
        _symbol_name(name, "--given", text)
        heads = {"N": "normal", "U": "uniform"}
        if head not in heads:
            raise _bad_given(text, f"names the law {head!r}; the laws are N (normal) and U")
        args = _split_args(body)
        if len(args) != 2 or not all(args):
            what = "mean, variance" if head == "N" else "lo, hi"
            raise _bad_given(text, f"gives {head} {len(args)} arguments; it takes two ({what})")
        if name in laws:
            raise _bad_given(text, f"declares the law of {name!r} twice")
        laws[name] = _LawText(name, heads[head], (args[0], args[1]), text)
        return
    if "~" in text:
        raise _bad_given(text, "is not a law of the form 'x ~ N(0, q)' or 'x ~ U(-a, a)'")
    m = _DOMAIN.match(text)
    phrase = _normalise_phrase(m.group(2)) if m else ""
    if m is None or phrase not in DOMAINS:
        raise _bad_given(text, "is not a declaration initproof knows")
    for name in re.split(r"\s*,\s*", m.group(1)):
        _symbol_name(name, "--given", text)
        merged = {**domains.get(name, {}), **DOMAINS[phrase]}
        domains[name] = merged


def _make_symbol(name: str, assumptions: Mapping[str, bool]) -> sp.Symbol:
    try:
        return sp.Symbol(name, **assumptions)
    except sp.core.facts.InconsistentAssumptions:
        raise InputError(
            f"`--given` declares contradictory domains for {name!r} "
            f"({', '.join(k for k, v in assumptions.items() if v)}); give one."
        ) from None


def parse_given(given: Sequence[str] | str | None) -> tuple[Declaration, ...]:
    """The symbols the declarations ``given`` define, with their domains and laws.

    Parameters
    ----------
    given : sequence of str
        Declarations such as ``"x ~ N(0, q)"``, ``"n integer > 0"``, ``"x, y real"``;
        an item may hold several, separated by ``;``.

    Returns
    -------
    tuple of Declaration
        One per symbol: the declared ones, the random variables, and the parameters of
        the laws (a variance or a bound is positive, a mean real, unless declared).

    Raises
    ------
    InputError
        Naming ``--given`` and showing the accepted forms, for a declaration it does
        not know, a bad name, contradictory domains, a law whose variance (or width
        ``hi - lo``) SymPy cannot show to be positive, or a law whose parameters are
        random.

    Examples
    --------
    >>> [str(d) for d in parse_given(["x ~ N(0, q)"])]
    ['q real > 0 (law parameter)', 'x ~ N(0, q)']
    """
    items = split_given(given)
    domains: dict[str, dict[str, bool]] = {}
    laws: dict[str, _LawText] = {}
    for text in items:
        _parse_declaration(text, domains, laws)
    # random variables are real; a declared domain on one may only say so
    for name in laws:
        if domains.get(name, {"real": True}) != {"real": True}:
            raise _bad_given(
                laws[name].text,
                f"declares {name!r} random and also restricts its domain "
                f"({describe_domain(sp.Symbol(name, **domains[name]))}); its law gives its "
                "values, so declare only the law",
            )
    # parameters of the laws: positive (variance, bounds) or real (mean) unless declared
    params: dict[str, dict[str, bool]] = {}
    for law in laws.values():
        roles = ("real", "positive") if law.kind == "normal" else ("positive", "positive")
        for arg, role in zip(law.args, roles, strict=True):
            for name in _names(arg, "--given"):
                if name in laws:
                    raise _bad_given(
                        law.text,
                        f"uses the random variable {name!r} as a parameter; the parameters "
                        "of a law must be constants",
                    )
                if name not in domains and params.get(name) != {"positive": True}:
                    params[name] = {role: True}
    names = {*domains, *laws, *params}
    if len(names) > MAX_SYMBOLS:
        raise InputError(f"`--given` declares {len(names)} symbols; at most {MAX_SYMBOLS}.")
    symbols: dict[str, sp.Symbol] = {}
    decls: dict[str, Declaration] = {}
    for name, assumptions in {**params, **domains}.items():
        origin = "given" if name in domains else "parameter"
        symbols[name] = _make_symbol(name, assumptions)
        decls[name] = Declaration(name, symbols[name], describe_domain(symbols[name]), origin)
    for name in laws:
        symbols[name] = sp.Symbol(name, real=True)
    for name, law in laws.items():
        first, second = (
            parse_expression(arg, argument="--given", symbols=symbols) for arg in law.args
        )
        if law.kind == "normal" and second.is_positive is not True:
            raise _bad_given(
                law.text,
                f"gives {name!r} the variance {sp.sstr(second)}, which SymPy cannot show to "
                "be > 0 (a variance symbol is positive unless declared otherwise)",
            )
        if law.kind == "uniform" and (second - first).is_positive is not True:
            raise _bad_given(
                law.text,
                f"gives {name!r} the interval [{sp.sstr(first)}, {sp.sstr(second)}], which "
                "SymPy cannot show to have hi > lo (a bound symbol is positive unless "
                "declared otherwise)",
            )
        if law.kind == "normal" and not first.is_real:
            raise _bad_given(law.text, f"gives {name!r} a mean that is not real")
        decls[name] = Declaration(
            name, symbols[name], "real", "given", Law(symbols[name], law.kind, first, second)
        )
    return tuple(sorted(decls.values(), key=lambda d: d.name))


# --------------------------------------------------------------------------- expressions


def _fresh(preferred: Sequence[str], taken: Mapping[str, object]) -> sp.Symbol:
    """A real symbol for an integration variable, named apart from every user symbol."""
    for name in (*preferred, *(f"{preferred[0]}{k}" for k in range(1, 100))):
        if name not in taken:
            return sp.Symbol(name, real=True)
    raise AssertionError("unreachable: at most MAX_SYMBOLS names are taken")  # pragma: no cover


@dataclass(frozen=True)
class _Side:
    """Parses one side: cuts out ``E[...]`` and ``O(...)``, then the whitelist parser."""

    argument: str
    symbols: Mapping[str, sp.Symbol]
    laws: Mapping[sp.Symbol, Law]
    defaulted: frozenset[sp.Symbol]
    z: sp.Symbol

    def parse(self, text: str, *, allow_order: bool, where: str = "") -> sp.Expr:
        """``text`` as a SymPy expression, ``E[...]`` and ``O(...)`` in place."""
        expr, holes = self._parse(text, allow_order=allow_order, where=where)
        return expr.xreplace(holes)

    def _parse(
        self, text: str, *, allow_order: bool, where: str
    ) -> tuple[sp.Expr, dict[sp.Symbol, sp.Expr]]:
        """``text`` parsed with a placeholder symbol for each ``E[...]`` and ``O(...)``,
        and what each placeholder stands for."""
        argument = self.argument
        what = where or f"{argument}={text!r}"
        if not text.strip():
            raise InputError(f"`{argument}` has an empty expression in {what}.")
        toks = _tokens(text, argument, brackets=True)
        pieces: list[str] = []
        holes: dict[sp.Symbol, sp.Expr] = {}
        order: sp.Symbol | None = None
        last, i = 0, 0
        while i < len(toks):
            tok = toks[i]
            nxt = toks[i + 1].text if i + 1 < len(toks) else ""
            if tok.kind == tokenize.OP and tok.text in "[]":
                raise InputError(
                    f"`{argument}` uses square brackets outside E[...]; write expectations "
                    f"as E[...] and group with ( ); got {what}."
                )
            if tok.kind == tokenize.NAME and tok.text == "E" and nxt == "(":
                raise InputError(
                    f"`{argument}` writes E(...); an expectation takes square brackets, "
                    f"E[...] (E alone is Euler's number); got {what}."
                )
            if tok.kind == tokenize.NAME and tok.text == "O" and nxt != "(":
                raise InputError(f"`{argument}` uses O without (...); write O(q**3); got {what}.")
            if tok.kind == tokenize.NAME and ((tok.text, nxt) in (("E", "["), ("O", "("))):
                j = _match(toks, i + 1, text, argument)
                inner = text[toks[i + 1].end : toks[j].start]
                whole = text[tok.start : toks[j].end]
                hole = sp.Symbol(f"_{tok.text}{len(holes)}")
                if tok.text == "E":
                    holes[hole] = self._expectation(inner, whole)
                else:
                    if not allow_order:
                        raise InputError(
                            f"`{argument}` has {whole}: O(...) is allowed only in AFTER, once, "
                            f"as the last term of a series 'P + O(q**k)'; got {what}."
                        )
                    if order is not None:
                        raise InputError(f"`{argument}` has two O(...) terms; got {what}.")
                    holes[hole] = self._order(inner, whole)
                    order = hole
                pieces += [text[last : tok.start], hole.name]
                last, i = toks[j].end, j + 1
                continue
            i += 1
        pieces.append(text[last:])
        expr = parse_expression(
            "".join(pieces),
            argument=argument,
            symbols={**self.symbols, **{h.name: h for h in holes}},
        )
        if order is not None and not (
            expr == order or (isinstance(expr, sp.Add) and order in expr.args)
        ):
            raise InputError(
                f"`{argument}` must write a series as 'P + O(q**k)', with O(...) added once "
                f"at the end (not multiplied or inside a function); got {what}."
            )
        return expr, holes

    def _expectation(self, inner_text: str, whole: str) -> sp.Expr:
        raw, holes = self._parse(inner_text, allow_order=False, where=whole)
        inner = raw.xreplace(holes)
        random = sorted(inner.free_symbols & set(self.laws), key=str)
        if len(random) > 1:
            names = ", ".join(map(str, random))
            raise InputError(
                f"`{self.argument}` has {whole}, an expectation over several random variables "
                f"({names}); initproof step takes expectations over one variable at a time."
            )
        if not random:
            direct = raw.free_symbols - set(holes)
            if not direct:
                return inner  # a number, or a function of expectations: a constant
            names = sorted(direct, key=str)
            v = (sorted(direct & self.defaulted, key=str) or names)[0]
            q = "q" if str(v) != "q" else "s2"
            which = (
                f"{names[0]} is not"
                if len(names) == 1
                else f"none of {', '.join(map(str, names))} is"
            )
            raise InputError(
                f"`{self.argument}` has {whole}, but {which} "
                f"declared random, so there is nothing to average over; declare the law of "
                f"the variable, e.g. --given '{v} ~ N(0, {q})' ({v} Gaussian with mean 0 and "
                f"variance {q}) or --given '{v} ~ U(-a, a)'."
            )
        (x,) = random
        return self.laws[x].expectation(inner, self.z)

    def _order(self, inner_text: str, whole: str) -> sp.Expr:
        inner = self.parse(inner_text, allow_order=False, where=whole)
        base, k = inner.as_base_exp()
        if not (
            isinstance(base, sp.Symbol)
            and base in self.symbols.values()
            and k.is_Integer
            and k > 0
            and base not in self.laws
        ):
            raise InputError(
                f"`{self.argument}` has {whole}; the order term must be a positive integer "
                f"power of one (non-random) symbol, e.g. O(q**3)."
            )
        return sp.Order(inner, (base, 0))


def _check(before: sp.Expr, after: sp.Expr) -> tuple[Status, str, str, Mapping[str, str] | None]:
    """The kernel's verdict, bounded in time; a kernel failure is undecided, never a pass."""
    try:
        with time_budget(STEP_SECONDS, "checking the step"):
            c = check_algebraic(before, after, {})
    except BudgetExceeded as exc:
        return Status.UNDECIDED, "time budget", f"no verdict: {exc}", None
    except (
        ArithmeticError,
        TypeError,
        ValueError,
        NotImplementedError,
        RecursionError,
        AttributeError,
    ) as exc:
        # SymPy can fail on unusual input; the user gets a reason, not a traceback
        return (
            Status.UNDECIDED,
            "kernel error",
            f"the checking kernel failed ({type(exc).__name__}: {exc}); no verdict",
            None,
        )
    cex = (
        None if c.counterexample is None else {str(k): str(v) for k, v in c.counterexample.items()}
    )
    return Status(c.status), c.method, c.detail, cex


def parse_step(
    before: str, after: str, given: Sequence[str] | str | None = ()
) -> tuple[sp.Expr, sp.Expr, tuple[Declaration, ...]]:
    """Parse the two sides of a step over the declarations ``given``.

    Returns the two SymPy expressions and every symbol's :class:`Declaration`,
    undeclared ones (real) included. Raises :class:`~derivations._user.InputError`
    naming ``BEFORE``, ``AFTER`` or ``--given``; see :func:`check_step`.
    """
    decls = {d.name: d for d in parse_given(given)}
    texts = {}
    for argument, text in (("BEFORE", before), ("AFTER", after)):
        texts[argument] = check_text(text, argument, example="Max(0, x)").strip()
        for name in _names(texts[argument], argument):
            if name not in decls:
                s = sp.Symbol(name, real=True)
                decls[name] = Declaration(name, s, "real", "default")
    if len(decls) > MAX_SYMBOLS:
        raise InputError(
            f"`BEFORE`, `AFTER` and `--given` use {len(decls)} symbols; at most {MAX_SYMBOLS}."
        )
    symbols = {name: d.symbol for name, d in decls.items()}
    laws = {d.symbol: d.law for d in decls.values() if d.law is not None}
    defaulted = frozenset(d.symbol for d in decls.values() if d.origin == "default")
    z = _fresh(("z", "u", "t"), symbols)
    exprs = [
        _Side(argument, symbols, laws, defaulted, z).parse(texts[argument], allow_order=allow)
        for argument, allow in (("BEFORE", False), ("AFTER", True))
    ]
    return exprs[0], exprs[1], tuple(sorted(decls.values(), key=lambda d: d.name))


def check_step(before: str, after: str, given: Sequence[str] | str | None = ()) -> StepResult:
    """Is ``before = after`` on the whole declared domain? Ask the kernel.

    Parameters
    ----------
    before, after : str
        The two sides, in SymPy syntax over the whitelist of
        :mod:`derivations._user`, plus ``E[...]`` (expectation over one declared random
        variable) and, in ``after`` only, a final ``+ O(q**k)`` (a series step).
    given : sequence of str
        Declarations: ``"x ~ N(0, q)"``, ``"x ~ U(-a, a)"``, ``"x real"``, ``"x > 0"``,
        ``"x >= 0"``, ``"n integer"``, ``"n integer > 0"``, ... (see
        :data:`GIVEN_FORMS`). Undeclared symbols are real; the result notes them.

    Returns
    -------
    StepResult
        The parsed sides, the declarations and the kernel's status, method, reason and
        counterexample. A kernel that runs out of time (:data:`STEP_SECONDS`) or fails
        gives ``undecided`` with the reason.

    Raises
    ------
    InputError
        For text outside the whitelist, an unknown function, a bad declaration (the
        message shows the accepted forms), ``E[...]`` over a variable not declared
        random (the message says how to declare it), ``E[...]`` over two random
        variables, or a misplaced ``O(...)``.

    Examples
    --------
    >>> r = check_step("(x + 1)**2", "x**2 + 2*x + 1", ["x real"])
    >>> r.status
    <Status.PROVED: 'proved'>
    """
    items = split_given(given)
    b, a, decls = parse_step(before, after, items)
    status, method, reason, cex = _check(b, a)
    notes = tuple(
        f"{d.name} is not declared: taken as real (declare it, e.g. --given '{d.name} > 0' "
        f"or '{d.name} integer')"
        for d in decls
        if d.origin == "default"
    )
    return StepResult(
        before_text=before.strip(),
        after_text=after.strip(),
        before=b,
        after=a,
        given=items,
        declarations=decls,
        status=status,
        method=method,
        reason=reason,
        counterexample=cex,
        notes=notes,
    )


__all__ = [
    "DOMAINS",
    "GIVEN_FORMS",
    "MAX_GIVEN",
    "MAX_SYMBOLS",
    "STEP_SECONDS",
    "Declaration",
    "Law",
    "StepResult",
    "check_step",
    "describe_domain",
    "parse_given",
    "parse_step",
    "split_given",
]
