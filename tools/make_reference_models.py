#!/usr/bin/env python3
"""Build reference models that nobody here wrote: RAVE 2.3.1's and nn_tilde 1.6.0's own exporters.

    python3 tools/make_reference_models.py OUT_DIR [--venv /tmp/rave-venv] [--only v2,discrete]

Writes genuine streaming `.ts` files into OUT_DIR, plus `manifest.json`
saying where each came from, and prints what it made and how long it took.

RAVE models: an untrained model is built by RAVE's own code from its own gin
configs (as `rave train` does before its first step), its operative config
and a checkpoint are written in the layout `rave train` leaves, and RAVE's own
`rave export --run RUN --streaming` turns that run into the `.ts` file.
nn~ models: small modules declared with `nn_tilde.Module` (register_method,
register_attribute, nn_tilde.Buffer) and saved by nn_tilde's own
`export_to_ts`, so the attribute getters/setters and buffer methods in the
file are the ones nn_tilde generates. nn~'s demo scripts live only in its git
repository (not in the PyPI package), so they cannot be run offline.

Everything runs in a separate virtual environment (default /tmp/rave-venv):
RAVE pins packages ravelive does not want. torch==2.13.0 is installed first
and held by a constraints file so nothing can replace it; acids-rave,
cached-conv and nn-tilde are installed with --no-deps (they ask for
torchaudio, which has no CPU build for torch 2.13, and nn-tilde asks for
torch==2.5), then their real needs are installed one by one.

Runtime shims (installed files are never edited):
- `torchaudio`: a stub package on PYTHONPATH. RAVE imports it at module level
  and builds Spectrogram modules for its training losses and discriminators;
  the export path never calls them. Calling anything in the stub raises.
- RAVE keeps a model's PCA (`fidelity`, `latent_pca`) from validation during
  training; an untrained checkpoint has fidelity 0 everywhere, which makes
  `rave export` keep a single latent dimension. The checkpoint gets a
  fidelity curve that reaches 95 % only at the last dimension, so export
  keeps all 128: then `decode` adds no random dimensions and is
  deterministic (encode and forward still sample, as in every RAVE v2
  export), which lets tests compare streamed and whole-signal decode.
- Discriminator and loss weights are left out of the checkpoint (export
  loads with strict=False and never uses them); it saves 100 MB per run.

The same file runs inside that venv for the steps that import RAVE or
nn_tilde (`--inside checkpoint|nn-tilde`); the outer part needs only the
standard library.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_PACKAGES_NO_DEPS = ("acids-rave==2.3.1", "cached-conv==2.5.0", "nn-tilde==1.6.0")
# What RAVE 2.3.1's modules import on the export path (its own pins where they still install).
VENV_PACKAGES = (
    "gin-config", "absl-py", "einops", "scipy==1.10.0", "scikit-learn", "GPUtil", "lmdb", "librosa",
    "pytorch-lightning==1.9.0", "setuptools<81", "PyYAML", "tqdm", "udls", "requests",
)
TORCH = "torch==2.13.0"
VENV_STAMP = ".ravelive-reference-stamp"

# name -> RAVE gin configs, in `rave train --config A --config B` order.
RAVE_CONFIGS = {
    "v2": ("v2",),
    "v2_small": ("v2_small",),
    "raspberry": ("raspberry",),
    "discrete": ("discrete",),
    "causal": ("v2", "causal"),
    "v3": ("v3",),
}
NN_TILDE_MODELS = ("nn_tilde_effects", "nn_tilde_attributes", "nn_tilde_buffers")


TORCHAUDIO_STUB = '''"""Stub torchaudio for running RAVE's export without torchaudio (see make_reference_models.py)."""
import sys
import types

import torch


