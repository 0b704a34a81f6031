"""The report's trust base: statuses counted, verdicts by status, legend and totals.

Built from small hand-made claims (no registry build, no simulation), so it is fast.
"""

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import sympy as sp

import cli
import derivations
import report
from derivations._claim import STATUSES, Assumption, Check, Claim, Derivation, Status, Step
from report import _evidence

x = sp.Symbol("x")
PROVED, COMPUTED, TESTED = STATUSES[0], Status.COMPUTED, Status.TESTED
UNDECIDED, REFUTED = Status.UNDECIDED, Status.REFUTED


def _step(*statuses, uses=(), counterexample=None):
    checks = tuple(
        Check(f"route {k}", s, "what was compared", counterexample if s is REFUTED else None)
        for k, s in enumerate(statuses)
    )
    return Step(x, x, "a rule", "why, with 50% & x_1", checks, tuple(uses))


def _claim(*steps, cid="fake", confirmations=(), assumptions=None, **extra):
    if assumptions is None:
        assumptions = (
            Assumption("iid", "weights are i.i.d."),
            Assumption("zero-mean", "inputs have mean 0"),
            Assumption("unused", "never used by a step"),
        )
    return Claim(
        id=cid,
        lecture=("L5.1",),
        title=f"A fake claim {cid}",
        summary="A claim made of hand-made steps.",
        assumptions=assumptions,
        derivations=(Derivation("main", x, tuple(steps)),),
        conditions=(),
        confirmations=tuple(confirmations),
        probes=(),
        **extra,
    )


AGREES = [{"outcome": "agrees", "expected": "agrees"}] * 2


def _mixed():
    return _claim(
        _step(PROVED, uses=("iid",)),
        _step(TESTED, COMPUTED),  # strongest route: computed
        _step(TESTED, uses=("zero-mean", "iid")),
        _step(TESTED),
        _step(UNDECIDED, TESTED),  # tested
        confirmations=(Check("sympy.stats", PROVED, "exact"),),
    )


def test_trust_counts_every_status_and_add_up():
    claim = _mixed()
    t = _evidence.trust(claim)
    assert list(t["steps"]) == [str(s) for s in STATUSES]
    assert list(t["confirmations"]) == [str(s) for s in STATUSES]
    assert sum(t["steps"].values()) == t["n_steps"] == 5
    assert t["steps"] == {"proved": 1, "computed": 1, "tested": 3, "undecided": 0, "refuted": 0}
    assert t["confirmations"]["proved"] == 1 and sum(t["confirmations"].values()) == 1
    assert t["status"] == "tested" == str(claim.status)
    assert t["assumed"] == ["iid", "zero-mean"]
    assert [a["used"] for a in t["assumptions"]] == [True, True, False]
    assert t["assumptions"][0]["statement"] == "weights are i.i.d."
    assert t["undeclared"] == []


def test_trust_names_an_assumption_used_but_not_declared():
    t = _evidence.trust(_claim(_step(PROVED, uses=("ghost",)), assumptions=()))
    assert t["assumed"] == t["undeclared"] == ["ghost"]


def test_totals_add_the_claims_up():
    claims = [_mixed(), _claim(_step(PROVED), _step(UNDECIDED), cid="other")]
    total = _evidence.totals(_evidence.trust(c) for c in claims)
    assert total["n_steps"] == 7 == sum(total["steps"].values())
    assert total["steps"]["undecided"] == 1 and total["steps"]["proved"] == 2
    assert total["claims"] == {
        "proved": 0,
        "computed": 0,
        "tested": 1,
        "undecided": 1,
        "refuted": 0,
    }
    assert _evidence.status_line(total["steps"]) == (
        "2 proved, 1 computed, 3 tested, 1 undecided, 0 refuted"
    )


@pytest.mark.parametrize("status", [PROVED, COMPUTED, TESTED])
def test_a_tested_or_computed_claim_still_gets_its_verdict(status):
    assert report.verdict(_claim(_step(status)), AGREES) == "verified"
    qualified = _claim(_step(status), qualification="only for wide layers")
    assert report.verdict(qualified, AGREES) == "qualified"
    corrected = _claim(_step(status), corrected="the variance is 2/n")
    assert report.verdict(corrected, AGREES) == "refuted"
    # what the simulation says still decides
    disagree = [{"outcome": "disagrees", "expected": "agrees"}]
    assert report.verdict(_claim(_step(status)), disagree) == "refuted"
    inconclusive = [{"outcome": "inconclusive", "expected": "agrees"}]
    assert report.verdict(_claim(_step(status)), inconclusive) == "undecided"
    assert report.verdict(_claim(_step(status)), []) == "undecided"


def test_an_undecided_or_refuted_claim_keeps_its_verdict():
    assert report.verdict(_claim(_step(PROVED), _step(UNDECIDED)), AGREES) == "undecided"
    assert report.verdict(_claim(_step(TESTED, REFUTED)), AGREES) == "refuted"
    refuting = _claim(_step(PROVED), confirmations=(Check("instance", REFUTED, "n=2"),))
    assert report.verdict(refuting, AGREES) == "refuted"


