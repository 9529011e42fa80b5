import numpy as np
import soundfile
from click.testing import CliRunner

from ravelive.cli import main


def write_noise(path, frames, rate=48000):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, (0.3 * np.random.default_rng(0).standard_normal(frames)).astype(np.float32), rate, subtype="FLOAT")


def test_process_writes_a_folder_of_aligned_files(tmp_path, attributes_model_path):
    write_noise(tmp_path / "in" / "a.wav", 5000)
    write_noise(tmp_path / "in" / "sub" / "b.wav", 3000)
    result = CliRunner().invoke(main, ["process", str(tmp_path / "in"), "--model", str(attributes_model_path),
                                       "--out", str(tmp_path / "out"), "--set", "gain=0.5", "--block", "64"])
    assert result.exit_code == 0, result.output
    original, _ = soundfile.read(tmp_path / "in" / "sub" / "b.wav", dtype="float32")
    processed, _ = soundfile.read(tmp_path / "out" / "sub" / "b.wav", dtype="float32")
    np.testing.assert_allclose(processed, 0.5 * original, atol=1e-7)
    assert (tmp_path / "out" / "a.wav").exists()


def test_process_latent_options_on_a_model_without_a_latent_path_fail_in_one_line(tmp_path, identity_model_path):
    write_noise(tmp_path / "in.wav", 100)
    result = CliRunner().invoke(main, ["process", str(tmp_path / "in.wav"), "--model", str(identity_model_path),
                                       "--out", str(tmp_path / "out.wav"), "--latent-scale", "0=2"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: method 'forward' has no latent path")


def test_process_bad_set_syntax_fails_in_one_line(tmp_path, identity_model_path):
    write_noise(tmp_path / "in.wav", 100)
    result = CliRunner().invoke(main, ["process", str(tmp_path / "in.wav"), "--model", str(identity_model_path),
                                       "--out", str(tmp_path / "out.wav"), "--set", "gain"])
    assert result.exit_code == 1
    assert result.output == "Error: --set 'gain' is not ATTR=VALUE; write e.g. --set gain=0.5 (several values: 1,2)\n"


def test_bench_prints_one_row_per_block(codec_model_path):
    result = CliRunner().invoke(main, ["bench", str(codec_model_path), "--blocks", "64,128", "--seconds", "0.05",
                                       "--threads", "1"])
    assert result.exit_code == 0, result.output
    rows = result.output.strip().splitlines()
    assert rows[0].split() == ["block", "ms/block", "realtime", "factor", "worst", "block"]
    assert [row.split()[0] for row in rows[1:]] == ["64", "128"]


def test_process_encode_writes_one_channel_per_latent_dimension(tmp_path, codec_model_path):
    write_noise(tmp_path / "in.wav", 1000)
    result = CliRunner().invoke(main, ["process", str(tmp_path / "in.wav"), "--model", str(codec_model_path),
                                       "--out", str(tmp_path / "latent.wav"), "--method", "encode"])
    assert result.exit_code == 0, result.output
    assert soundfile.info(tmp_path / "latent.wav").channels == 4


def test_process_resample_quality_is_live_or_one_of_soxrs_recipes(tmp_path, sr44100_model_path):
    write_noise(tmp_path / "in.wav", 4800)
    arguments = ["process", str(tmp_path / "in.wav"), "--model", str(sr44100_model_path), "--out",
                 str(tmp_path / "out.wav"), "--resample-quality"]
    assert CliRunner().invoke(main, arguments + ["LQ"]).exit_code == 0
    assert CliRunner().invoke(main, arguments + ["live"]).exit_code == 0
    refused = CliRunner().invoke(main, arguments + ["best"])
    assert refused.exit_code == 2 and "'best' is not one of 'live', 'QQ', 'LQ', 'MQ', 'HQ', 'VHQ'" in refused.output


def test_process_fills_a_buffer_attribute_from_an_audio_file(tmp_path, attributes_model_path):
    write_noise(tmp_path / "in.wav", 100)
    write_noise(tmp_path / "ir.wav", 1000)
    result = CliRunner().invoke(main, ["process", str(tmp_path / "in.wav"), "--model", str(attributes_model_path),
                                       "--out", str(tmp_path / "out.wav"), "--set", f"ir#0={tmp_path / 'ir.wav'}"])
    assert result.exit_code == 0, result.output


def test_process_reports_a_buffer_the_model_refuses_in_one_line(tmp_path, attributes_model_path):
    write_noise(tmp_path / "in.wav", 100)
    write_noise(tmp_path / "long.wav", 60000)  # longer than the fixture's buffers take
    result = CliRunner().invoke(main, ["process", str(tmp_path / "in.wav"), "--model", str(attributes_model_path),
                                       "--out", str(tmp_path / "out.wav"), "--set", f"ir#0={tmp_path / 'long.wav'}"])
    assert result.exit_code == 1
    last_line = result.output.strip().splitlines()[-1]
    assert last_line.startswith("Error: ")
    assert "the model refused [1, 60000] samples at 48000 Hz for buffer 'ir#0'" in last_line


def test_serve_resamples_live_by_default_and_process_with_hq():
    for command, default in (("serve", "live"), ("process", "HQ")):
        result = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
        assert "--resample-quality [live|QQ|LQ|MQ|HQ|VHQ]" in result.output
        assert f"[default: {default}]" in result.output.split("--resample-quality")[1].split("--")[0]


def test_process_preset_option_reaches_the_engine(tmp_path, attributes_model_path):
    from ravelive.control.model_params import ModelControls
    from ravelive.control.presets import PresetLibrary
    from ravelive.models.nn_model import NNModel

    store = ModelControls.from_model(NNModel.load(attributes_model_path)).store()
    store.set("attr/gain", 0.25)
    PresetLibrary(tmp_path / "presets").save("quarter", store)
    write_noise(tmp_path / "in.wav", 1000)
    result = CliRunner().invoke(main, ["process", str(tmp_path / "in.wav"), "--model", str(attributes_model_path),
                                       "--out", str(tmp_path / "out.wav"), "--preset", "quarter",
                                       "--presets-dir", str(tmp_path / "presets")])
    assert result.exit_code == 0, result.output
    original, _ = soundfile.read(tmp_path / "in.wav", dtype="float32")
    processed, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    np.testing.assert_allclose(processed, 0.25 * original, atol=1e-7)
