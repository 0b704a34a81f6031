"""The Chinese editions: a complete catalogue, the same numbers, unchanged English, PDFs."""

import json
import logging
import os
import re
import shutil
import subprocess
import warnings
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

import report
from cli._main import main
from report import _i18n, _render
from report._figures import render_figure

NEED_XETEX = pytest.mark.skipif(
    (shutil.which("latexmk") is None or shutil.which("xelatex") is None)
    and not os.environ.get("CI"),
    reason="no XeLaTeX on this machine (CI installs it, and there this test must run)",
)
#: A number as the editions print it: digits with an optional fraction and exponent.
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?")
#: Chinese characters.
_HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def quick_evidence(shared_quick_evidence):
    return json.loads(report.render_json(shared_quick_evidence))


@pytest.fixture(scope="module")
def zh_editions(quick_evidence):
    """Every Chinese edition rendered, and the messages the catalogue lacked meanwhile."""
    _i18n.missing("zh", clear=True)
    texts = _render.render_all(quick_evidence, "zh")
    return texts, _i18n.missing("zh", clear=True)


def _numbers(text: str) -> Counter:
    return Counter(_NUMBER.findall(text))


def _body(tex: str) -> str:
    """A LaTeX document after its preamble (the preambles differ by engine)."""
    return tex[tex.index(r"\begin{document}") :]


# --------------------------------------------------------------------------- the catalogue


def test_catalogue_has_every_message_of_every_edition(zh_editions):
    texts, missing = zh_editions
    assert {"report-zh.tex", "report-zh.md", "handout-zh.tex", "handout-key-zh.tex"} <= set(texts)
    listing = "\n".join(repr(k) for k in sorted(missing))
    assert not missing, f"{len(missing)} messages have no Chinese entry:\n{listing}"


def test_every_entry_has_the_placeholders_of_its_key_and_no_number_of_its_own():
    entries = _i18n.catalogue("zh")
    assert entries, "the Chinese catalogue is empty"
    for key, text in entries.items():
        assert text.strip(), f"empty entry for {key!r}"
        assert _i18n.placeholders(text) == _i18n.placeholders(key), (key, text)
        # every number, and every TeX special character (a template's literal is put in
        # the LaTeX as it is), comes from the English text through a placeholder
        assert not re.search(r"[\d%&#_^~\\$]", _i18n._PLACEHOLDER.sub("", text)), (key, text)


def test_add_refuses_an_entry_that_drops_a_placeholder(tmp_path, monkeypatch):
    monkeypatch.setattr(_i18n, "_path", lambda lang: tmp_path / f"{lang}.json")
    with pytest.raises(ValueError, match="placeholders differ"):
        _i18n.add({"forward var, layer {0}": "前向方差"})
    assert _i18n.add({"forward var, layer {0}": "前向方差，第 {0} 层"}) == 1
    _i18n.catalogue.cache_clear()


_PROSE = st.lists(
    st.one_of(
        st.sampled_from(["the", "variance", "of", "layer", "(lecture)", "is", "N(0,", "1)"]),
        st.from_regex(r"[a-z]{1,8}[,.;:]?", fullmatch=True),
        st.from_regex(r"[0-9][0-9.e+-]{0,6}", fullmatch=True),
        st.from_regex(r"\$[a-z0-9\\^_{} =+]{1,12}\$", fullmatch=True),
        st.from_regex(r"[σ_wqxh][²_0-9]{1,3}", fullmatch=True),
    ),
    max_size=14,
).map(" ".join)


@given(_PROSE)
def test_split_and_fill_give_the_text_back_with_no_number_in_the_key(text):
    key, parts = _i18n.split(text)
    assert _i18n.fill(key, parts) == text
    assert not re.search(r"\d", _i18n._PLACEHOLDER.sub("", key))
    assert _i18n.placeholders(key) == sorted(map(str, range(len(parts))), key=int)


@given(_PROSE, st.sampled_from(["甲{0}乙", "{0}", "前 {0}，后"]))
def test_translate_puts_every_number_back(text, frame):
    key, parts = _i18n.split(text)
    if not parts or not _i18n.needs_translation(key):
        return
    # an entry that keeps every placeholder, in the reverse order
    entry = frame.format(" ".join("{%d}" % k for k in reversed(range(len(parts)))))
    out = _i18n.fill(entry, parts)
    assert _numbers(out) == _numbers(text)


# --------------------------------------------------------------------------- the editions


def test_english_is_unchanged_by_the_language_machinery(quick_evidence):
    ev = quick_evidence
    assert _render.render_latex(ev) == _render.render_latex(ev, lang="en")
    assert _render.render_markdown(ev) == _render.render_markdown(ev, lang="en")
    assert _render.render_handout(ev) == _render.render_handout(ev, lang="en")
    assert _render.render_handout(ev, key=True) == _render.render_handout(ev, True, "en")
    assert _render.translate_figure(ev["figures"][0], "en") == ev["figures"][0]
    english = _render.render_all(ev, "en")
    assert english["report.tex"] == _render.render_latex(ev)
    assert english["handout-key.tex"] == _render.render_handout(ev, key=True)


