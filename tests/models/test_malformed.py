"""Every way a model file can be wrong gets one ModelFormatError line naming the file and the fault."""

import re
import warnings

import pytest
import torch

from ravelive.errors import ModelFormatError
from ravelive.models.nn_model import NNModel
from ravelive.models.torchscript import METADATA_FILE, load_scripted

FAULTS = {
    "missing": r"no such file",
    "directory": r"is a directory, expected a TorchScript \.ts file",
    "empty": r"the file is empty",
    "wav": r"not a TorchScript archive \(looks like a RIFF/WAV audio file\)",
    "text": r"not a TorchScript archive \(looks like a text file\)",
    "state_dict": r"a torch\.save checkpoint or state_dict, not a TorchScript export; export the model with torch\.jit\.script",
    "legacy_pickle": r"a legacy torch\.save checkpoint \(a pickle\), not a TorchScript export; export the model",
    "truncated": r"truncated or corrupt TorchScript archive",
    "corrupt": r"corrupt TorchScript archive \(checksum mismatch in '[^']*data/0'\)",
    "no_contract": r"no methods: the file has no get_methods\(\) and no '<method>_params' buffer — not an nn~ model",
    "params_shape": r"'forward_params' must be 4 integers \[in_ch, in_ratio, out_ch, out_ratio\], got shape \[3\]",
    "missing_params": r"method 'encode' listed by get_methods\(\) has no 'encode_params' buffer",
    "unknown_method": r"method 'decode' listed by get_methods\(\) is not a method of the model",
    "zero_ratio": r"'forward_params' must be 4 positive integers .*, got \[1, 0, 1, 1\]",
    "attribute_without_params": r"attribute 'gain' listed by get_attributes\(\) has no 'gain_params' buffer",
    "unknown_type_id": r"'gain_params' must hold one type id per value .*, got \[7\]",
    "negative_sample_rate": r"'sr' must be a positive whole sample rate in Hz, got -1",
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_each_fault_gets_its_own_message(malformed_model_paths, kind):
    path = malformed_model_paths[kind]
    with pytest.raises(ModelFormatError, match=re.escape(str(path)) + ": " + FAULTS[kind]):
        NNModel.load(path)


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_messages_are_one_line(malformed_model_paths, kind):
    with pytest.raises(ModelFormatError) as caught:
        NNModel.load(malformed_model_paths[kind])
    assert "\n" not in str(caught.value)


def test_every_malformed_kind_is_tested(malformed_model_paths):
    assert set(malformed_model_paths) == set(FAULTS)


def test_bad_metadata_json_is_reported(tmp_path, identity_model_path):
    module = load_scripted(identity_model_path)
    path = tmp_path / "bad_metadata.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(module, str(path), _extra_files={METADATA_FILE: "{not json"})
    with pytest.raises(ModelFormatError, match=r"bad_metadata\.ts: ravelive\.json inside the archive is not valid JSON"):
        NNModel.load(path)
