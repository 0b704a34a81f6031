import pytest

import derivations


@pytest.fixture(scope="session")
def all_claims():
    return derivations.claims()
