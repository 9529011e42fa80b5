"""The `ravelive` command line: a thin click group.

Each command parses its options, calls one library function, and turns a
RaveliveError into one line on stderr and exit status 1. Heavy imports (torch,
sounddevice) happen inside the commands so `ravelive --help` stays instant.
"""

import contextlib
import functools
import logging

import click

from ravelive import __version__
from ravelive.control import DEFAULT_OSC_PORT
from ravelive.dsp.qualities import LIVE_QUALITY, QUALITIES, QUALITY
from ravelive.errors import RaveliveError
from ravelive.generation import DEFAULT_LENGTH, MAX_LENGTH
from ravelive.training import EXAMPLE_LENGTH, FIDELITY, SAMPLE_RATE


def reports_errors(command):
    """Turn a RaveliveError raised by `command` into one clear line and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RaveliveError as error:
            raise click.ClickException(str(error)) from error

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ravelive")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Play neural audio models (RAVE / nn~ streaming exports) live."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("model", required=False, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON instead of a table.")
@reports_errors
def info(model: str | None, as_json: bool) -> None:
    """Describe MODEL (.ts; default: the bundled model): methods, labels, attributes, sample rate, batch support."""
    from ravelive.models.info import model_info

    click.echo(model_info(_model_or_default(model), as_json=as_json))


def _model_or_default(model: str | None) -> str:
    """MODEL as given, or the small default model shipped inside the package."""
    if model is not None:
        return model
    from ravelive.models.default import DEFAULT_MODEL_PATH

    return str(DEFAULT_MODEL_PATH)


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--model", "-m", type=click.Path(), help="nn~ model file (.ts); default: the bundled model.")
@click.option("--out", "-o", required=True, type=click.Path(),
              help="Output file (one input file) or folder (mirrors the inputs).")
@click.option("--method", help="Model method to run; default: forward, or the model's first method.")
@click.option("--block", type=int, help="Model block in samples, any multiple of the model's ratios; default: the "
              "smallest one of at least 256 (RAVE: 2048, v2_small: 512, a ratio-1 effect: 256).")
@click.option("--resample-quality", type=click.Choice(QUALITIES), default=QUALITY, show_default=True,
              help="Converter when the audio rate differs from the model's: live (our low-delay FIR, ~1.3 ms round "
              "trip at 44.1<->48 kHz, flat to 18 kHz) or a soxr recipe (HQ adds ~40 ms, clean to 20 kHz); "
              "benchmarks/resample_quality.py measures each.")
@click.option("--set", "settings", multiple=True, metavar="ATTR=VALUE",
              help="Set a model attribute before processing (several values: ATTR=1,2; a buffer attribute takes an audio file: ir#0=impulse.wav). Repeatable.")
@click.option("--latent-bias", multiple=True, metavar="I=V", help="Add V to latent dimension I. Repeatable.")
@click.option("--latent-scale", multiple=True, metavar="I=V", help="Multiply latent dimension I by V. Repeatable.")
@click.option("--latent-noise", multiple=True, metavar="I=V", help="Add noise of amount V to latent dimension I. Repeatable.")
@click.option("--preset", metavar="NAME", help="Apply a preset saved by serve first (attributes, latent edits, gains); "
              "--set and --latent-* override it.")
@click.option("--presets-dir", type=click.Path(file_okay=False),
              help="Where --preset is read; default: $XDG_DATA_HOME/ravelive/presets, else "
              "~/.local/share/ravelive/presets.")
@reports_errors
def process(inputs, model, out, method, block, resample_quality, settings, latent_bias, latent_scale,
            latent_noise, preset, presets_dir) -> None:
    """Stream audio files or folders (recursively) through a model, aligned with the input, same length."""
    import sys
    from pathlib import Path

    from ravelive.engine import offline

    latent = [offline.parse_latent_setting("bias", text) for text in latent_bias]
    latent += [offline.parse_latent_setting("scale", text) for text in latent_scale]
    latent += [offline.parse_latent_setting("noise", text) for text in latent_noise]
    options = offline.ProcessSettings(
        model_path=Path(_model_or_default(model)),
        method=method,
        block=block,
        resample_quality=resample_quality,
        attributes=tuple(offline.parse_attribute_setting(text) for text in settings),
        latent=tuple(latent),
        preset=preset,
        presets_dir=Path(presets_dir) if presets_dir else None,
    )
    jobs = offline.plan_jobs([Path(path) for path in inputs], Path(out))
    with click.progressbar(length=offline.total_frames(jobs), label=f"{len(jobs)} file(s)", file=sys.stderr) as bar:
        offline.process_files(jobs, options, on_progress=bar.update)
    click.echo(f"wrote {len(jobs)} file(s) to {out}")


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Dataset folder (dataset.json + audio.int16); a rerun adds only new or changed files.")
@click.option("--samplerate", type=click.IntRange(min=1), default=SAMPLE_RATE, show_default=True,
              help="Rate every file is resampled to (soxr HQ); the model's config must ask for the same.")
@click.option("--channels", type=click.IntRange(min=1), default=1, show_default=True,
              help="Channels every file is mixed down (mean) or spread (L R L R ...) to.")
@click.option("--example-length", type=click.IntRange(min=1), default=EXAMPLE_LENGTH, show_default=True,
              help="Samples per training example (RAVE's n_signal); shorter files are skipped.")
@click.option("--lazy", is_flag=True, help="Only index the files; decode them at training time (no copy, slower).")
@reports_errors
def preprocess(inputs, out, samplerate, channels, example_length, lazy) -> None:
    """Decode audio files or folders (recursively) into a training dataset of fixed-length examples."""
    import sys
    from pathlib import Path

    from ravelive.training import preprocess as prep

    settings = prep.PreprocessSettings(samplerate, channels, example_length, lazy)
    plan = prep.plan([Path(path) for path in inputs], Path(out), settings)
    def report_skip(skip: prep.Skipped) -> None:
        click.echo(f"skipped {skip.path}: {skip.reason}", err=True)

    for skip in plan.skipped:
        report_skip(skip)
    with click.progressbar(length=plan.total_frames, label=f"{len(plan.todo)} file(s)", file=sys.stderr) as bar:
        report = prep.run(plan, on_progress=bar.update, on_skip=report_skip)  # corrupt or short only once decoded
    click.echo(f"{out}: {report.examples} examples of {example_length} samples at {samplerate} Hz "
               f"({len(report.added)} file(s) added, {len(report.done)} already done, {len(report.skipped)} skipped)")


@main.command()
@click.argument("model", required=False, type=click.Path())
@click.option("--method", help="Model method to time; default: forward, or the model's first method.")
@click.option("--blocks", help="Comma-separated model blocks in samples; default: B, 2B, 4B, 8B.")
@click.option("--seconds", type=float, default=5.0, show_default=True, help="Audio timed per block size.")
@click.option("--threads", type=int, help="Fix torch's thread count (default: torch's choice).")
@reports_errors
def bench(model, method, blocks, seconds, threads) -> None:
    """Realtime factor of MODEL (default: the bundled model) at several block sizes."""
    from ravelive.engine.bench import benchmark, parse_blocks
    from ravelive.models.nn_model import NNModel

    loaded = NNModel.load(_model_or_default(model))
    results = benchmark(loaded, method, parse_blocks(blocks) if blocks else None, seconds, threads)
    click.echo(f"{'block':>7} {'ms/block':>9} {'realtime factor':>16} {'worst block':>12}")
    for result in results:
        click.echo(f"{result.block:>7} {1000 * result.seconds_per_block:>9.2f} "
                   f"{result.realtime_factor:>16.3f} {result.worst_block:>12.3f}")


def _device(text: str | None) -> int | str | None:
    """A PortAudio device as typed: an index, a name (substring), or 'none' (no sound card)."""
    return int(text) if text is not None and text.isdigit() else text


@main.command()
@click.option("--model", "-m", type=click.Path(), help="nn~ model file (.ts); default: the bundled model.")
@click.option("--method", help="Model method to run; default: forward, or the model's first method.")
@click.option("--device", "-d", help="Audio device for input and output (index or name; 'none': no sound card).")
@click.option("--input-device", help="Capture device (index or name); overrides --device.")
@click.option("--output-device", help="Playback device (index or name); overrides --device.")
@click.option("--samplerate", type=int, help="Stream rate in Hz; default: the device's own (JACK's, else its default "
              "rate), resampled to the model's; without a device the model's.")
@click.option("--channels", type=int, help="Audio channels; default: the method's channel count.")
@click.option("--period", type=int, default=None,
              help="Frames per audio callback; default: a JACK server's own (the only one it runs), else 256.")
@click.option("--block", type=int, help="Model block in samples, any multiple of the model's ratios; default: the "
              "smallest one of at least 256 (RAVE: 2048, v2_small: 512, a ratio-1 effect: 256).")
@click.option("--resample-quality", type=click.Choice(QUALITIES), default=LIVE_QUALITY, show_default=True,
              help="Converter when the audio rate differs from the model's: live (our low-delay FIR, ~1.3 ms round "
              "trip at 44.1<->48 kHz, flat to 18 kHz, aliases 80 dB down) or a soxr recipe (HQ adds ~40 ms, "
              "clean to 20 kHz); benchmarks/resample_quality.py measures each.")
@click.option("--latency-margin", default="auto", show_default=True,
              help="The model's compute budget in milliseconds, rounded up to whole periods (at least one: only "
              "whole periods buy compute time), or 'auto' (measured at warm-up). Latency = alignment + margin.")
@click.option("--threads", type=int, help="Torch threads; default: CPU cores - 1, at most 4.")
@click.option("--input", "input_file", type=click.Path(), help="Loop this audio file as the live input.")
@click.option("--output", "output_file", type=click.Path(), help="Record what is played to this file.")
@click.option("--duration", type=float, help="Stop after this many seconds; default: until Ctrl-C / SIGTERM.")
@click.option("--stats", type=float, default=None, is_flag=False, flag_value=5.0, metavar="[SECONDS]",
              help="Print load, compute time and counters every SECONDS (default 5).")
@click.option("--fallback", type=click.Choice(["dry", "silence"]), default="dry", show_default=True,
              help="What a late block plays: the dry input at the same latency, or silence.")
@click.option("--no-realtime", is_flag=True, help="Do not request realtime scheduling and locked memory.")
@click.option("--no-limiter", is_flag=True, help="No DC blocker and no true-peak limiter (-1 dBTP, 1.5 ms lookahead) "
              "at the output; the latency drops by the lookahead.")
@click.option("--allow-control-output", is_flag=True, help="Let methods whose output is not audio (encode, prior: "
              "control-rate latents, played as held DC) be played; OSC: /ravelive/allow_control_output.")
@click.option("--osc-port", type=click.IntRange(1, 65535), default=DEFAULT_OSC_PORT, show_default=True,
              help="UDP port for OSC control (OSCQuery JSON on the same TCP port).")
@click.option("--osc-host", default="127.0.0.1", show_default=True,
              help="Address OSC listens on; a network address (or 0.0.0.0) needs --allow.")
@click.option("--allow", multiple=True, metavar="ADDRESS[/BITS]",
              help="Client address or subnet accepted besides loopback (repeatable), e.g. 192.168.1.0/24.")
@click.option("--models-dir", type=click.Path(file_okay=False), help="Directory /ravelive/model/load NAME loads from.")
@click.option("--latents-dir", type=click.Path(file_okay=False),
              help="Directory of latent sequences (NAME.npy, as generate-latents writes) /ravelive/latent/play NAME "
                   "plays into decode.")
@click.option("--presets-dir", type=click.Path(file_okay=False),
              help="Directory of presets (OSC save, load, morph; --preset); default: $XDG_DATA_HOME/ravelive/presets, "
              "else ~/.local/share/ravelive/presets.")
@click.option("--preset", metavar="NAME", help="Apply preset NAME before the audio starts; 'last' resumes the state "
              "the previous `--preset last` run left (saved 2 s after each change and at exit).")
@click.option("--morph", nargs=2, metavar="A B", help="Let the preset/morph parameter (0..1: a MIDI knob, a CV, OSC) "
              "move every parameter between presets A and B from the start, with or without OSC.")
@click.option("--preload", is_flag=True,
              help="Load every model of --models-dir before the audio starts, so /ravelive/model/load swaps to one "
                   "without loading it (a load holds Python's lock for 0.1-0.3 s: late blocks on a tight margin).")
@click.option("--no-osc", is_flag=True, help="No network control at all.")
@click.option("--no-discovery", is_flag=True, help="No OSCQuery HTTP endpoint and no mDNS announcement.")
@click.option("--midi-in", multiple=True, metavar="PATTERN",
              help="MIDI input: every port whose name contains PATTERN (any case); repeatable; replugs are followed.")
@click.option("--midi-virtual", metavar="NAME", help="Open a virtual MIDI input called NAME (ALSA, JACK, CoreMIDI).")
@click.option("--midi-out", multiple=True, metavar="PATTERN", help="MIDI feedback output(s) (LED rings, motor faders).")
@click.option("--midi-api", type=click.Choice(["alsa", "jack", "coremidi", "winmm"]),
              help="MIDI backend; default: the platform's.")
@click.option("--midi-map", type=click.Path(dir_okay=False), help="MIDI mapping file (TOML, see docs/midi.md); "
              "MIDI learn writes to it.")
@click.option("--learn", metavar="PARAM", help="Arm MIDI learn for PARAM at start: the next control moved drives it.")
@click.option("--cv-in", multiple=True, metavar="CH=PARAM[:MIN:MAX]",
              help="Eurorack CV on device channel CH (above the audio ones) drives PARAM, its voltage range mapped "
                   "onto MIN..MAX (default: PARAM's range), e.g. 3=latent/0/bias:-2:2. Repeatable.")
@click.option("--gate-in", multiple=True, metavar="CH=ACTION",
              help="Each gate on channel CH runs ACTION once: preset-next, preset-recall:NAME, freeze (toggles the "
                   "latents' freeze), freeze-hold (frozen while high), learn:PARAM. Repeatable.")
@click.option("--cv-out", multiple=True, metavar="CH=SOURCE[:MIN:MAX]",
              help="Put SOURCE out as a CV on channel CH: level (0..1) or latent/N (default -3..3), mapped onto the "
                   "jack's voltage range. Repeatable.")
@click.option("--cv-calibration", type=click.Path(dir_okay=False),
              help="TOML file whose [cv] table calibrates the interface (volts_full_scale, range bipolar/unipolar, "
                   "gate threshold); default: the --midi-map file. See docs/midi.md.")
@click.option("--prior", type=click.Path(exists=True, dir_okay=False),
              help="A prior for this model (ravelive export-prior): /ravelive/prior/play 1 decodes its latents in "
                   "place of the input's, at /ravelive/prior/temperature (0..2). Not needed for a model exported "
                   "with its prior inside (ravelive export RUN --prior PRIOR); given, it takes precedence.")
@reports_errors
def serve(model, method, device, input_device, output_device, samplerate, channels, period, block, resample_quality,
          latency_margin, threads, input_file, output_file, duration, stats, fallback, no_realtime, no_limiter,
          allow_control_output, osc_port, osc_host, allow, models_dir, latents_dir, presets_dir, preset, morph,
          preload, no_osc, no_discovery, midi_in, midi_virtual, midi_out, midi_api, midi_map, learn, cv_in, gate_in,
          cv_out, cv_calibration, prior) -> None:
    """Run a model live on an audio device (or files), until Ctrl-C or SIGTERM."""
    from pathlib import Path

    from ravelive.config import ServeConfig, validate_margin
    from ravelive.control.cv import cv_config
    from ravelive.control.midi.service import MidiConfig
    from ravelive.control.osc import OscConfig
    from ravelive.control.presets import default_presets_dir
    from ravelive.daemon import run

    presets = Path(presets_dir) if presets_dir else default_presets_dir()
    osc = None if no_osc else OscConfig(
        host=osc_host, port=osc_port, allow=tuple(allow),
        models_dir=Path(models_dir) if models_dir else None, presets_dir=presets,
        latents_dir=Path(latents_dir) if latents_dir else None,
    )

    config = ServeConfig(
        model=Path(model) if model else None, method=method,
        input_device=_device(input_device or device), output_device=_device(output_device or device),
        sample_rate=samplerate, channels=channels, period=period, block=block, resample_quality=resample_quality,
        latency_margin_ms=validate_margin(latency_margin), threads=threads,
        input_file=Path(input_file) if input_file else None, output_file=Path(output_file) if output_file else None,
        duration=duration, stats_interval=stats, realtime=not no_realtime, fallback=fallback,
        osc=osc, discovery=not no_discovery, preload=preload, limiter=not no_limiter,
        allow_control_output=allow_control_output,
        midi=MidiConfig(inputs=tuple(midi_in), virtual=midi_virtual, outputs=tuple(midi_out), api=midi_api,
                        map_file=Path(midi_map) if midi_map else None, learn=learn)
        if midi_in or midi_virtual or midi_out or midi_map or learn else None,
        cv=cv_config(cv_in, gate_in, cv_out, cv_calibration or (midi_map if cv_in or gate_in or cv_out else None)),
        preset=preset, presets_dir=presets, morph=tuple(morph) if morph else None,
        prior=Path(prior) if prior else None,
    )
    run(config, report=click.echo)


@main.command()
@click.argument("dataset", type=click.Path())
@click.option("--out", "-o", "run", required=True, type=click.Path(file_okay=False),
              help="Run folder: checkpoint.pt, config.toml and TensorBoard logs/ go there.")
@click.option("--config", "-c", "names", multiple=True, metavar="NAME",
              help="Model preset (v2, v2_small, raspberry, causal, wasserstein, tiny) or a TOML file with [model] "
              "and [train] tables (e.g. an earlier RUN/config.toml); repeatable, later ones win. Default: v2.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Set one model or training key (VALUE read as TOML), after --config: e.g. lr=1e-3, "
              "capacity=32, ratios=[4,2]. Repeatable.")
@click.option("--augment", "augment", multiple=True, metavar="NAME",
              help="Augment every batch: mute, gain, compress (ravelive/training/augment.py), in the order given; "
              "repeatable. The same as --set augment=[...].")
@click.option("--descriptors", metavar="NAMES",
              help="Condition the decoder on these descriptors, comma-separated (rms, centroid, bandwidth, flatness, "
              "rolloff): each becomes a knob of the export (docs/generation.md). The same as --set descriptors=NAMES; "
              "--config descriptors is rms,centroid.")
@click.option("--resume", is_flag=True, help="Continue RUN from its last checkpoint, bit for bit; --set may only "
              "change steps, intervals, workers and device.")
@reports_errors
def train(dataset, run, names, settings, augment, descriptors, resume) -> None:
    """Train a RAVE-family model on DATASET (a `ravelive preprocess` output, or a folder of .wav files) into RUN.

    One command for the CPU, one GPU (used when present) or several processes:
    torchrun --nproc_per_node N -m ravelive train ...
    """
    import os

    from ravelive.training.loop import train_run

    leader = int(os.environ.get("RANK", "0")) == 0  # under torchrun, one bar
    with _progress("training") as show:
        if augment:
            settings = (*settings, "augment=[" + ", ".join(f'"{name}"' for name in augment) + "]")
        if descriptors is not None:
            settings = (*settings, f"descriptors={descriptors}")
        result = train_run(dataset, run, tuple(names), tuple(settings), resume=resume, on_step=show if leader else None)
    if leader:
        click.echo(f"trained {run} to step {result.step}; export it: ravelive export {run} --out MODEL.ts")


@main.command()
@click.argument("model", type=click.Path(exists=True))
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Folder for the results; it mirrors the inputs (files and folders, recursively).")
@click.option("--method", help="Model method to run; default: forward.")
@reports_errors
def generate(model, inputs, out, method) -> None:
    """Transform audio through MODEL (a .ts file, or a training RUN folder: its last checkpoint) into folder OUT.

    The engine of `process`: streamed in model blocks, constant memory, aligned with the input.
    """
    import sys
    import tempfile
    from pathlib import Path

    from ravelive.engine import offline

    with tempfile.TemporaryDirectory(prefix="ravelive-generate-") as scratch:
        model_path = _model_file(model, Path(scratch))
        Path(out).mkdir(parents=True, exist_ok=True)  # always a folder, even for one input file
        jobs = offline.plan_jobs([Path(path) for path in inputs], Path(out))
        settings = offline.ProcessSettings(model_path=model_path, method=method)
        with click.progressbar(length=offline.total_frames(jobs), label=f"{len(jobs)} file(s)", file=sys.stderr) as bar:
            offline.process_files(jobs, settings, on_progress=bar.update)
    click.echo(f"wrote {len(jobs)} file(s) to {out}")


def _model_file(model: str, scratch):
    """MODEL as a .ts Path: the file itself, or a training run's last checkpoint exported (verified) into `scratch`."""
    from pathlib import Path

    model_path = Path(model)
    if model_path.is_dir():
        from ravelive.training.export import export_checkpoint

        exported = export_checkpoint(model_path, scratch / f"{model_path.name}.ts")
        model_path = exported.path
        click.echo(f"{model}: step {exported.step}, exported for this run as `ravelive export` would", err=True)
        if exported.latent_note:
            click.echo(f"{model}: {exported.latent_note}", err=True)
    return model_path