class _TrainingOnly(torch.nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        raise RuntimeError("torchaudio stub: this module is only used by RAVE's training losses")


transforms = types.ModuleType("torchaudio.transforms")
transforms.Spectrogram = _TrainingOnly
transforms.MelSpectrogram = _TrainingOnly
sys.modules["torchaudio.transforms"] = transforms


def __getattr__(name):
    raise AttributeError(f"torchaudio stub has no {name!r}: only the export path of RAVE runs here")
'''


# ---- outer part: standard library only ------------------------------------------------------


def _venv_wanted() -> str:
    return "\n".join((TORCH, *VENV_PACKAGES_NO_DEPS, *VENV_PACKAGES))


def venv_ready(venv: Path) -> bool:
    """Whether `venv` is a reference venv built by ensure_venv with today's package list."""
    stamp = venv / VENV_STAMP
    return (venv / "bin" / "python").exists() and stamp.exists() and stamp.read_text() == _venv_wanted()


def ensure_venv(venv: Path) -> float:
    """Create the reference venv unless its stamp matches; returns the seconds it took."""
    if venv_ready(venv):
        return 0.0
    stamp = venv / VENV_STAMP
    wanted = _venv_wanted()
    start = time.monotonic()
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    constraints = venv / "constraints.txt"
    constraints.write_text(TORCH + "\n")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, TORCH], check=True)
    subprocess.run([*pip, "-c", str(constraints), *VENV_PACKAGES], check=True)
    subprocess.run([*pip, "--no-deps", *VENV_PACKAGES_NO_DEPS], check=True)
    stamp.write_text(wanted)
    return time.monotonic() - start


def shim_env(work: Path) -> dict[str, str]:
    """Environment for the venv's python: the torchaudio stub (written under `work`) on PYTHONPATH."""
    (work / "shim" / "torchaudio").mkdir(parents=True, exist_ok=True)
    (work / "shim" / "torchaudio" / "__init__.py").write_text(TORCHAUDIO_STUB)
    threads = os.environ.get("OMP_NUM_THREADS", "2")
    return {**os.environ, "PYTHONPATH": str(work / "shim"), "OMP_NUM_THREADS": threads}


def run_logged(command: list[str], env: dict[str, str], log: Path) -> None:
    """Run `command` with its output appended to `log`; on failure raise with the log's last lines."""
    with log.open("a") as out:
        result = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}); end of {log}:\n{tail}")


def make_rave_model(venv: Path, env: dict[str, str], name: str, configs: tuple[str, ...], out_dir: Path, work: Path) -> Path:
    """Untrained run from RAVE's configs, then RAVE's own `rave export --streaming`."""
    run_dir = work / name
    log = work / f"{name}.log"
    python = str(venv / "bin" / "python")
    run_logged([python, __file__, "--inside", "checkpoint", str(run_dir), *configs], env, log)
    run_logged([str(venv / "bin" / "rave"), "export", "--run", str(run_dir), "--streaming",
                "--output", str(out_dir), "--name", name], env, log)
    shutil.rmtree(run_dir)
    return out_dir / f"{name}_streaming.ts"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--inside"]:
        return inside_venv(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/rave-venv"))
    parser.add_argument("--only", default="", help="comma-separated model names (default: all)")
    args = parser.parse_args(argv)

    known = (*RAVE_CONFIGS, "nn_tilde")
    only = [name for name in args.only.split(",") if name] or list(known)
    unknown = sorted(set(only) - set(known))
    if unknown:
        parser.error(f"unknown model names {unknown}; choose from {list(known)}")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    venv_seconds = ensure_venv(args.venv)
    print(f"venv {args.venv}: {'ready' if venv_seconds == 0 else f'created in {venv_seconds:.1f} s'}", flush=True)

    with tempfile.TemporaryDirectory(prefix="ravelive-reference-") as tmp:
        work = Path(tmp)
        env = shim_env(work)
        manifest: dict[str, dict] = {}
        for name in only:
            start = time.monotonic()
            if name == "nn_tilde":
                log = work / "nn_tilde.log"
                command = [str(args.venv / "bin" / "python"), __file__, "--inside", "nn-tilde", str(args.out_dir)]
                run_logged(command, env, log)
                made = {model: args.out_dir / f"{model}.ts" for model in NN_TILDE_MODELS}
                source = "nn_tilde 1.6.0 nn_tilde.Module.export_to_ts"
            else:
                path = make_rave_model(args.venv, env, name, RAVE_CONFIGS[name], args.out_dir, work)
                made = {name: path}
                source = f"acids-rave 2.3.1 `rave export --streaming`, untrained, configs {list(RAVE_CONFIGS[name])}"
            seconds = time.monotonic() - start
            for model, path in made.items():
                size = path.stat().st_size
                manifest[model] = {"file": path.name, "source": source, "bytes": size}
                print(f"{path.name:32s} {size / 1e6:8.1f} MB  {seconds:6.1f} s  {source}", flush=True)
        manifest_path = args.out_dir / "manifest.json"
        previous = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        manifest_path.write_text(json.dumps({**previous, **manifest}, indent=2) + "\n")
    total = sum(path.stat().st_size for path in args.out_dir.glob("*.ts"))
    print(f"{args.out_dir}: {total / 1e6:.1f} MB of models")
    return 0


# ---- inner part: runs inside the reference venv -----------------------------------------------


def inside_venv(command: list[str]) -> int:
    """Steps that import RAVE or nn_tilde (run with the venv's python and the torchaudio stub)."""
    step, *rest = command
    if step == "checkpoint":
        write_untrained_run(Path(rest[0]), rest[1:])
    elif step == "nn-tilde":
        write_nn_tilde_models(Path(rest[0]))
    else:
        raise SystemExit(f"unknown inside step {step!r}")
    return 0


def write_untrained_run(run_dir: Path, configs: list[str]) -> None:
    """What `rave train` leaves before its first step: RUN/config.gin and a checkpoint."""
    import gin
    import numpy as np
    import rave
    import torch

    gin.parse_config_files_and_bindings([f"{config}.gin" for config in configs], [])
    torch.manual_seed(0)
    model = rave.RAVE(n_channels=1)
    # Explained variance reaches 95 % only at the last component, so export keeps every dimension.
    fidelity = np.append(np.linspace(0.0, 0.9, model.latent_size - 1), 1.0)
    model.fidelity.copy_(torch.from_numpy(fidelity).float())
    training_only = ("discriminator.", "audio_distance.", "multiband_audio_distance.")
    state = {key: value for key, value in model.state_dict().items() if not key.startswith(training_only)}
    checkpoints = run_dir / "version_0" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (run_dir / "config.gin").write_text(gin.operative_config_str())
    torch.save({"state_dict": state, "global_step": 0}, checkpoints / "last.ckpt")


def write_nn_tilde_models(out_dir: Path) -> None:
    """Three models declared with nn_tilde's API and saved by nn_tilde's own export_to_ts.

    They exercise what nn~'s demos exercise: several methods with 1 or 2
    inputs, a control-rate output, methods at ratio 512, attributes of every
    scalar type and a mixed list, a setter that refuses (returns -1),
    nn_tilde-generated getters/setters, a buffer attribute with length bounds,
    and a declared sample rate.
    """
    import nn_tilde
    import torch

    class Effects(nn_tilde.Module):
        """Hand-written getters/setters; a refusing setter; 2-in/2-out, control-rate and ratio-512 methods."""

        def __init__(self):
            super().__init__()
            self.register_attribute("drive", 1.0)
            self.register_attribute("shape", "tanh")
            self.register_attribute("flip", False)
            self.register_method("thru", 1, 1, 1, 1)
            self.register_method("saturate", 1, 1, 1, 1)
            self.register_method("mix", 2, 1, 1, 1)
            self.register_method("stereo_width", 2, 1, 2, 1)
            self.register_method("envelope", 1, 1, 1, 1024)
            self.register_method("hold", 1, 512, 1, 512)
            self.finish()

        @torch.jit.export
        def thru(self, x: torch.Tensor) -> torch.Tensor:
            return -x if self.flip[0] else x

        @torch.jit.export
        def saturate(self, x: torch.Tensor) -> torch.Tensor:
            if self.shape[0] == "clip":
                return torch.clamp(x * self.drive[0], -1.0, 1.0)
            return torch.tanh(x * self.drive[0])

        @torch.jit.export
        def mix(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(-2, keepdim=True)

        @torch.jit.export
        def stereo_width(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([x[:, 0] + x[:, 1], x[:, 0] - x[:, 1]], 1) * 0.5

        @torch.jit.export
        def envelope(self, x: torch.Tensor) -> torch.Tensor:
            frames = x.reshape(x.shape[0], x.shape[1], -1, 1024)
            return frames.pow(2).mean(-1).sqrt()

        @torch.jit.export
        def hold(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.drive[0]

        @torch.jit.export
        def get_drive(self) -> float:
            return self.drive[0]

        @torch.jit.export
        def set_drive(self, drive: float) -> int:
            if drive < 0.0:
                return -1
            self.drive = (drive,)
            return 0

        @torch.jit.export
        def get_shape(self) -> str:
            return self.shape[0]

        @torch.jit.export
        def set_shape(self, shape: str) -> int:
            if shape != "tanh" and shape != "clip":
                return -1
            self.shape = (shape,)
            return 0

    class Attributes(nn_tilde.Module):
        """Getters and setters generated by nn_tilde for int, float, str, bool and a mixed list."""

        def __init__(self):
            super().__init__(sr=48000)
            self.register_attribute("count", 3)
            self.register_attribute("level", 0.5)
            self.register_attribute("label", "apple")
            self.register_attribute("active", True)
            self.register_attribute("mixed", (2, "pear", 0.25, False))
            self.register_method("forward", 1, 1, 2, 1)
            self.finish()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(x.shape[0], 2, x.shape[-1])
            out[:, 0] = float(self.count[0])
            out[:, 1] = self.level[0] * x[:, 0]
            return out

    class Buffers(nn_tilde.Module):
        """A buffer attribute (64..4096 samples) read by the methods."""

        def __init__(self):
            super().__init__(sr=44100)
            self.register_attribute("table", nn_tilde.Buffer(None, 64, 4096))
            self.register_method("loudness", 1, 1, 1, 1)
            self.register_method("table_size", 1, 1, 2, 1)
            self.finish()

        @torch.jit.export
        def loudness(self, x: torch.Tensor) -> torch.Tensor:
            table = self.table[0]
            if table.has_value:
                return torch.full_like(x, table.value.pow(2).mean().sqrt().item())
            return torch.zeros_like(x)

        @torch.jit.export
        def table_size(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(x.shape[0], 2, x.shape[-1])
            table = self.table[0]
            if table.has_value:
                out[:, 0] = float(table.value.shape[-1])
                out[:, 1] = float(table.sr)
            return out

    for name, cls in zip(NN_TILDE_MODELS, (Effects, Attributes, Buffers)):
        cls().export_to_ts(str(out_dir / f"{name}.ts"))


if __name__ == "__main__":
    sys.exit(main())