def test_a_claims_summary_has_the_same_numbers_in_both_editions(quick_evidence, zh_editions):
    prose = {lang: _render._environment(True, lang).filters["prose"] for lang in ("en", "zh")}
    compared = 0
    for c in quick_evidence["claims"]:
        en, zh = prose["en"](c["summary"]), prose["zh"](c["summary"])
        assert _numbers(en) == _numbers(zh), c["id"]
        compared += bool(_numbers(en)) and en != zh
    assert compared >= 5  # translated summaries that carry numbers were compared


def test_whole_editions_have_the_same_numbers_in_both_languages(quick_evidence, zh_editions):
    texts, _ = zh_editions
    english = _render.render_all(quick_evidence, "en")
    for en_name, zh_name in (("report.tex", "report-zh.tex"), ("handout.tex", "handout-zh.tex")):
        en, zh = _body(english[en_name]), _body(texts[zh_name])
        assert _numbers(en) == _numbers(zh), (_numbers(en) - _numbers(zh)).most_common(5)
        assert len(_HAN.findall(zh)) > len(zh) // 20  # and the Chinese one is Chinese


def test_ids_and_figure_sections_stay_english(quick_evidence, zh_editions):
    texts, _ = zh_editions
    tex = texts["report-zh.tex"]
    for c in quick_evidence["claims"]:
        assert r"\label{%s}" % c["id"] in tex
    assert "figures-zh/" in tex and "figures/" not in tex
    figures = [
        f for s in _render.context(quick_evidence, lang="zh")["sections"] for f in s["figures"]
    ]
    assert len(figures) == len(quick_evidence["figures"])


def test_cli_rejects_a_bad_language(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["handout", "--lang", "fr", "--no-pdf"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--lang" in err and "en, zh, en,zh" in err and "'fr'" in err


# --------------------------------------------------------------------------- figures


def _glyph_problems(fig, path, lang, caplog) -> list[str]:
    caplog.clear()
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        render_figure(fig, path, lang)
    messages = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    return [m for m in messages if "missing from font" in m or "does not have a glyph" in m]


def test_chinese_figure_has_no_missing_glyph(quick_evidence, tmp_path, caplog):
    figures = {f["id"]: f for f in quick_evidence["figures"]}
    # labels with Chinese around formulas ("3 阶: $x$") and a Chinese title
    fig = _render.translate_figure(figures["taylor"], "zh")
    assert _HAN.search(fig["title"]) and any(_HAN.search(s["label"]) for s in fig["series"])
    assert _glyph_problems(fig, tmp_path / "zh.png", "zh", caplog) == []
    # the same labels in the English fonts: the check sees the missing glyphs
    assert _glyph_problems(fig, tmp_path / "en.png", "en", caplog)


# --------------------------------------------------------------------------- PDFs


def _text(pdf) -> str:
    run = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    return run.stdout


@NEED_XETEX
@pytest.mark.slow
def test_chinese_pdfs_compile_reproducibly_and_are_chinese(quick_evidence, tmp_path):
    paths = report.write_report(quick_evidence, tmp_path / "h", handout=True, langs=("en", "zh"))
    names = {p.name for p in paths}
    assert {"handout.pdf", "handout-zh.pdf", "handout-key-zh.pdf"} <= names
    assert any(p.parent.name == "figures-zh" for p in paths)
    for stem in ("handout-zh", "handout-key-zh"):
        text = _text(tmp_path / "h" / f"{stem}.pdf")
        assert len(_HAN.findall(text)) > 300, stem
    again = report.write_report(quick_evidence, tmp_path / "h2", handout=True, langs=("zh",))
    assert (tmp_path / "h2" / "handout-zh.pdf").read_bytes() == (
        tmp_path / "h" / "handout-zh.pdf"
    ).read_bytes()
    assert all(p.name.endswith(("-zh.tex", "-zh.pdf")) or "figures-zh" in str(p) for p in again)


@NEED_XETEX
@pytest.mark.slow
def test_chinese_editions_compile_without_overfull_boxes_or_missing_glyphs(
    quick_evidence, tmp_path
):
    folder = tmp_path / "r"
    report.write_report(quick_evidence, folder, langs=("zh",), pdf=False)
    report.write_report(quick_evidence, folder / "h", handout=True, langs=("zh",), pdf=False)
    assert (folder / "report-zh.md").exists() and (folder / "evidence.json").exists()
    for tex in (
        folder / "report-zh.tex",
        folder / "h/handout-zh.tex",
        folder / "h/handout-key-zh.tex",
    ):
        _render.compile_pdf(tex, clean=False, engine="xelatex")
        log = tex.with_suffix(".log").read_text(errors="replace")
        widths = [float(w) for w in re.findall(r"Overfull \\[hv]box \(([\d.]+)pt too", log)]
        assert all(w <= 1.0 for w in widths), (tex.name, sorted(widths)[-5:])
        assert "Missing character" not in log, re.findall(r"Missing character.*", log)[:5]
        assert len(_HAN.findall(_text(tex.with_suffix(".pdf")))) > 300, tex.name
