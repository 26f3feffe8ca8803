"""Every family reader turns a malformed config into one InputError naming the file and the key, never a traceback."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asicsim.workloads.errors import InputError
from asicsim.workloads.graph import build_step_graph
from asicsim.workloads.graph_types import StepBatch
from asicsim.workloads.models import CONFIG_DIR, builtin_models, parse_config

CONFIGS = {name: json.loads((CONFIG_DIR / f"{name}.json").read_text()) for name in builtin_models()}
values = st.recursive(st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                      max_leaves=6)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(CONFIGS)), data=st.data(), value=values)
def test_a_bad_value_for_any_key_is_an_input_error(name, data, value):
    raw = json.loads(json.dumps(CONFIGS[name]))
    target = raw["text_config"] if "text_config" in raw and data.draw(st.booleans()) else raw
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = value
    try:
        model = parse_config(raw, "config.json", name)
        build_step_graph(model, StepBatch.make([3], [0], [5]), tp=1, dtype="bf16")
    except InputError as err:
        assert err.source in ("config.json", "run", "batch") and err.field