@main.command()
@click.argument("model", type=click.Path(exists=True))
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Folder for the latent corpus; a rerun into it encodes only what is not done yet.")
@click.option("--length", type=click.IntRange(1, MAX_LENGTH), default=DEFAULT_LENGTH, show_default=True,
              help="Latent frames per sequence (2048: ~95 s at 44.1 kHz and ratio 2048).")
@reports_errors
def latents(model, inputs, out, length) -> None:
    """Encode audio files or folders through MODEL (.ts with encode, or a RUN) into fixed-length latent sequences.

    Normalised per dimension with the corpus statistics (saved with them): the material of train-diffusion
    and train-prior.
    """
    import sys
    import tempfile
    from pathlib import Path

    from ravelive.generation.latents import encode_corpus, total_frames

    with tempfile.TemporaryDirectory(prefix="ravelive-latents-") as scratch:
        model_path = _model_file(model, Path(scratch))
        paths = [Path(path) for path in inputs]
        with click.progressbar(length=total_frames(paths), label="encoding", file=sys.stderr) as bar:
            corpus = encode_corpus(model_path, paths, Path(out), length, on_progress=bar.update,
                                   on_skip=lambda skipped: click.echo(f"skipped {skipped.path}: {skipped.reason}",
                                                                      err=True))
    seconds = corpus.length * corpus.model.ratio / corpus.model.sample_rate
    click.echo(f"wrote {corpus.count} sequence(s) of {corpus.length} frames ({seconds:.1f} s) x {corpus.model.dims} "
               f"latents from {len(corpus.files)} file(s) to {out}")


