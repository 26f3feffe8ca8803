"""benchmarks/measure_gpu.py without a GPU: its shapes are the model's own per-GPU GEMMs, and a machine
without PyTorch or CUDA gets one line and exit code 2."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from asicsim.workloads.graph import build_step_graph
from asicsim.workloads.graph_types import OpKind, StepBatch
from asicsim.workloads.models import load_model

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "measure_gpu.py"
_SPEC = importlib.util.spec_from_file_location("measure_gpu", _PATH)
measure_gpu = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(measure_gpu)


@pytest.mark.parametrize("tp", measure_gpu.TPS)
def test_gemm_shapes_are_the_models_per_gpu_projections(tp: int) -> None:
    graph = build_step_graph(load_model("llama-3-70b"), StepBatch.make(decode_past=[10] * 4), tp=tp, dtype="fp8")
    model = {op.name: (op.n, op.k) for op in graph.layer_ops if op.kind == OpKind.MATMUL}
    assert {name: (n, k) for name, n, k in measure_gpu.projection_shapes(tp)} == model


def test_cases_cover_decode_to_prefill_and_stay_bounded() -> None:
    cases = measure_gpu.gemm_cases(quick=False)
    assert {m for _, _, m, _, _ in cases} >= {1, 128, 1536, 8192}
    assert {tp for _, tp, _, _, _ in cases} == set(measure_gpu.TPS)
    assert set(measure_gpu.gemm_cases(quick=True)) < set(cases)
    for batch, context, heads in measure_gpu.attention_cases(quick=False):
        assert batch * context * heads <= 2**25  # at most 2 GiB of bf16 K and V per case


def test_without_pytorch_one_line_and_exit_2(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    assert measure_gpu.main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PyTorch" in err[0]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("nbytes", [1, 2**10, 2**20, 21 * 2**20, 200 * 2**20, 2**33])
def test_operand_copies_outgrow_l2(nbytes: int) -> None:
    """Each timed case cycles over enough operand copies that none is still in L2 when it comes round again."""
    l2 = 60 * 2**20
    copies = measure_gpu.copies_for(nbytes, l2)
    assert 1 <= copies <= measure_gpu.MAX_COPIES
    assert copies * nbytes >= measure_gpu.L2_ROTATE_FACTOR * l2 or copies == measure_gpu.MAX_COPIES
    assert copies == 1 or (copies - 1) * nbytes < measure_gpu.L2_ROTATE_FACTOR * l2  # no more than needed


def test_calls_visit_every_operand_copy() -> None:
    seen = []
    calls = measure_gpu._calls(seen.append, ["a", "b", "c"], count=8)
    for call in calls:
        call()
    assert len(calls) == 8 and set(seen) == {"a", "b", "c"}
    assert len(measure_gpu._calls(seen.append, list(range(20)))) == 20


def test_unknown_section_one_line_and_exit_2(capsys, tmp_path) -> None:
    assert measure_gpu.main(["--out", str(tmp_path), "--only", "gemm,bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--only" in err[0]


def test_unknown_ramp_load_one_line_and_exit_2(capsys, tmp_path) -> None:
    assert measure_gpu.main(["--out", str(tmp_path), "--ramp", "decode,bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ramp" in err[0]
    assert not any(tmp_path.iterdir())
