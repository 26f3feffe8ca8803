"""Shared test settings: a hypothesis profile sized for the 2-core CI machine; no cold-start mode in subprocesses."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# `asicsim` subprocesses started by tests compile as before instead of running interpreted with a background
# warm-up (tests/test_coldstart.py clears this to test that path).
os.environ.setdefault("ASICSIM_COLD_START", "0")