def _corpus_training_command(name: str, table: str, presets: str, examples: str, leading_arguments=()):
    """The options every trainer on a latent corpus shares (train-diffusion, train-prior): LATENTS (after
    `leading_arguments`, click arguments of its own), --out, --config PRESET|TOML with its [table], --set KEY=VALUE,
    --resume."""
    def decorate(function):
        options = [
            main.command(name),
            *leading_arguments,
            click.argument("latents", type=click.Path()),
            click.option("--out", "-o", "run", required=True, type=click.Path(file_okay=False),
                         help="Run folder: checkpoint.pt, config.toml and TensorBoard logs/ go there."),
            click.option("--config", "-c", "names", multiple=True, metavar="NAME",
                         help=f"Preset: {presets}, or a TOML file with a [{table}] table (e.g. an earlier "
                              f"RUN/config.toml); repeatable, later ones win."),
            click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                         help=f"Set one key of the {table} config (VALUE read as TOML), after --config: e.g. "
                              f"{examples}. Repeatable."),
            click.option("--resume", is_flag=True, help="Continue RUN from its last checkpoint, bit for bit; --set "
                         "may only change steps, intervals and device."),
            reports_errors,
        ]
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def _train_on_corpus(train_run, latents, run, names, settings, resume):
    """Run `train_run` with one progress bar (rank 0's, under torchrun); its result on rank 0, else None."""
    import os

    leader = int(os.environ.get("RANK", "0")) == 0
    with _progress("training") as show:
        result = train_run(latents, run, names, settings, resume=resume, on_step=show if leader else None)
    return result if leader else None


