"""Translation of the report's prose: one catalogue per language, numbers never translated.

A message is English prose with its technical parts cut out: every ``$...$`` math
span, every ```code``` span and every run of words that carries a digit or a
mathematical sign (``σ_w²``, ``N(0, 1)``, ``R = 104``, ``x_1``) becomes a numbered
placeholder ``{0}``, ``{1}``, ... The catalogue (``report/locale/<lang>.json``, one
entry per message) maps such keys to their translation, which must carry the same
placeholders; :func:`translate` puts the original parts back. So a translated sentence
shows exactly the numbers and formulas of the English one, and one catalogue entry
serves every run whatever the numbers.

A message with no entry is kept in English and recorded (:func:`missing`); the tests
render every edition in every language and fail on any recorded message.

``python -m report._i18n missing EVIDENCE.json`` prints the messages of a saved
evidence file that the Chinese catalogue lacks (as a JSON object of key to ``""``);
``python -m report._i18n add FILE.json`` merges entries into the catalogue under a
file lock, keeping it sorted.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path

#: Languages of the editions: English (the source) and Chinese.
LANGUAGES = ("en", "zh")
#: Characters that make a word technical (kept verbatim, never translated).
_TECHNICAL = set("0123456789_^\\{}=<>*/|±×·∼~≈≤≥²³√₀₁₂₃₄₅₆₇₈₉∞∈∑∏∂′→+[]")
_SPAN = re.compile(r"(\$[^$]*\$|`[^`]*`)")
_EDGE = re.compile(r"^([(\"'“‘]*)(.*?)([)\"'”’.,;:!?]*)$", re.S)
_PLACEHOLDER = re.compile(r"\{(\d+)\}")
_missing: dict[str, set[str]] = {lang: set() for lang in LANGUAGES}


def _technical(word: str) -> bool:
    return any(ch in _TECHNICAL for ch in word)


def split(text: str) -> tuple[str, tuple[str, ...]]:
    """The catalogue key of ``text`` and the technical parts its placeholders stand for.

    .. math:: \\text{text} = \\text{key}.\\mathrm{format}(*\\text{parts})

    Adjacent technical words (with the spaces between them) form one part; leading
    and trailing brackets, quotes and punctuation of a word stay in the key.
    """
    parts: list[str] = []

    def hole(s: str) -> str:
        parts.append(s)
        return "{%d}" % (len(parts) - 1)

    out: list[str] = []
    for k, chunk in enumerate(_SPAN.split(str(text))):
        if k % 2:
            out.append(hole(chunk))
            continue
        run: list[str] = []  # the technical words being gathered, with their spaces
        for token in re.split(r"(\s+)", chunk):
            if not token:
                continue
            if token.isspace():
                (run if run else out).append(token)
                continue
            lead, core, trail = _EDGE.match(token).groups()
            if core and _technical(core) and not lead:
                run.append(core)
                if trail:
                    out.append(hole("".join(run).rstrip()) + trail)
                    run = []
                continue
            if run:
                gathered = "".join(run)
                space = gathered[len(gathered.rstrip()) :]
                out.append(hole(gathered.rstrip()) + space)
                run = []
            if core and _technical(core):
                out.append(lead + hole(core) + trail)
            else:
                out.append(token)
        if run:
            gathered = "".join(run)
            space = gathered[len(gathered.rstrip()) :]
            out.append(hole(gathered.rstrip()) + space)
    return "".join(out), tuple(parts)


def needs_translation(key: str) -> bool:
    """Whether a key has words to translate (not only placeholders and punctuation)."""
    return bool(re.search(r"[A-Za-z]{2,}", _PLACEHOLDER.sub("", key)))


def fill(template: str, parts: tuple[str, ...]) -> str:
    """Put the technical parts back into a key or its translation."""
    return _PLACEHOLDER.sub(lambda m: parts[int(m.group(1))], template)


def placeholders(template: str) -> list[str]:
    """The placeholders of a key or a translation, sorted (each must appear in both)."""
    return sorted(_PLACEHOLDER.findall(template), key=int)


def _path(lang: str) -> Path:
    return Path(str(resources.files("report") / "locale" / f"{lang}.json"))


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The catalogue of ``lang``: message key to translation (empty for English)."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {', '.join(LANGUAGES)}; got {lang!r}")
    if lang == "en":
        return {}
    path = _path(lang)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def translate(text: object, lang: str) -> str:
    """``text`` in ``lang``: its key looked up in the catalogue, its parts put back.

    English, an empty text and a text with nothing but technical parts come back as
    they are. A message the catalogue lacks stays in English and is recorded.
    """
    text = "" if text is None else str(text)
    if lang == "en" or not text.strip():
        return text
    key, parts = split(text)
    if not needs_translation(key):
        return text
    found = catalogue(lang).get(key)
    if not found:
        _missing[lang].add(key)
        return text
    return fill(found, parts)


def missing(lang: str = "zh", *, clear: bool = False) -> set[str]:
    """The keys :func:`translate` could not find since the last clear."""
    keys = set(_missing[lang])
    if clear:
        _missing[lang].clear()
    return keys


def add(entries: dict[str, str], lang: str = "zh") -> int:
    """Merge ``entries`` into the catalogue file under an exclusive lock; returns its size.

    Refuses an entry whose placeholders differ from its key's.
    """
    import fcntl

    bad = [k for k, v in entries.items() if v and placeholders(k) != placeholders(v)]
    if bad:
        raise ValueError(f"placeholders differ from the key in {len(bad)} entries: {bad[:3]}")
    path = _path(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / f"initproof-catalogue-{lang}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        data.update({k: v for k, v in entries.items() if v})
        text = json.dumps(dict(sorted(data.items())), ensure_ascii=False, indent=0)
        path.write_text(text + "\n", encoding="utf-8")
    catalogue.cache_clear()
    return len(data)


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "add":
        entries = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
        print(add(entries))
        return 0
    if len(argv) == 2 and argv[0] == "missing":
        # run as ``python -m`` this module is ``__main__``: the renderer records into the
        # package's copy, so that copy is the one asked
        from report import _i18n
        from report._render import render_all

        ev = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
        _i18n.missing("zh", clear=True)
        render_all(ev, "zh")
        keys = sorted(_i18n.missing("zh"))
        print(json.dumps(dict.fromkeys(keys, ""), ensure_ascii=False, indent=0))
        return 0
    print("usage: python -m report._i18n (missing EVIDENCE.json | add FILE.json)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
