"""Settings for the whole suite: no test may depend on how busy the machine is.

Hypothesis times every example against a 200 ms deadline and fails a test
whose data generation is "too slow": both are wall-clock margins that a
loaded CI runner misses while the code is right. The suite turns them off,
and draws examples from a fixed seed so that a failure reproduces.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("readiness", deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("readiness")


@pytest.fixture(scope="session")
def hf_zoo(tmp_path_factory: pytest.TempPathFactory):
    """Tiny Hugging Face model folders (tests/fixtures/hf_models.py), each built once per session."""
    pytest.importorskip("transformers")
    from tests.fixtures.hf_models import HFZoo

    return HFZoo(tmp_path_factory.mktemp("hf_zoo"))