@_corpus_training_command("train-diffusion", "diffusion",
                          "raveld (RAVE-Latent-Diffusion's UNet, the default) or tiny",
                          "lr=3e-4, steps=50000, channels=[64,128,256]")
def train_diffusion(latents, run, names, settings, resume) -> None:
    """Train a latent diffusion denoiser (1-D U-Net, v-objective) on LATENTS (a `ravelive latents` folder) into RUN.

    torchrun --nproc_per_node N -m ravelive train-diffusion ... runs it on N processes.
    """
    from ravelive.generation.diffusion_training import train_diffusion as train_run

    result = _train_on_corpus(train_run, latents, run, names, settings, resume)
    if result is not None:
        click.echo(f"trained {run} to step {result.step}; generate: ravelive generate-latents {run} --model MODEL.ts "
                   f"--out DIR")


@_corpus_training_command("train-prior", "prior", "default (2 x 512 GRU) or tiny", "hidden=256, layers=3, steps=50000",
                          (click.argument("model", type=click.Path(exists=True)),))
def train_prior(model, latents, run, names, settings, resume) -> None:
    """Train a prior (a GRU predicting each latent frame from the ones before) for MODEL on LATENTS into RUN.

    MODEL (a .ts file, or the training RUN it was exported from) is the model the prior plays for; LATENTS, a
    `ravelive latents` folder, must have been encoded by it.
    torchrun --nproc_per_node N -m ravelive train-prior ... runs it on N processes.
    """
    import functools
    import tempfile
    from pathlib import Path

    from ravelive.generation.prior_training import train_prior as train_run

    with tempfile.TemporaryDirectory(prefix="ravelive-train-prior-") as scratch:
        model_path = _model_file(model, Path(scratch))
        result = _train_on_corpus(functools.partial(train_run, model_path), latents, run, names, settings, resume)
    if result is not None:
        click.echo(f"trained {run} to step {result.step}; export: ravelive export-prior {run} --out PRIOR.ts, or "
                   f"into the model's own file: ravelive export MODEL_RUN --out MODEL.ts --prior {run}")


