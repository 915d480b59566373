"""`train.compile`: a compiled run follows the eager one, same checkpoint keys; refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from hpsearch.devices import check_compile
from hpsearch.errors import ConfigError
from hpsearch.training import TrainState, build_state, train
from tests.conftest import random_dataset, tiny_config

# Inductor reorders and fuses floating-point sums, so a compiled step differs from the eager one by
# rounding: measured over three steps on this model, losses within 5e-7, train-mode generator outputs
# within 1.2e-6, weights within 6e-6. A wrong graph (a missed spectral-norm update, a dropped
# parameter, a frozen D that still learns) moves weights by about the learning rate, 2e-4 per step.
# Excluded: the conv biases right before G's batch norms, whose gradient is zero in exact arithmetic
# (the norm subtracts the mean): Adam scales the rounding noise there to steps of ±lr, which the norm
# cancels, and the running means that carry those biases.
STEPS = 3
ATOL = 1e-5
WEIGHT_ATOL = 1e-4
DEAD = re.compile(r"^ups\.\d+\.bias$|running_mean$")


def _run(tmp_path: Path, compiled: bool, model: dict[str, object]) -> tuple[TrainState, list[dict[str, float]]]:
    cfg = tiny_config(model=dict(model), train={"steps": STEPS, "log_every": 1, "eval_every": STEPS,
                                                "checkpoint_every": STEPS, "compile": compiled})
    out = tmp_path / ("compiled" if compiled else "eager")
    state = train(cfg, random_dataset(), out, torch.device("cpu"), progress=False)
    return state, [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# The concat D and SAGAN failed in backward when spectral norm's power iteration was compiled
# (see EagerSpectralNorm); projection and AC-GAN did not.
@pytest.mark.parametrize("model", [{"d_spectral_norm": True, "g_cond": "cbn_linear"},
                                   {"d_spectral_norm": False, "g_spectral_norm": True, "d_cond": "acgan"},
                                   {"d_cond": "concat"},
                                   {"generator": "sagan", "g_attention": 16, "d_attention": 8}],
                         ids=["sn-in-d-projection", "sn-in-g-acgan", "sn-in-d-concat", "sagan"])
def test_compiled_run_follows_the_eager_run(tmp_path: Path, model: dict[str, object]) -> None:
    torch._dynamo.reset()
    eager, log_eager = _run(tmp_path, False, model)
    comp, log_comp = _run(tmp_path, True, model)
    assert comp.generator._compiled_call_impl is not None and comp.discriminator._compiled_call_impl is not None
    for e, c in zip(log_eager, log_comp, strict=True):
        for key in ("loss_d", "loss_g"):
            assert c[key] == pytest.approx(e[key], abs=ATOL), key
    z = torch.randn(8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(8) % 3
    with torch.no_grad():
        torch.testing.assert_close(comp.generator.train()(z, y), eager.generator.train()(z, y), atol=ATOL, rtol=0)
    for e_net, c_net, atol in ((eager.generator, comp.generator, WEIGHT_ATOL),
                               (eager.discriminator, comp.discriminator, ATOL)):
        e_state, c_state = e_net.state_dict(), c_net.state_dict()
        assert e_state.keys() == c_state.keys()  # the same checkpoint keys: either loads the other's
        for key in (k for k in e_state if not DEAD.search(k)):
            torch.testing.assert_close(c_state[key], e_state[key], atol=atol, rtol=0, msg=key)


def test_compile_is_refused_with_the_gradient_penalty() -> None:
    with pytest.raises(ConfigError, match="train.compile: cannot be used with train.loss wgan_gp"):
        tiny_config(train={"loss": "wgan_gp", "compile": True})


def test_compile_without_a_cpp_compiler_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="needs a C\\+\\+ compiler"):
        check_compile(torch.device("cpu"))
    with pytest.raises(ConfigError, match="needs a C\\+\\+ compiler"):
        build_state(tiny_config(train={"compile": True}), random_dataset(), torch.device("cpu"))


def test_a_run_may_resume_with_compile_switched(tmp_path: Path) -> None:
    train(tiny_config(train={"steps": 2}), random_dataset(), tmp_path, torch.device("cpu"), progress=False)
    state = train(tiny_config(train={"steps": 3, "compile": True}), random_dataset(), tmp_path,
                  torch.device("cpu"), resume=True, progress=False)
    assert state.step == 3
