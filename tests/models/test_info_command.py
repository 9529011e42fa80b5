"""`ravelive info MODEL [--json]`."""

import json

from click.testing import CliRunner

from ravelive.cli import main


def test_table(codec_model_path):
    result = CliRunner().invoke(main, ["info", str(codec_model_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == str(codec_model_path)
    assert "  sample rate     48000 Hz" in lines
    assert "  batch > 1       no" in lines
    assert "  encode   1      1         4       64" in lines
    assert "      outputs: (signal) latent 0, (signal) latent 1, (signal) latent 2, (signal) latent 3" in lines


def test_table_shows_attributes(attributes_model_path):
    result = CliRunner().invoke(main, ["info", str(attributes_model_path)])
    assert "  range      float int  0.25 8" in result.output.splitlines()
    assert "  buffer attributes  ir#0" in result.output.splitlines()


def test_json(codec_model_path):
    result = CliRunner().invoke(main, ["info", str(codec_model_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["methods"]["decode"]["params"] == [4, 64, 1, 1]


def test_error_is_one_line_and_exit_status_1(malformed_model_paths):
    path = malformed_model_paths["state_dict"]
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}: a torch.save checkpoint or state_dict")
    assert result.output.count("\n") == 1


def test_default_model():
    from ravelive.models.default import DEFAULT_MODEL_PATH

    result = CliRunner().invoke(main, ["info", "--json"])
    assert result.exit_code == 0, result.output
    description = json.loads(result.output)
    assert description["path"] == str(DEFAULT_MODEL_PATH)
    assert {"encode", "decode", "forward"} <= set(description["methods"])
    assert description["metadata"]["format_version"] == 1


def test_table_shows_metadata(metadata_model_path):
    result = CliRunner().invoke(main, ["info", str(metadata_model_path)])
    assert result.output.splitlines()[-3:] == ["  metadata (ravelive.json)", "    format_version: 1", "    name: identity"]


def test_table_keeps_multiline_values_on_one_row(attributes_model_path):
    from ravelive.models.info import format_description
    from ravelive.models.nn_model import NNModel

    description = NNModel.load(attributes_model_path).describe()
    description["attributes"]["ir"]["value"] = ["Buffer(min=0\n[ CPUFloatType{} ], sr=44100)"]
    assert "  ir         buffer     Buffer(min=0 [ CPUFloatType{} ], sr=44100)" in format_description(description).splitlines()
