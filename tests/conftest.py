import pytest

import derivations


@pytest.fixture(scope="session")
def all_claims():
    return derivations.claims()


@pytest.fixture(scope="session")
def shared_quick_evidence():
    """One quick run at seed 123, shared by the rendering tests; each module takes a copy."""
    import report

    return report.evidence(123, quick=True)
