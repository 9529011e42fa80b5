"""Checkpoints of a training run: everything a resume needs to continue bit for bit, and nothing live.

A run folder holds

- `checkpoint.pt`: the last checkpoint (replaced atomically: a crash while
  saving leaves the previous one), a dict of
  format / format_version, ravelive_version, step, config (RunConfig as
  plain data), model and discriminator state_dicts, both optimisers' states,
  the random states of every rank (torch CPU and CUDA, numpy, python), the
  world size and dataset length the sampler position was computed with, and
  `dataset`, the absolute path the run last trained on (None when the loop
  was given examples rather than a folder; absent from older checkpoints),
  which export fits its latent PCA on;
- `config.toml`: the same configs, readable, reusable with `--config`;
- `logs/`: TensorBoard event files.

The model's state_dict is the offline model's; `export_rave` loads it into the
streaming one (stream state lives outside state_dict, by design).

Other loops (`ravelive train-diffusion`) write the same layout with their
own `CheckpointKind`: a format name, their config class and the command that
makes a first checkpoint, so one kind's file is never read as another's.
"""

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ravelive import __version__
from ravelive.errors import ConfigError
from ravelive.training.config import RunConfig, to_toml

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.toml"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CheckpointKind:
    """What a run folder's checkpoint holds: its format name, its config class, the command that starts one."""

    format: str
    config_type: type  # with to_dict() and from_dict(); to_dict() gives the TOML tables of config.toml
    first_command: str  # named when a run has no checkpoint yet


TRAINING = CheckpointKind("ravelive-training-checkpoint", RunConfig, "ravelive train DATASET")


def checkpoint_path(run: str | Path) -> Path:
    return Path(run) / CHECKPOINT


def refuse_finished(run: str | Path, checkpoint: dict[str, Any], steps: int) -> None:
    """ConfigError when a resume of `run` to `steps` would have nothing left to train."""
    if steps <= checkpoint["step"]:
        raise ConfigError(f"{run} is at step {checkpoint['step']} already, steps = {steps}: resume with "
                          f"--set steps=... above {checkpoint['step']} to train on")


def rng_state() -> dict[str, Any]:
    """Every random state the loop draws from in this process."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": _plain_numpy_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    random.setstate(state["python"])


def save_checkpoint(run: str | Path, config: Any, kind: CheckpointKind = TRAINING, **state: Any) -> Path:
    """Write `checkpoint.pt` (config, version, format and `state`) and `config.toml` into `run`."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(run)
    partial = path.with_name(f".{CHECKPOINT}.partial")
    payload = {
        "format": kind.format, "format_version": FORMAT_VERSION, "ravelive_version": __version__,
        "config": config.to_dict(), **state,
    }
    torch.save(payload, partial)
    os.replace(partial, path)
    (run / CONFIG).write_text(to_toml(config))
    return path


def load_checkpoint(run: str | Path, kind: CheckpointKind = TRAINING) -> dict[str, Any]:
    """The last checkpoint of `run` (tensors on the CPU), with `config` as a `kind.config_type`."""
    path = checkpoint_path(run)
    if not path.is_file():
        raise ConfigError(
            f"{run}: no {CHECKPOINT} in it (not a training run, or stopped before its first checkpoint); "
            f"train first: {kind.first_command} --out {run}"
        )
    # weights_only: the payload is tensors, numbers and strings, nothing a stranger's file could execute
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.get("format") != kind.format or checkpoint.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{path}: not a {kind.format} of format version {FORMAT_VERSION} "
            f"(found {checkpoint.get('format')!r} {checkpoint.get('format_version')!r}); start a new run"
        )
    checkpoint["config"] = kind.config_type.from_dict(checkpoint["config"])
    return checkpoint


def _plain_numpy_state() -> tuple:
    """numpy's global RNG state with its key array as a tensor: loadable with weights_only."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    return name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(gauss)
