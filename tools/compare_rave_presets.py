#!/usr/bin/env python3
"""Parameter counts and compression of ravelive's RAVE presets against RAVE 2.3.1's own models, in one run.

    PYTHONPATH=. python tools/compare_rave_presets.py [--venv /tmp/rave-venv]

Run it with a python that has ravelive installed (ravelive's venv); RAVE's
side runs in the reference venv that `tools/make_reference_models.py` builds
(same torchaudio stub, same `--inside` pattern). Prints two markdown tables:
the summary for docs/training.md and a per-part breakdown.

What is counted
- RAVE: an untrained `rave.RAVE(n_channels=1)` built from RAVE's own gin
  configs, as `rave train --config A --config B` builds it. "params" is
  encoder + decoder after `remove_weight_norm` (what `rave export` does
  before scripting): the weights an export runs and training moves. The
  weight-norm gains that exist only during training, the PQMF filter bank
  (stored as fixed Conv1d weights, never in the optimizer) and the
  discriminator (training only) are reported apart in the breakdown.
- ravelive: `count_parameters(resolve_config([preset]))`: the trainable
  parameters of encoder + decoder; the PQMF filters are frozen parameters
  and reported apart, as RAVE's.
- Compression: RAVE's own rule in `rave export`: 2**14 samples through
  `RAVE.encode`, divided by the latent frames that come out. Ours is
  `RaveConfig.ratio`.
"""

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_reference_models as reference  # the venv, the stub and the logged runs are its

# ravelive preset -> RAVE gin configs it is compared with, in `rave train --config` order.
COUNTERPARTS = {
    "v2": reference.RAVE_CONFIGS["v2"],
    "v2_small": reference.RAVE_CONFIGS["v2_small"],
    "raspberry": reference.RAVE_CONFIGS["raspberry"],
    "causal": reference.RAVE_CONFIGS["causal"],
    "wasserstein": ("v2", "wasserstein"),
}
# Extra rows: a preset against another RAVE combination (RAVE's v2.gin has no noise generator; noise.gin adds it).
EXTRA_ROWS = (("v2", ("v2", "noise")),)
ENCODE_SAMPLES = 2**14  # what `rave export` feeds `encode` to find its ratio


# ---- outer part: ravelive's python ----------------------------------------------------------


def count_rave(venv: Path, specs: list[tuple[str, ...]]) -> dict[str, dict]:
    """Counts for each RAVE config combination, from one run of the reference venv's python."""
    with tempfile.TemporaryDirectory(prefix="ravelive-compare-") as tmp:
        work = Path(tmp)
        out = work / "counts.json"
        command = [str(venv / "bin" / "python"), __file__, "--inside", "count", str(out)]
        command += ["+".join(spec) for spec in specs]
        reference.run_logged(command, reference.shim_env(work), work / "rave.log")
        return json.loads(out.read_text())


def count_ours(preset: str) -> dict:
    """The same numbers for a ravelive preset (built on the meta device: no memory, no weights)."""
    import torch

    from ravelive.models.rave import RaveModel, count_parameters, resolve_config

    config = resolve_config([preset])
    with torch.device("meta"):
        model = RaveModel(config)

    def trainable(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters() if p.requires_grad)

    noise = trainable(model.decoder.noise)
    generator = model.decoder.noise[0] if config.use_noise else None
    return {
        "params": count_parameters(config),
        "encoder": trainable(model.encoder),
        "decoder": trainable(model.decoder) - noise,
        "noise": noise,
        "pqmf": sum(p.numel() for p in model.parameters() if not p.requires_grad),
        "ratio": config.ratio,
        "latent": config.latent_dims,
        "decoder_in": model.decoder.body[0].conv.in_channels,
        "noise_bands": generator.bins if generator else 0,
        "noise_kernel": generator.amplitude_net[0].conv.kernel_size[0] if generator else 0,
        "biases": sum(p.numel() for name, p in model.named_parameters() if name.endswith(".bias")),
    }


def notes(theirs: dict, ours: dict) -> str:
    """What differs in design, read off the two built models (not typed in)."""
    said = []
    if theirs["encoder_class"] != "EncoderV2" or theirs["decoder_class"] != "GeneratorV2":
        said.append(f"RAVE builds its v1 {theirs['encoder_class']}/{theirs['decoder_class']} here; ours is v2")
    if theirs["noise"] == 0 and ours["noise"]:
        said.append(f"RAVE config has no noise generator (ours: {ours['noise']:,})")
    elif theirs["noise"] and ours["noise"]:
        said.append(
            f"noise {theirs['noise']:,} vs {ours['noise']:,}: RAVE {theirs['noise_bands']} bands per sub-band, "
            f"kernel {theirs['noise_kernel']}; ours {ours['noise_bands']} bins, kernel {ours['noise_kernel']}"
        )
    if theirs["decoder_in"] != theirs["latent"]:
        said.append(
            f"RAVE decoder reads {theirs['latent']} latent + {theirs['decoder_in'] - theirs['latent']} noise channels"
        )
    if theirs["latent"] != ours["latent"]:
        said.append(f"latent {theirs['latent']} vs ours {ours['latent']}")
    if ours["biases"] and not theirs["biases"]:
        said.append(f"ours has conv biases ({ours['biases']:,}), RAVE none")
    return "; ".join(said) or "same layers"


