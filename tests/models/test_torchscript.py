"""TorchScript helpers: quiet scripting/saving/loading, metadata round trip, model messages."""

import warnings

import pytest
import torch

from nn_fixtures import Identity
from ravelive.models.torchscript import (
    first_line,
    load_scripted,
    load_scripted_with_metadata,
    quiet_torchscript,
    script,
    script_and_save,
)


def test_helpers_silence_the_torchscript_deprecation_warning(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = script_and_save(Identity(), tmp_path / "identity.ts")
        load_scripted(path)
    assert [str(warning.message) for warning in caught] == []


def test_other_warnings_still_show():
    with pytest.warns(UserWarning, match="still visible"), quiet_torchscript():
        warnings.warn("still visible", UserWarning)


def test_metadata_round_trip(tmp_path):
    path = script_and_save(Identity(), tmp_path / "identity.ts", metadata={"latency": 64, "name": "x"})
    module, metadata = load_scripted_with_metadata(path)
    assert metadata == {"latency": 64, "name": "x"}
    assert not module.training


def test_no_metadata_reads_as_none(identity_model_path):
    assert load_scripted_with_metadata(identity_model_path)[1] is None


def test_first_line_finds_the_models_own_message():
    module = script(_Failing())
    with pytest.raises(torch.jit.Error) as caught:
        module(torch.zeros(1))
    assert first_line(caught.value) == "RuntimeError: input is wrong"


def test_first_line_of_a_plain_error():
    assert first_line(ValueError("\n  first\nsecond")) == "first"


def test_first_line_is_cut_when_long():
    assert len(first_line(ValueError("x" * 1000))) == 200


class _Failing(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("input is wrong\nmore details")
