"""The ``initproof`` command line."""

from __future__ import annotations

import argparse
import ctypes
import platform
from collections.abc import Sequence
from pathlib import Path

from report._evidence import DEFAULT_ALPHA

#: ``mallopt`` parameters of glibc's allocator (``<malloc.h>``).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def tune_allocator() -> bool:
    """Let glibc reuse freed array memory instead of returning it to the system.

    The engine allocates and frees arrays of a few MiB at every layer, from several
    threads. By default glibc maps each afresh and every page of it faults on first
    touch (about a tenth of a run's time). One arena, a 32 MiB mapping threshold and a
    512 MiB trim threshold keep freed blocks for reuse. Process-wide, so it is set by
    the command line, never on import of a library; a no-op off glibc.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return all(
        libc.mallopt(param, value) == 1
        for param, value in (
            (_M_ARENA_MAX, 1),
            (_M_MMAP_THRESHOLD, 32 * 2**20),
            (_M_TRIM_THRESHOLD, 512 * 2**20),
        )
    )


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--alpha must be a number in (0, 1); got {text!r}"
        ) from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"--alpha must be in (0, 1); got {text!r}")
    return value


def _langs(text: str) -> tuple[str, ...]:
    """``en``, ``zh`` or both, comma-separated (``en,zh``), in the order given."""
    from report._i18n import LANGUAGES

    langs = tuple(x.strip() for x in text.split(","))
    if not text.strip() or any(x not in LANGUAGES for x in langs):
        options = ", ".join([*LANGUAGES, ",".join(LANGUAGES)])
        raise argparse.ArgumentTypeError(f"--lang must be one of {options}; got {text!r}")
    return tuple(dict.fromkeys(langs))


def _seed(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"--seed must be a non-negative integer; got {text!r}")
    return int(text)


def list_claims(claims) -> str:
    """``initproof list``: each claim's symbolic status and its steps by status, then totals.

    A header, one line per claim (id, lecture items, status, step counts strongest
    first as ``proved/computed/tested/undecided/refuted``, title), then the claims by
    status and, last, the steps by status over all claims.
    """
    from derivations._claim import STATUSES
    from report._evidence import status_line, totals, trust

    claims = list(claims)
    trusts = [trust(c) for c in claims]
    initials = "/".join(str(s)[0].upper() for s in STATUSES)
    rows = [("claim", "lecture", "status", f"steps {initials}")]
    for c, t in zip(claims, trusts, strict=True):
        counts = "/".join(str(t["steps"][str(s)]) for s in STATUSES)
        rows.append((c.id, ",".join(c.lecture), t["status"], counts))
    widths = [max(len(r[k]) for r in rows) for k in range(4)]
    titles = ["title", *(c.title for c in claims)]
    lines = [
        " ".join(f"{cell:{w}}" for cell, w in zip(row, widths, strict=True)) + f" {title}"
        for row, title in zip(rows, titles, strict=True)
    ]
    total = totals(trusts)
    lines.append(f"claims: {status_line(total['claims'])}")
    lines.append(f"steps: {status_line(total['steps'])}")
    return "\n".join(lines) + "\n"


#: Help of ``--lang``.
LANG_HELP = "editions: en (English), zh (Chinese: report-zh.pdf, ...) or en,zh (default en)"


def _edition_args(p: argparse.ArgumentParser, out: Path, html: str) -> None:
    """The options of ``report`` and ``handout``: the run, the folder and the editions."""
    p.add_argument("--seed", type=_seed, default=0, help="root seed of the run (default 0)")
    p.add_argument("--out", type=Path, default=out, help=f"output folder (default {out})")
    p.add_argument(
        "--alpha",
        type=_alpha,
        default=DEFAULT_ALPHA,
        help=f"family-wise error budget (default {DEFAULT_ALPHA})",
    )
    p.add_argument("--quick", action="store_true", help="fast draft at 5%% precision")
    p.add_argument("--no-pdf", action="store_true", help="skip compiling the PDF")
    p.add_argument("--lang", type=_langs, default=("en",), help=LANG_HELP)
    p.add_argument("--html", action="store_true", help=html)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="initproof",
        description="Derive (SymPy), simulate (Monte Carlo) and report the theory of "
        "initialization and numerical stability in deep networks.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rep = sub.add_parser("report", help="derive and simulate every claim; write the report")
    _edition_args(rep, Path("build/report"), "also write report.html, a web page")
    hand = sub.add_parser(
        "handout",
        help="a printable handout (at most 12 pages, results blank) and its answer key",
    )
    _edition_args(hand, Path("build/handout"), "also write handout.html, a web page with answers")
    sub.add_parser(
        "list", help="list the registered claims, their symbolic status and steps by status"
    )
    sub.add_parser("bench", help="measure the engine's throughput ratios (make bench)")
    from ._commands import add_commands

    add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    tune_allocator()
    from ._commands import COMMANDS

    if args.command in COMMANDS:
        from ._commands import run as run_command

        return run_command(args)
    import derivations

    if args.command == "bench":
        from ._bench import run

        run()
        return 0

    if args.command == "list":
        print(list_claims(derivations.claims()), end="")
        return 0

    from report._evidence import evidence
    from report._render import write_report

    ev = evidence(args.seed, alpha=args.alpha, quick=args.quick, progress=True)
    suffixes = (".md", ".tex", ".html") if args.html else (".md", ".tex")
    paths = write_report(
        ev,
        args.out,
        pdf=not args.no_pdf,
        handout=args.command == "handout",
        langs=args.lang,
        suffixes=suffixes,
    )
    for path in paths:
        print(path)
    verdicts = {c["id"]: c["verdict"] for c in ev["claims"]}
    print(", ".join(f"{k}: {v}" for k, v in verdicts.items()))
    return 0