@main.command("export-prior")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="The .ts file to write: method `prior` (temperature in, latents out) for the corpus's model.")
@reports_errors
def export_prior(run, out) -> None:
    """Export the prior run RUN (`ravelive train-prior`) as an nn~ file whose `prior` feeds the model's `decode`."""
    from ravelive.generation.prior_export import export_prior as export

    exported = export(run, out)
    model = exported.model
    click.echo(f"exported {run} (step {exported.step}) to {exported.path}: prior [1, {model.ratio}, {model.dims}, "
               f"{model.ratio}] for {model.name} at {model.sample_rate} Hz; play it: ravelive serve --model "
               f"{model.name} --prior {exported.path}, or [nn~ {exported.path.name} prior] into "
               f"[nn~ {model.name} decode]")


@main.command("generate-latents")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--model", "-m", required=True, type=click.Path(exists=True),
              help="The model whose latents the run learnt (its decode makes the audio): a .ts file, or the "
              "training RUN it was exported from.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for the wav files.")
@click.option("--seconds", type=float, help="Duration; longer than the training context by overlapping windows. "
              "Default: one window.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="The same seed, the same audio.")
@click.option("--steps", type=click.IntRange(1), default=50, show_default=True, help="Sampler steps per window.")
@click.option("--temperature", type=float, default=1.0, show_default=True,
              help="Scale of the initial noise: below 1 calmer, above 1 wilder.")
@click.option("--sampler", type=click.Choice(["dpm", "ddim"]), default="dpm", show_default=True,
              help="DPM-Solver++ (2M) or DDIM.")
@click.option("--slerp", type=(click.IntRange(0), click.IntRange(0)), metavar="SEED_A SEED_B",
              help="Write a series walking from SEED_A's noise to SEED_B's (spherical interpolation).")
@click.option("--slerp-count", type=click.IntRange(2), default=5, show_default=True, help="Files in the series.")
@reports_errors
def generate_latents(run, model, out, seconds, seed, steps, temperature, sampler, slerp, slerp_count) -> None:
    """Generate audio from the latent diffusion run RUN, decoded through MODEL, into folder OUT."""
    import tempfile
    from pathlib import Path

    from ravelive.generation.generate import GenerationSettings, generate_latents as generate

    settings = GenerationSettings(seconds, seed, steps, temperature, sampler)
    with tempfile.TemporaryDirectory(prefix="ravelive-generate-latents-") as scratch:
        written = generate(run, _model_file(model, Path(scratch)), out, settings, slerp, slerp_count)
    click.echo(f"wrote {len(written)} file(s) to {out}: {', '.join(path.name for path in written)}")


@contextlib.contextmanager
def _progress(label: str):
    """A step callback drawing a progress bar on stderr, opened at the first step (a refused config prints alone)."""
    import sys

    with contextlib.ExitStack() as stack:
        bars = []

        def show(report) -> None:
            if not bars:
                bars.append(stack.enter_context(click.progressbar(
                    length=report.steps, label=label, file=sys.stderr, item_show_func=lambda text: text)))
                bars[0].update(report.step - 1)
            shown = " ".join(f"{name} {value:.3g}" for name, value in report.losses.items())
            bars[0].update(report.step - bars[0].pos, current_item=shown)

        yield show


@main.command("export")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Model file to write (.ts).")
@click.option("--fidelity", type=float, default=FIDELITY, show_default=True,
              help="Share of the latent variance encode keeps, in (0, 1]: a PCA of the latent over the run's dataset "
              "keeps the fewest principal dims that reach it (RAVE's --fidelity); 1 keeps every dim, rotated.")
@click.option("--dataset", type=click.Path(exists=True), help="Fit the latent PCA on this dataset (a `ravelive "
              "preprocess` folder or a folder of .wav files) instead of the one the run recorded; without it, a run "
              "whose dataset is gone exports every latent dim unrotated, and says so.")
@click.option("--samplerate", "sample_rate", type=int, help="Declare this rate, a whole multiple of the training "
              "rate (24000 -> 48000): the model resamples inside itself, its filters' delay added to the latency.")
@click.option("--streaming/--no-streaming", default=True, show_default=True,
              help="Cached convolutions that play in blocks (nn~, serve); --no-streaming writes the plain offline "
              "network, which serve refuses.")
@click.option("--prior", "prior_run", type=click.Path(file_okay=False), help="A `ravelive train-prior` run on latents "
              "of an export of this run (same step, --fidelity, --dataset, --samplerate): the model's `prior` method "
              "plays it instead of N(0, 1) noise, and serve's prior/play needs no --prior file.")
@reports_errors
def export(run, out, fidelity, dataset, sample_rate, streaming, prior_run) -> None:
    """Export the last checkpoint of the training run RUN as a verified nn~ model (.ts).

    The file holds ravelive.json: format version, config, latency per method, the latent dims kept and the
    fidelity curve. It is reloaded and checked before this reports success: every method at batch 1 and 4,
    streamed blocks equal to the offline model after the reported delay.
    """
    from ravelive.training.export import export_run

    report = export_run(run, out, fidelity=fidelity, dataset=dataset, sample_rate=sample_rate, streaming=streaming,
                        prior=prior_run)
    exported = report.export
    if exported.latent_note:
        click.echo(exported.latent_note, err=True)
    checked = "streams as offline" if streaming else "not streaming (serve refuses it; re-export with --streaming)"
    click.echo(f"wrote {exported.path} (step {exported.step}), verified: {checked}")
    kept = f"{exported.kept_dims} of {exported.latent_dims}"
    click.echo(f"  latent   {kept} dims" + (f" (fidelity {fidelity})" if not exported.latent_note else " (no PCA)"))
    if exported.prior_step is not None:
        click.echo(f"  prior    trained: {prior_run} (step {exported.prior_step}); play it: ravelive serve --model "
                   f"{exported.path}, /ravelive/prior/play 1, or [nn~ {exported.path.name} prior] into decode")
    for method in report.latencies:
        click.echo(f"  {method.name:<8} latency {method.samples:>6} samples ({method.milliseconds:.1f} ms)")
    if report.realtime_factor is not None:
        click.echo(f"  forward realtime factor {report.realtime_factor:.3f} at block {report.block} on this machine "
                   f"({'keeps up' if report.realtime_factor < 1 else 'too slow for live use here'})")


@main.group()
def midi() -> None:
    """MIDI mapping files and ports."""


@midi.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--model", "-m", type=click.Path(), help="Check targets against this model (default: the bundled one).")
@reports_errors
def midi_check(file, model) -> None:
    """Validate a MIDI mapping FILE against a model's parameters; list every fault with its line."""
    from ravelive.control.midi.mapping import MappingFileError, load_map
    from ravelive.control.model_params import ModelControls
    from ravelive.models.nn_model import NNModel

    specs = ModelControls.from_model(NNModel.load(_model_or_default(model))).store().specs
    try:
        midi_map = load_map(file, specs)
    except MappingFileError as error:
        for problem in error.problems:
            click.echo(problem, err=True)
        raise click.ClickException(f"{file}: {len(error.problems)} fault(s)") from error
    for mapping in midi_map.mappings:
        click.echo(f"{file}:{mapping.line}: {mapping.target} <- {mapping.describe()}")
    program = midi_map.program_channel
    if program is not False:
        click.echo(f"program change on {'any channel' if program is None else f'channel {program}'} recalls presets")
    click.echo(f"{file}: {len(midi_map.mappings)} binding(s), no faults")


@midi.command("ports")
@click.option("--midi-api", type=click.Choice(["alsa", "jack", "coremidi", "winmm"]), help="MIDI backend.")
@reports_errors
def midi_ports(midi_api) -> None:
    """List MIDI input and output ports (names for --midi-in / --midi-out)."""
    from ravelive.control.midi.ports import list_ports

    inputs, outputs = list_ports(midi_api)
    for name in inputs:
        click.echo(f"in  {name}")
    for name in outputs:
        click.echo(f"out {name}")
    if not inputs and not outputs:
        click.echo("no MIDI ports")


@main.command()
@reports_errors
def devices() -> None:
    """List audio devices: index, host API, input/output channels, default sample rate."""
    from ravelive.audio import list_devices

    found = list_devices()
    if not found:
        click.echo("no audio devices (PortAudio lists none); serve can still run on files: --input/--output")
    for d in found:
        mark = ("<" if d.default_input else " ") + (">" if d.default_output else " ")
        click.echo(f"{mark} {d.index:>3} {d.name} [{d.host_api}] in {d.input_channels}, "
                   f"out {d.output_channels}, {d.default_sample_rate:g} Hz")


@main.command("systemd-unit", context_settings={"ignore_unknown_options": True})
@click.option("--user", default="ravelive", show_default=True, help="Non-root account to run as (in group audio).")
@click.argument("serve_args", nargs=-1, type=click.UNPROCESSED)
@reports_errors
def systemd_unit(user, serve_args) -> None:
    """Print a systemd unit running `ravelive serve SERVE_ARGS` headless (install: see docs/raspberry-pi.md)."""
    import shutil
    import sys
    from pathlib import Path

    from ravelive.systemd import unit_file

    if user == "root":
        raise click.BadParameter("run the service as a non-root user in group audio", param_hint="--user")
    serve.make_context("serve", list(serve_args))  # the same validation as `ravelive serve` itself
    executable = shutil.which("ravelive") or str(Path(sys.executable).with_name("ravelive"))
    click.echo(unit_file(list(serve_args), executable, user), nl=False)
