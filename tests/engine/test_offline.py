import numpy as np
import pytest
import soundfile
import torch

from ravelive.engine.offline import (
    ProcessJob,
    ProcessSettings,
    parse_attribute_setting,
    parse_latent_setting,
    plan_jobs,
    process_file,
    process_files,
    total_frames,
)
from ravelive.errors import AudioFileError, ConfigError, ParameterError
from ravelive.models.nn_model import NNModel



def write_noise(path, frames, rate=48000, channels=1, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    x = (0.3 * np.random.default_rng(seed).standard_normal((frames, channels))).astype(np.float32)
    soundfile.write(path, x, rate, subtype="PCM_24" if path.suffix == ".flac" else "FLOAT")
    return x


def test_a_long_file_comes_out_aligned_and_of_the_same_length(tmp_path, codec_model_path):
    frames = 150_001  # several read chunks, thousands of model blocks, not a multiple of either
    x = write_noise(tmp_path / "in.wav", frames)
    progress = []
    process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "out.wav"), ProcessSettings(codec_model_path), progress.append)
    y, rate = soundfile.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    assert (y.shape, rate, sum(progress)) == ((frames, 1), 48000, frames)
    whole = frames - frames % 64
    with torch.inference_mode():
        reference = NNModel.load(codec_model_path)("forward", torch.from_numpy(x[:whole].T[None].copy()))
    assert np.max(np.abs(y[:whole, 0] - reference.numpy()[0, 0])) <= 1e-5


def test_a_48k_file_through_a_44k1_model_is_aligned(tmp_path, sr44100_model_path):
    rate = 48000
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    soundfile.write(tmp_path / "sine.wav", x, rate, subtype="FLOAT")
    process_file(ProcessJob(tmp_path / "sine.wav", tmp_path / "out.wav"), ProcessSettings(sr44100_model_path, block=512))
    y, out_rate = soundfile.read(tmp_path / "out.wav", dtype="float32")
    assert (len(y), out_rate) == (rate, rate)
    settled = slice(rate // 50, -rate // 50)  # away from the filters' start-up and the flushed end
    np.testing.assert_allclose(y[settled], x[settled], atol=2e-4)


def test_attributes_and_latent_edits_are_applied(tmp_path, attributes_model_path, codec_model_path):
    x = write_noise(tmp_path / "in.wav", 1000)
    process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "half.wav"),
                 ProcessSettings(attributes_model_path, attributes=(parse_attribute_setting("gain=0.5"),)))
    np.testing.assert_allclose(soundfile.read(tmp_path / "half.wav", dtype="float32")[0], 0.5 * x[:, 0], atol=1e-7)
    settings = ProcessSettings(codec_model_path, latent=(parse_latent_setting("bias", "0=0.25"),))
    process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "biased.wav"), settings)
    plain = ProcessSettings(codec_model_path)
    process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "plain.wav"), plain)
    shift = soundfile.read(tmp_path / "biased.wav")[0] - soundfile.read(tmp_path / "plain.wav")[0]
    np.testing.assert_allclose(shift[64:], 0.25, atol=1e-6)  # decode ramps from the previous frame's mean


def test_encode_writes_a_latent_file_that_decode_reads_back(tmp_path, codec_model_path):
    x = write_noise(tmp_path / "in.wav", 64 * 50 + 17, seed=3)
    process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "latent.wav"), ProcessSettings(codec_model_path, method="encode"))
    latent, _ = soundfile.read(tmp_path / "latent.wav", dtype="float32", always_2d=True)
    assert latent.shape == (len(x), 4)  # one channel per latent dimension, at the file's rate
    with torch.inference_mode():
        z = NNModel.load(codec_model_path)("encode", torch.from_numpy(x[: 64 * 50].T[None].copy())).numpy()[0]
    np.testing.assert_allclose(latent[: 64 * 50], np.repeat(z, 64, axis=1).T, atol=1e-6)
    process_file(ProcessJob(tmp_path / "latent.wav", tmp_path / "decoded.wav"), ProcessSettings(codec_model_path, method="decode"))
    process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "forward.wav"), ProcessSettings(codec_model_path))
    decoded, _ = soundfile.read(tmp_path / "decoded.wav", dtype="float32", always_2d=True)
    forward, _ = soundfile.read(tmp_path / "forward.wav", dtype="float32", always_2d=True)
    assert decoded.shape == forward.shape == (len(x), 1)
    np.testing.assert_allclose(decoded[: 64 * 50], forward[: 64 * 50], atol=1e-6)  # decode(encode) is the codec's forward


def test_resample_quality_reaches_the_engine(tmp_path, sr44100_model_path):
    write_noise(tmp_path / "in.wav", 4800)
    settings = ProcessSettings(sr44100_model_path, resample_quality="nope")
    with pytest.raises(ConfigError, match="resample quality 'nope' is not one of"):
        process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "out.wav"), settings)


