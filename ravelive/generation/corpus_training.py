"""The training loop every latent-corpus model shares: `train-diffusion` and `train-prior` differ only in the loss.

    train_on_corpus("latents/", "runs/piano-prior", PRIOR_RUN, ["tiny"], on_step=print)

The conventions of `ravelive train` (ravelive/training/), with its pieces:
the run folder (`checkpoint.pt` replaced atomically, `config.toml`,
TensorBoard `logs/`), `--set KEY=VALUE` parsed the same way (`ConfigTable`),
`--resume` continuing bit for bit (every rank's random states are saved, the
batch order is `EpochBatches`', a pure function of the step) and refusing a
`--set` that disagrees with the checkpoint. torchrun works as for `train`:
each process joins the group (`start_processes`), the network is wrapped in
DistributedDataParallel, each rank reads its share, rank 0 writes.

A `CorpusObjective` names what differs: the checkpoint kind, the config
table, the network built from the latent size and the config, and the loss
of a batch of normalised sequences [batch, dims, length]. The checkpoint also
keeps what playing needs from the corpus: the model it was encoded with,
its statistics (to denormalise) and the sequence length.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ravelive.errors import ConfigError
from ravelive.generation.latents import LatentCorpus, ModelIdentity
from ravelive.generation.table_config import ConfigTable
from ravelive.training.checkpoint import (
    CheckpointKind,
    checkpoint_path,
    load_checkpoint,
    refuse_finished,
    save_checkpoint,
    set_rng_state,
)
from ravelive.training.data import EpochBatches
from ravelive.training.loop import (
    Processes,
    StepReport,
    every_rank_rng_state,
    processes,
)
from ravelive.training.tensorboard_log import RunLog

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorpusObjective:
    """What one kind of latent-corpus run trains; its config has the training keys of DiffusionConfig."""

    kind: CheckpointKind
    table: ConfigTable
    loss_name: str  # its TensorBoard scalar and progress-bar label
    build: Callable[[int, Any], nn.Module]  # (latent dims, config) -> the network, freshly initialised
    loss: Callable[[nn.Module, torch.Tensor], torch.Tensor]  # (network, normalised batch) -> scalar loss
    check: Callable[[Any, LatentCorpus], None] = lambda config, corpus: None  # ConfigError for a corpus it cannot take


@dataclass
class CorpusResult:
    step: int  # steps done
    network: nn.Module  # unwrapped
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


def train_on_corpus(
    latents: str | Path,
    run: str | Path,
    objective: CorpusObjective,
    names: Sequence[str] = (),
    settings: Sequence[str] = (),
    *,
    resume: bool = False,
    on_step: Callable[[StepReport], None] | None = None,
) -> CorpusResult:
    """Train `objective`'s network on the corpus `latents` into the run folder `run`; `on_step` runs on rank 0."""
    corpus = LatentCorpus.open(latents)
    run = Path(run)
    checkpoint = load_checkpoint(run, objective.kind) if resume else None
    if checkpoint is None:
        if checkpoint_path(run).exists():
            raise ConfigError(f"{run} already holds a checkpoint: pass --resume to continue it, or choose another "
                              f"--out")
        config = objective.table.build(names, settings)
    else:
        config = objective.table.resumed(checkpoint["config"], names, settings)
        trained_on = corpus_of_run(checkpoint)
        if trained_on.model.sha256 != corpus.model.sha256 or trained_on.length != corpus.length:
            raise ConfigError(f"{latents} holds {corpus.length}-frame latents of {corpus.model.name}, but {run} was "
                              f"trained on {trained_on.length}-frame latents of {trained_on.model.name}: resume on "
                              f"{trained_on.folder}, or start a new run")
        refuse_finished(run, checkpoint, config.steps)
    objective.check(config, corpus)
    with processes(config.device) as procs:
        return _train(corpus, run, objective, config, checkpoint, procs, on_step)


def _train(corpus: LatentCorpus, run: Path, objective: CorpusObjective, config: Any,
           checkpoint: dict[str, Any] | None, procs: Processes,
           on_step: Callable[[StepReport], None] | None) -> CorpusResult:
    device, leader = procs.device, procs.rank == 0
    dataset = Sequences(corpus)

    # ---- build: the same initial weights on every rank ----
    torch.manual_seed(config.seed)
    model = objective.build(corpus.model.dims, config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = checkpoint["step"]
        if checkpoint["world_size"] == procs.world_size:
            set_rng_state(checkpoint["rng"][procs.rank])
        else:  # a valid continuation, but not the uninterrupted run's noise
            logger.warning("resuming with %d process(es) (checkpoint: %d): not bit for bit",
                           procs.world_size, checkpoint["world_size"])
            torch.manual_seed(config.seed + 1000 * step + procs.rank)
    else:
        torch.manual_seed(config.seed + procs.rank)  # each rank its own random draws
    network = nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None) if procs.distributed else model

    # ---- data: this rank's batches from this step on ----
    sampler = EpochBatches(len(dataset), config.batch_size, seed=config.seed, rank=procs.rank,
                           world_size=procs.world_size, start=step)
    # the loader's own generator: its iterator would otherwise draw from the global RNG, which resume restores
    batches = iter(torch.utils.data.DataLoader(dataset, batch_sampler=sampler, pin_memory=device.type == "cuda",
                                               generator=torch.Generator().manual_seed(config.seed + step)))
    log = RunLog(run, step) if leader else None
    losses: list[float] = []
    logger.info("training %s on %s (%d process(es)) from step %d to %d", run, device, procs.world_size, step,
                config.steps)
    try:
        while step < config.steps:
            # ---- forward: the objective's loss on one batch ----
            loss = objective.loss(network, next(batches).to(device, non_blocking=True))

            # ---- backward, clip, step ----
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
            optimizer.step()
            step += 1

            # ---- log ----
            value = loss.detach().item()
            losses.append(value)
            if leader:
                if step % config.log_interval == 0 or step == config.steps:
                    log.scalars({objective.loss_name: value, "lr": config.lr}, step)
                if on_step is not None:
                    on_step(StepReport(step, config.steps, {objective.loss_name: value}))

            # ---- checkpoint: every rank gives its random state, rank 0 writes ----
            if step % config.checkpoint_interval == 0 or step == config.steps:
                rngs = every_rank_rng_state(procs)
                if leader:
                    save_checkpoint(run, config, objective.kind, step=step, model=model.state_dict(),
                                    optimizer=optimizer.state_dict(), rng=rngs, world_size=procs.world_size,
                                    corpus=_corpus_summary(corpus))
                    logger.info("step %d: checkpoint written to %s", step, checkpoint_path(run))
    finally:
        if log is not None:
            log.close()
    return CorpusResult(step, model, losses)


def _corpus_summary(corpus: LatentCorpus) -> dict[str, Any]:
    return {"folder": str(corpus.folder), "model": asdict(corpus.model), "length": corpus.length,
            "mean": list(corpus.mean), "std": list(corpus.std)}
