"""The report: evidence contract, formats, PDF, reproducibility and atomic writes."""

import copy
import json
import os
import shutil
import subprocess
import sys
from importlib import resources

import jsonschema
import pytest

import report
from derivations import Status
from derivations._claim import STATUSES
from report import _render

NEED_TEX = pytest.mark.skipif(
    shutil.which("latexmk") is None and not os.environ.get("CI"),
    reason="no TeX engine on this machine (CI installs it, and there this test must run)",
)


@pytest.fixture(scope="module")
def quick_evidence(shared_quick_evidence):
    return copy.deepcopy(shared_quick_evidence)


def test_evidence_follows_the_published_schema(quick_evidence):
    schema = json.loads((resources.files("report") / "evidence.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(report.render_json(quick_evidence)), schema)


def test_schema_rejects_a_renamed_field(quick_evidence):
    schema = json.loads((resources.files("report") / "evidence.schema.json").read_text())
    bad = json.loads(report.render_json(quick_evidence))
    bad["claims"][0]["result"] = bad["claims"][0].pop("verdict")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_forward_claim_is_verified_by_both_routes(quick_evidence):
    (claim,) = [c for c in quick_evidence["claims"] if c["id"] == "forward-variance"]
    # at least tested: the verdict stands, and the trust base says how much is proved
    assert Status(claim["symbolic"]["status"]).rank >= Status.TESTED.rank
    assert all(Status(s["check"]).rank >= Status.TESTED.rank for s in claim["symbolic"]["steps"])
    assert {k["outcome"] for k in claim["checks"]} == {"agrees"}
    assert claim["verdict"] == "verified"
    for k in claim["checks"]:
        assert k["ci_low"] <= k["estimate"] <= k["ci_high"]
        # Holm: every check is decided between the strictest level and 1 - alpha
        assert quick_evidence["confidence"] == pytest.approx(1 - 0.01 / quick_evidence["n_checks"])
        assert 1 - 0.01 <= k["confidence"] <= quick_evidence["confidence"]
    levels = [k["confidence"] for c in quick_evidence["claims"] for k in c["checks"]]
    refused = [
        k for c in quick_evidence["claims"] for k in c["checks"] if k["outcome"] == "disagrees"
    ]
    assert refused and max(levels) > min(levels)  # the step-down relaxed the later checks
    for k in refused:
        assert not k["ci_low"] <= k["predicted"] <= k["ci_high"]


def test_every_claim_has_a_trust_base_that_adds_up(quick_evidence):
    keys = [str(s) for s in STATUSES]
    totals = dict.fromkeys(keys, 0)
    for claim in quick_evidence["claims"]:
        t = claim["trust"]
        steps = claim["symbolic"]["steps"]
        assert list(t["steps"]) == keys and list(t["confirmations"]) == keys
        assert sum(t["steps"].values()) == t["n_steps"] == len(steps)
        for k in keys:
            assert t["steps"][k] == sum(s["check"] == k for s in steps)
            totals[k] += t["steps"][k]
        assert sum(t["confirmations"].values()) == len(claim["symbolic"]["confirmations"])
        assert t["status"] == claim["symbolic"]["status"]
        assert [a["name"] for a in t["assumptions"]] == [a["name"] for a in claim["assumptions"]]
        used = {u for s in steps for u in s["uses"]}
        assert set(t["assumed"]) == used
        if t["status"] == "undecided":
            assert claim["verdict"] == "undecided"
    assert quick_evidence["totals"]["steps"] == totals
    assert quick_evidence["totals"]["n_claims"] == len(quick_evidence["claims"])
    assert sum(quick_evidence["totals"]["claims"].values()) == len(quick_evidence["claims"])


def test_markdown_and_latex_show_steps_and_evidence(quick_evidence):
    md = report.render_markdown(quick_evidence)
    tex = report.render_latex(quick_evidence)
    for claim in quick_evidence["claims"]:
        assert claim["title"] in md
        for step in claim["symbolic"]["steps"]:
            assert step["after"] in md
            assert all(line in tex for line in step["display"])
        for k in claim["checks"]:
            assert k["probe"] in md
    assert "$$" in md and r"\begin{aligned}" in md
    assert r"\begin{document}" in tex and r"\VAR" not in tex and r"\BLOCK" not in tex
    # the legend, the run totals and one trust base per claim
    n = len(quick_evidence["claims"])
    assert "## How much is proved" in md and r"\section*{How much is proved}" in tex
    for s in STATUSES:
        assert f"- **{s}**:" in md and rf"\item[{s}]" in tex
    steps = _render.status_counts(quick_evidence["totals"]["steps"])
    assert steps in md and steps in tex
    assert md.count("**Trust base.**") == n and tex.count(r"\textbf{Trust base.}") == n


def test_prose_escaping_keeps_math():
    assert report.tex_prose(r"50% of $x_1$ & y_2") == r"50\% of $x_1$ \& y\_2"
    with pytest.raises(ValueError, match="unbalanced"):
        report.tex_prose("a $b")
    # OT1 fonts print < and > as inverted marks unless they are spelled out
    assert report.tex_prose("norm <= theta > 0") == r"norm \textless{}= theta \textgreater{} 0"


@NEED_TEX
def test_pdf_compiles_and_contains_every_title(quick_evidence, tmp_path):
    paths = report.write_report(quick_evidence, tmp_path / "r")
    pdf = tmp_path / "r" / "report.pdf"
    assert pdf in paths
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    pages = int(next(x for x in info.stdout.splitlines() if x.startswith("Pages:")).split()[1])
    assert pages >= 2
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    flat = " ".join(text.stdout.split())
    for claim in quick_evidence["claims"]:
        assert claim["title"] in flat
    log = tmp_path / "r" / "report.log"
    assert not log.exists()


@NEED_TEX
def test_handout_and_its_key_are_written(quick_evidence, tmp_path):
    paths = report.write_report(quick_evidence, tmp_path / "h", handout=True)
    names = {p.name for p in paths}
    assert {"handout.tex", "handout.pdf", "handout-key.tex", "handout-key.pdf"} <= names
    assert "evidence.json" not in names
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "h" / "handout-key.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "answer key" in text


@NEED_TEX
def test_same_seed_gives_the_same_bytes(tmp_path):
    for name in ("a", "b"):
        report.write_report(report.evidence(9, quick=True), tmp_path / name)
    files = sorted(str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a").rglob("*"))
    assert "report.pdf" in files and "figures/variance-depth.png" in files
    for f in files:
        if (tmp_path / "a" / f).is_file():
            assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_failed_build_leaves_the_previous_report_whole(quick_evidence, tmp_path, monkeypatch):
    out = tmp_path / "r"
    report.write_report(quick_evidence, out, pdf=False)
    before = _contents(out)

    def broken(ev, handout=False, lang="en"):
        raise KeyboardInterrupt

    monkeypatch.setattr(_render, "render_latex", broken)
    with pytest.raises(KeyboardInterrupt):
        report.write_report(quick_evidence, out, pdf=False)
    assert _contents(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def _contents(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_killed_build_leaves_the_previous_report_whole(quick_evidence, tmp_path):
    """Kill a real `initproof report` process while it is writing; the old report stays."""
    import signal
    import time

    out = tmp_path / "r"
    report.write_report(quick_evidence, out, pdf=False)
    before = _contents(out)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "report", "--quick", "--seed", "5", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while not list(tmp_path.glob(".r.tmp-*")) and proc.poll() is None:
        assert time.monotonic() < deadline, "the build never started writing"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the build finished before it could be killed"
    assert _contents(out) == before


def test_cli_help_lists_the_commands():
    run = subprocess.run(
        [sys.executable, "-m", "cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "report" in run.stdout and "list" in run.stdout


def test_cli_rejects_a_bad_seed():
    run = subprocess.run(
        [sys.executable, "-m", "cli", "report", "--seed", "-3"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "--seed must be a non-negative integer" in run.stderr


def test_probes_with_one_scenario_share_their_networks():
    """Equal scenarios: one run (same stream and replicates); a probe alone keeps its own
    stream, ``seed_for(seed, claim, probe)``, so its estimate is the engine's on that seed."""
    import derivations
    import montecarlo
    from report._evidence import measure_probes

    claim = next(c for c in derivations.claims() if c.id == "forward-variance")
    probes = [p for p in claim.probes if p.label.startswith("64x256-normal-")]
    assert len(probes) == 2 and probes[0].scenario == probes[1].scenario
    both = measure_probes(claim.id, probes, 3, precision=0.05)
    a, b = (both[p.label] for p in probes)
    assert a.seed == b.seed and a.n_replicates == b.n_replicates
    assert a.value != b.value  # two observables of the same networks
    alone = measure_probes(claim.id, probes[:1], 3, precision=0.05)[probes[0].label]
    direct = montecarlo.measure(
        probes[0].scenario,
        probes[0].observable,
        seed=montecarlo.seed_for(3, claim.id, probes[0].label),
        precision=0.05,
        activations=derivations.simulation_activations(),
    )
    assert alone == direct and alone.seed != a.seed