def tables(venv: Path) -> str:
    rows = [(preset, configs) for preset, configs in COUNTERPARTS.items()] + list(EXTRA_ROWS)
    theirs_by_spec = count_rave(venv, [configs for _, configs in rows])
    summary = [
        (
            "| preset | RAVE 2.3.1 params | ravelive params | ratio ours/theirs | RAVE compression | ours | "
            "latent size (RAVE / ours) | notes |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    parts = [
        (
            "| preset | encoder RAVE / ours | decoder w/o noise RAVE / ours | noise RAVE / ours | "
            "PQMF taps (fixed) RAVE / ours | RAVE weight-norm gains (training only) | RAVE discriminator |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for preset, configs in rows:
        theirs, ours = theirs_by_spec["+".join(configs)], count_ours(preset)
        label = f"`{preset}` vs RAVE `{' + '.join(configs)}`"
        summary.append(
            f"| {label} | {theirs['params']:,} | {ours['params']:,} | {ours['params'] / theirs['params']:.2f} | "
            f"{theirs['ratio']} | {ours['ratio']} | {theirs['latent']} / {ours['latent']} | {notes(theirs, ours)} |"
        )
        pairs = " | ".join(f"{theirs[key]:,} / {ours[key]:,}" for key in ("encoder", "decoder", "noise", "pqmf"))
        parts.append(
            f"| {label} | {pairs} | "
            f"{theirs['weight_norm_gains']:,} | {theirs['discriminator']:,} |"
        )
    return "\n".join(summary) + "\n\n" + "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--inside"]:
        return inside_venv(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/rave-venv"))
    args = parser.parse_args(argv)
    if not reference.venv_ready(args.venv):
        print(
            f"compare_rave_presets: no RAVE 2.3.1 reference venv at {args.venv} (missing or out of date); build it "
            f"with `python3 tools/make_reference_models.py /tmp/ravelive-reference --only v2 --venv {args.venv}`",
            file=sys.stderr,
        )
        return 2
    try:
        print(tables(args.venv))
    except RuntimeError as error:  # a failed run in the venv: its log's tail is in the message
        print(f"compare_rave_presets: {error}", file=sys.stderr)
        return 1
    print(f"\n(tools/compare_rave_presets.py, {datetime.date.today().isoformat()})")
    return 0


# ---- inner part: runs inside the reference venv -----------------------------------------------


def inside_venv(command: list[str]) -> int:
    step, out, *specs = command
    if step != "count":
        raise SystemExit(f"unknown inside step {step!r}")
    Path(out).write_text(json.dumps({spec: count_rave_model(spec.split("+")) for spec in specs}, indent=2))
    return 0


def count_rave_model(configs: list[str]) -> dict:
    """Build rave.RAVE from `configs` (untrained, as `rave train` does) and count what an export keeps."""
    import gin
    import rave
    import torch

    gin.clear_config()
    gin.parse_config_files_and_bindings([f"{config}.gin" for config in configs], [])
    torch.manual_seed(0)
    model = rave.RAVE(n_channels=1).eval()

    def count(module: torch.nn.Module | None) -> int:
        return sum(p.numel() for p in module.parameters()) if module is not None else 0

    exported = (model.encoder, model.decoder)
    with_gains = sum(count(module) for module in exported)
    discriminator = count(model.discriminator)  # as trained: weight-norm gains included
    for module in model.modules():  # as `rave export` does before scripting
        if hasattr(module, "weight_g"):
            torch.nn.utils.remove_weight_norm(module)
    noise_module = getattr(model.decoder, "noise_module", None)  # GeneratorV2; v1's Generator has it in `synth`
    if noise_module is None:
        noise_module = next((m for m in model.decoder.modules() if type(m).__name__.startswith("NoiseGenerator")), None)
    noise_convs = [m for m in noise_module.modules() if isinstance(m, torch.nn.Conv1d)] if noise_module else []
    first_conv = next(m for m in model.decoder.net.modules() if isinstance(m, torch.nn.Conv1d))  # reads the latent
    with torch.no_grad():
        frames = model.encode(torch.zeros(1, 1, ENCODE_SAMPLES)).shape[-1]
    params = sum(count(module) for module in exported)
    return {
        "params": params,
        "encoder": count(model.encoder),
        "decoder": count(model.decoder) - count(noise_module),
        "noise": count(noise_module),
        "pqmf": count(model.pqmf),
        "weight_norm_gains": with_gains - params,
        "discriminator": discriminator,
        "ratio": ENCODE_SAMPLES // frames,
        "latent": model.latent_size,
        "decoder_in": first_conv.in_channels,
        "noise_bands": noise_convs[-1].out_channels // model.pqmf.n_band if noise_convs else 0,
        "noise_kernel": noise_convs[0].kernel_size[0] if noise_convs else 0,
        "biases": sum(p.numel() for name, p in model.named_parameters()
                      if name.endswith(".bias") and not name.startswith("discriminator.")
                      and isinstance(model.get_submodule(name.rsplit(".", 1)[0]), torch.nn.modules.conv._ConvNd)),
        "encoder_class": type(getattr(model.encoder, "encoder", model.encoder)).__name__,
        "decoder_class": type(model.decoder).__name__,
    }


if __name__ == "__main__":
    sys.exit(main())
