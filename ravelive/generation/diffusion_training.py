"""`ravelive train-diffusion LATENTS --out RUN`: the denoiser trained on a latent corpus, v-objective.

    train_diffusion("latents/", "runs/piano-ld", ["tiny"], on_step=print)

The conventions of `ravelive train` (ravelive/training/), with its pieces:
the run folder (`checkpoint.pt` replaced atomically, `config.toml`,
TensorBoard `logs/`), `--set KEY=VALUE` parsed the same way, `--resume`
continuing bit for bit (every rank's random states are saved, the batch
order is `EpochBatches`', a pure function of the step) and refusing a `--set`
that disagrees with the checkpoint. torchrun works as for `train`: each
process joins the group (`start_processes`), the denoiser is wrapped in
DistributedDataParallel, each rank reads its share, rank 0 writes.

Each step: latents x0 from the corpus, a time step t drawn uniformly from
the schedule's 1000 and Gaussian noise per sequence, the noisy latents at t,
and the mean squared error between the denoiser's output and the velocity
(sampling.TrainingSchedule). The checkpoint also keeps what generation
needs from the corpus: the model it was encoded with, its statistics (to
denormalise) and the sequence length (the generation window).
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ravelive.errors import ConfigError
from ravelive.generation.denoiser import Denoiser
from ravelive.generation.diffusion_config import DiffusionConfig, build_diffusion_config, resumed_diffusion_config
from ravelive.generation.latents import LatentCorpus, ModelIdentity
from ravelive.generation.sampling import TRAIN_TIMESTEPS, TrainingSchedule
from ravelive.training.checkpoint import (
    CheckpointKind,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from ravelive.training.data import EpochBatches
from ravelive.training.loop import Processes, StepReport, every_rank_rng_state, start_processes
from ravelive.training.tensorboard_log import RunLog

logger = logging.getLogger(__name__)

DIFFUSION = CheckpointKind("ravelive-diffusion-checkpoint", DiffusionConfig, "ravelive train-diffusion LATENTS")


@dataclass
class DiffusionResult:
    step: int  # steps done
    denoiser: Denoiser  # unwrapped
    losses: list[float] = field(default_factory=list)  # this process's loss at each step it ran


class Sequences(torch.utils.data.Dataset):
    """The corpus's normalised sequences as float32 tensors [dims, length], read from the memory map."""

    def __init__(self, corpus: LatentCorpus) -> None:
        self.sequences = corpus.sequences()

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(np.array(self.sequences[index]))


def corpus_of_run(checkpoint: dict[str, Any]) -> LatentCorpus:
    """The corpus a run was trained on, as its checkpoint remembers it (model, statistics, length; no files)."""
    saved = checkpoint["corpus"]
    return LatentCorpus(Path(saved["folder"]), ModelIdentity(**saved["model"]), (), int(saved["length"]),
                        tuple(saved["mean"]), tuple(saved["std"]), ())


def train_diffusion(
    latents: str | Path,
    run: str | Path,
    names: Sequence[str] = (),
    settings: Sequence[str] = (),
    *,
    resume: bool = False,
    on_step: Callable[[StepReport], None] | None = None,
) -> DiffusionResult:
    """Train a denoiser on the corpus `latents` into the run folder `run`; `on_step` runs on rank 0 after each step."""
    corpus = LatentCorpus.open(latents)
    run = Path(run)
    checkpoint = load_checkpoint(run, DIFFUSION) if resume else None
    if checkpoint is None:
        if checkpoint_path(run).exists():
            raise ConfigError(f"{run} already holds a checkpoint: pass --resume to continue it, or choose another "
                              f"--out")
        config = build_diffusion_config(names, settings)
    else:
        config = resumed_diffusion_config(checkpoint["config"], names, settings)
        trained_on = corpus_of_run(checkpoint)
        if trained_on.model.sha256 != corpus.model.sha256 or trained_on.length != corpus.length:
            raise ConfigError(f"{latents} holds {corpus.length}-frame latents of {corpus.model.name}, but {run} was "
                              f"trained on {trained_on.length}-frame latents of {trained_on.model.name}: resume on "
                              f"{trained_on.folder}, or start a new run")
        if config.steps <= checkpoint["step"]:
            raise ConfigError(f"{run} is at step {checkpoint['step']} already, steps = {config.steps}: resume with "
                              f"--set steps=... above {checkpoint['step']} to train on")
    config.check_length(corpus.length)
    procs = start_processes(config.device)
    try:
        return _train(corpus, run, config, checkpoint, procs, on_step)
    finally:
        if procs.distributed:
            torch.distributed.destroy_process_group()