def test_report_never_names_proved_literally():
    """Only the kernel gives ``proved``: the report compares ranks, never that literal."""
    folder = Path(report.__file__).parent
    for path in folder.rglob("*.py"):
        assert "Status.PROVED" not in path.read_text(encoding="utf-8"), path


def test_legend_covers_every_status_strongest_first():
    assert list(_evidence.STATUS_MEANINGS) == [str(s) for s in STATUSES]


@pytest.fixture(scope="module")
def fake_evidence():
    mp = pytest.MonkeyPatch()
    mp.setattr(_evidence, "figure_data", lambda seed, quick=False: [])
    claims = (
        _mixed(),
        _claim(
            _step(PROVED),
            _step(PROVED, REFUTED, counterexample={"x": "-1", "n_in": "2"}),
            cid="refuted-one",
        ),
        _claim(_step(UNDECIDED), cid="undecided-one", assumptions=()),
    )
    try:
        return report.evidence(7, quick=True, claims=claims)
    finally:
        mp.undo()


def test_fake_evidence_follows_the_schema(fake_evidence):
    schema = json.loads((resources.files("report") / "evidence.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads(report.render_json(fake_evidence))
    jsonschema.validate(data, schema)
    assert (
        data["schema_version"]
        == _evidence.SCHEMA_VERSION
        == schema["properties"]["schema_version"]["const"]
    )
    assert [s["name"] for s in data["statuses"]] == [str(s) for s in STATUSES]
    assert data["totals"]["n_steps"] == sum(c["trust"]["n_steps"] for c in data["claims"])
    (refuted,) = [c for c in data["claims"] if c["id"] == "refuted-one"]
    assert refuted["verdict"] == "refuted" and refuted["trust"]["status"] == "refuted"
    (step,) = [s for s in refuted["symbolic"]["steps"] if s["check"] == "refuted"]
    assert step["checks"][1]["counterexample"] == {"x": "-1", "n_in": "2"}
    assert "counterexample" not in step["checks"][0]
    # a missing status count, or an unknown status, is rejected
    bad = json.loads(report.render_json(fake_evidence))
    del bad["claims"][0]["trust"]["steps"]["computed"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    bad = json.loads(report.render_json(fake_evidence))
    bad["claims"][0]["symbolic"]["steps"][0]["check"] = "probably"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


@pytest.mark.parametrize("handout", [False, True])
def test_markdown_shows_legend_totals_and_trust_base(fake_evidence, handout):
    md = report.render_markdown(fake_evidence, handout)
    for s in fake_evidence["statuses"]:
        assert f"- **{s['name']}**: {s['meaning']}" in md
    assert "steps (8): 2 proved, 1 computed, 3 tested, 1 undecided, 1 refuted" in md
    assert md.count("**Trust base.**") == len(fake_evidence["claims"])
    assert "Assumed: `iid`, `zero-mean` (declared but used by no step: `unused`)." in md
    assert "Steps (5): 1 proved, 1 computed, 3 tested, 0 undecided, 0 refuted." in md
    assert "Confirmations: 1 proved, 0 computed" in md
    assert "| claim | lecture | simulation | verdict | symbolic status |" in md
    assert "| **undecided** | undecided |" in md
    assert "counterexample: x = -1, n_in = 2" in md


@pytest.mark.parametrize("handout", [False, True])
def test_latex_renders_the_legend_escaped(fake_evidence, handout):
    tex = report.render_latex(fake_evidence, handout)
    assert r"\section*{How much is proved}" in tex and r"\begin{description}" in tex
    for s in fake_evidence["statuses"]:
        assert rf"\item[{s['name']}] {report.tex_prose(s['meaning'])}" in tex
    assert tex.count(r"\textbf{Trust base.}") == len(fake_evidence["claims"])
    assert r"\texttt{zero-mean}" in tex
    assert r"counterexample: x = -1, n\_in = 2" in tex
    assert "claim & lecture & simulation & verdict & symbolic status" in tex
    assert r"\VAR" not in tex and r"\BLOCK" not in tex
    # prose outside math: no bare underscore, percent or ampersand outside tables
    body = tex.split(r"\begin{document}", 1)[1]
    prose = [ln for ln in body.splitlines() if "&" not in ln and "$" not in ln]
    for ln in prose:
        assert not re.search(r"(?<!\\)[_%]", ln), ln


def test_cli_list_prints_statuses_and_totals(monkeypatch, capsys):
    claims = (_mixed(), _claim(_step(UNDECIDED), cid="undecided-one"))
    monkeypatch.setattr(derivations, "claims", lambda: claims)
    monkeypatch.setattr(cli, "tune_allocator", lambda: False)
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "steps: 1 proved, 1 computed, 3 tested, 1 undecided, 0 refuted"
    assert lines[-2] == "claims: 0 proved, 0 computed, 1 tested, 1 undecided, 0 refuted"
    (fake,) = [ln for ln in lines if ln.startswith("fake ")]
    assert fake.split()[2:4] == ["tested", "1/1/3/0/0"]
    (undecided,) = [ln for ln in lines if ln.startswith("undecided-one")]
    assert undecided.split()[2:4] == ["undecided", "0/0/0/1/0"]