def test_folders_are_walked_recursively_and_mirrored(tmp_path, identity_model_path):
    write_noise(tmp_path / "in" / "a.wav", 300)
    write_noise(tmp_path / "in" / "deep" / "er" / "b.flac", 200, channels=2)
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    write_noise(tmp_path / "single.wav", 100)
    jobs = plan_jobs([tmp_path / "in", tmp_path / "single.wav"], tmp_path / "out")
    assert {job.target.relative_to(tmp_path / "out").as_posix() for job in jobs} == {"a.wav", "deep/er/b.flac", "single.wav"}
    assert total_frames(jobs) == 600
    process_files(jobs, ProcessSettings(identity_model_path))
    stereo, _ = soundfile.read(tmp_path / "out" / "deep" / "er" / "b.flac", always_2d=True)
    assert stereo.shape == (200, 2)


def test_one_file_goes_to_out_itself(tmp_path):
    write_noise(tmp_path / "in.wav", 10)
    assert plan_jobs([tmp_path / "in.wav"], tmp_path / "renamed.flac") == [ProcessJob(tmp_path / "in.wav", tmp_path / "renamed.flac")]


def test_unreadable_audio_is_one_clear_line(tmp_path):
    (tmp_path / "broken.wav").write_text("this is text, not audio")
    with pytest.raises(AudioFileError, match=r"broken.wav: cannot read audio \(.*\); give a file soundfile reads") as info:
        total_frames(plan_jobs([tmp_path / "broken.wav"], tmp_path / "out.wav"))
    assert "\n" not in str(info.value)


def test_missing_input_is_refused(tmp_path):
    with pytest.raises(AudioFileError, match="nothing.wav: no such file or folder"):
        plan_jobs([tmp_path / "nothing.wav"], tmp_path / "out.wav")


def test_folder_without_audio_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AudioFileError, match="no audio files in .*empty"):
        plan_jobs([tmp_path / "empty"], tmp_path / "out")


def test_overwriting_an_input_is_refused(tmp_path):
    write_noise(tmp_path / "in.wav", 10)
    with pytest.raises(ConfigError, match="would overwrite an input"):
        plan_jobs([tmp_path / "in.wav"], tmp_path / "in.wav")


@pytest.mark.parametrize("text", ["gain", "gain=", "=0.5"])
def test_bad_set_syntax_is_refused(text):
    with pytest.raises(ConfigError, match=f"--set '{text}' is not ATTR=VALUE"):
        parse_attribute_setting(text)


@pytest.mark.parametrize("text", ["0", "x=1", "0=loud"])
def test_bad_latent_syntax_is_refused(text):
    with pytest.raises(ConfigError, match=f"--latent-bias '{text}' is not DIMENSION=VALUE"):
        parse_latent_setting("bias", text)


def test_out_of_range_latent_dimension_is_refused(tmp_path, codec_model_path):
    write_noise(tmp_path / "in.wav", 100)
    settings = ProcessSettings(codec_model_path, latent=(("bias", 4, 1.0),))
    with pytest.raises(ParameterError, match=r"latent dimension 4 is out of range \[0, 3\]"):
        process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "out.wav"), settings)


def save_preset(directory, model_path, name, values):
    from ravelive.control.model_params import ModelControls
    from ravelive.control.presets import PresetLibrary

    store = ModelControls.from_model(NNModel.load(model_path)).store()
    store.update(values)
    PresetLibrary(directory).save(name, store)


def test_a_preset_applies_its_attributes_and_gains_and_set_overrides_it(tmp_path, attributes_model_path):
    x = write_noise(tmp_path / "in.wav", 1000)
    save_preset(tmp_path / "presets", attributes_model_path, "soft", {"attr/gain": 0.5, "gain/out": -6.0})
    settings = ProcessSettings(attributes_model_path, preset="soft", presets_dir=tmp_path / "presets")
    process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "soft.wav"), settings)
    y = soundfile.read(tmp_path / "soft.wav", dtype="float32")[0]
    np.testing.assert_allclose(y, 0.5 * 10 ** (-6 / 20) * x[:, 0], atol=1e-6)
    override = ProcessSettings(attributes_model_path, attributes=(parse_attribute_setting("gain=1.0"),), preset="soft",
                               presets_dir=tmp_path / "presets")
    process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "loud.wav"), override)
    y = soundfile.read(tmp_path / "loud.wav", dtype="float32")[0]
    np.testing.assert_allclose(y, 10 ** (-6 / 20) * x[:, 0], atol=1e-6)


def test_a_preset_applies_its_latent_edits(tmp_path, codec_model_path):
    write_noise(tmp_path / "in.wav", 1000)
    save_preset(tmp_path / "presets", codec_model_path, "up", {"latent/0/bias": 0.25})
    process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "biased.wav"),
                 ProcessSettings(codec_model_path, preset="up", presets_dir=tmp_path / "presets"))
    process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "plain.wav"), ProcessSettings(codec_model_path))
    shift = soundfile.read(tmp_path / "biased.wav")[0] - soundfile.read(tmp_path / "plain.wav")[0]
    np.testing.assert_allclose(shift[64:], 0.25, atol=1e-6)


def test_an_unknown_preset_is_refused_naming_the_ones_there(tmp_path, attributes_model_path):
    write_noise(tmp_path / "in.wav", 100)
    save_preset(tmp_path / "presets", attributes_model_path, "soft", {})
    settings = ProcessSettings(attributes_model_path, preset="hard", presets_dir=tmp_path / "presets")
    with pytest.raises(ConfigError, match=r"no preset 'hard' in .*presets; available: soft"):
        process_file(ProcessJob(tmp_path / "in.wav", tmp_path / "out.wav"), settings)