def _train(corpus: LatentCorpus, run: Path, config: DiffusionConfig, checkpoint: dict[str, Any] | None,
           procs: Processes, on_step: Callable[[StepReport], None] | None) -> DiffusionResult:
    device, leader = procs.device, procs.rank == 0
    dataset = Sequences(corpus)

    # ---- build: the same initial weights on every rank ----
    torch.manual_seed(config.seed)
    denoiser = Denoiser(corpus.model.dims, config).to(device).train()
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step = 0
    if checkpoint is not None:
        denoiser.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = checkpoint["step"]
        if checkpoint["world_size"] == procs.world_size:
            set_rng_state(checkpoint["rng"][procs.rank])
        else:  # a valid continuation, but not the uninterrupted run's noise
            logger.warning("resuming with %d process(es) (checkpoint: %d): not bit for bit",
                           procs.world_size, checkpoint["world_size"])
            torch.manual_seed(config.seed + 1000 * step + procs.rank)
    else:
        torch.manual_seed(config.seed + procs.rank)  # each rank its own noise and time steps
    network = nn.parallel.DistributedDataParallel(
        denoiser, device_ids=[device.index] if device.type == "cuda" else None) if procs.distributed else denoiser

    # ---- data: this rank's batches from this step on ----
    sampler = EpochBatches(len(dataset), config.batch_size, seed=config.seed, rank=procs.rank,
                           world_size=procs.world_size, start=step)
    # the loader's own generator: its iterator would otherwise draw from the global RNG, which resume restores
    batches = iter(torch.utils.data.DataLoader(dataset, batch_sampler=sampler, pin_memory=device.type == "cuda",
                                               generator=torch.Generator().manual_seed(config.seed + step)))
    schedule = TrainingSchedule()
    log = RunLog(run, step) if leader else None
    losses: list[float] = []
    logger.info("training %s on %s (%d process(es)) from step %d to %d", run, device, procs.world_size, step,
                config.steps)
    try:
        while step < config.steps:
            # ---- forward: noise a batch at random time steps, predict its velocity ----
            x0 = next(batches).to(device, non_blocking=True)
            noise = torch.randn_like(x0)
            t = torch.randint(0, TRAIN_TIMESTEPS, (len(x0),), device=device)
            loss = F.mse_loss(network(schedule.noisy(x0, noise, t), t), schedule.training_target(x0, noise, t))

            # ---- backward, clip, step ----
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(denoiser.parameters(), config.clip_grad_norm)
            optimizer.step()
            step += 1

            # ---- log ----
            value = loss.detach().item()
            losses.append(value)
            if leader:
                if step % config.log_interval == 0 or step == config.steps:
                    log.scalars({"v_mse": value, "lr": config.lr}, step)
                if on_step is not None:
                    on_step(StepReport(step, config.steps, {"v_mse": value}))

            # ---- checkpoint: every rank gives its random state, rank 0 writes ----
            if step % config.checkpoint_interval == 0 or step == config.steps:
                rngs = every_rank_rng_state(procs)
                if leader:
                    save_checkpoint(run, config, DIFFUSION, step=step, model=denoiser.state_dict(),
                                    optimizer=optimizer.state_dict(), rng=rngs, world_size=procs.world_size,
                                    corpus=_corpus_summary(corpus))
                    logger.info("step %d: checkpoint written to %s", step, checkpoint_path(run))
    finally:
        if log is not None:
            log.close()
    return DiffusionResult(step, denoiser, losses)


def _corpus_summary(corpus: LatentCorpus) -> dict[str, Any]:
    return {"folder": str(corpus.folder), "model": asdict(corpus.model), "length": corpus.length,
            "mean": list(corpus.mean), "std": list(corpus.std)}
