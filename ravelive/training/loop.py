"""The training loop of RAVE-family models, readable top to bottom.

    train(dataset, "runs/piano", build_config(["tiny"]), on_step=print)

Two phases, as RAVE v2:

1. steps < phase_1_steps: an autoencoder trained on spectral distance
   (full band + PQMF bands) plus beta(step) * KL, beta warming up linearly;
2. from phase_1_steps: the encoder is frozen (its latent space is settled;
   what remains is to make the decoder's sound sharp), and a discriminator
   joins. As in RAVE, a step trains one of the two: the discriminator
   (hinge loss on real vs the reconstruction) in one step out of
   `discriminator_every`, starting with phase 2's first, and the decoder
   against it (spectral + hinge + feature matching) in the others. With
   `discriminator_every = 1` every step trains both, the discriminator first.

Devices: one process picks cuda when there is one, else the CPU, with the
same command. Under torchrun (WORLD_SIZE > 1 in the environment) every
process joins a process group (nccl on GPUs, gloo on CPUs), model and
discriminator are wrapped in DistributedDataParallel, each rank reads its own
share of every epoch, and only rank 0 writes logs and checkpoints.

A resumed run continues bit for bit: the checkpoint holds every rank's
random states, and the data order is a function of the step (data.EpochBatches).
"""

import contextlib
import logging
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ravelive.errors import ConfigError
from ravelive.models.rave.model import RaveModel
from ravelive.training.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    refuse_finished,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ravelive.training.augment import build_augmentations
from ravelive.training.config import RunConfig
from ravelive.training.data import EpochBatches
from ravelive.training.descriptor_adversary import DescriptorAdversary, LatentDescriptorDiscriminator, corpus_range
from ravelive.training.discriminators import CombinedDiscriminator, split_scores
from ravelive.training.losses import (
    SpectralDistance,
    generator_adversarial_losses,
    hinge_discriminator_loss,
    kl_beta,
)
from ravelive.training.tensorboard_log import RunLog

logger = logging.getLogger(__name__)


@dataclass
class StepReport:
    """What the progress bar shows after each step (rank 0)."""

    step: int  # steps done
    steps: int  # steps in all
    losses: dict[str, float]


@dataclass
class TrainResult:
    step: int  # steps done
    model: RaveModel  # the trained offline model (unwrapped)
    discriminator: nn.Module
    losses: list[dict[str, float]] = field(default_factory=list)  # this process's losses, one dict per step run


class TrainingPass(nn.Module):
    """`RaveModel.autoencode` as forward(): DistributedDataParallel syncs the gradients of what forward ran."""

    def __init__(self, model: RaveModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        out = self.model.autoencode(x)
        return out.audio, out.bands, out.input_bands, out.regularization, out.latent, out.descriptors


@dataclass(frozen=True)
class Processes:
    """Where this process runs: its rank among `world_size` and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


@contextlib.contextmanager
def processes(device: str) -> Iterator[Processes]:
    """This process's place in the run, for the `with` block; torchrun's group is left at its end."""
    procs = _start_processes(device)
    try:
        yield procs
    finally:
        if procs.distributed:
            torch.distributed.destroy_process_group()


def _start_processes(device: str) -> Processes:
    """Join torchrun's process group when WORLD_SIZE > 1; pick cuda when asked for "auto" and one exists."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    try:
        chosen = torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f"device {device!r}: {error}; use auto, cpu or cuda") from error
    if chosen.type == "cuda":
        if chosen.index is None:  # "cuda": under torchrun, each process its own GPU
            chosen = torch.device("cuda", local_rank)
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: torch sees no CUDA device here; use --set device=cpu")
        torch.cuda.set_device(chosen)
    if world_size > 1:
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, rank=rank, world_size=world_size, device_id=chosen
                                             if chosen.type == "cuda" else None)
    return Processes(rank, world_size, chosen)


def every_rank_rng_state(procs: Processes) -> list[dict]:
    """Every rank's random states, in rank order (a collective: every rank calls it), for a checkpoint."""
    if not procs.distributed:
        return [rng_state()]
    states = [None] * procs.world_size
    torch.distributed.all_gather_object(states, rng_state())
    return states


def train(
    dataset: torch.utils.data.Dataset,
    run: str | Path,
    config: RunConfig,
    *,
    resume: bool = False,
    on_step: Callable[[StepReport], None] | None = None,
    dataset_path: str | Path | None = None,
) -> TrainResult:
    """Train on `dataset` ([1, example_length] float32 examples) into the run folder `run`.

    `resume`: continue from run's checkpoint (`config` must be the one `config.resumed_config`
    returned). `on_step` is called on rank 0 after every step (the CLI's progress bar).
    `dataset_path`, where `dataset` was read from, is saved in the checkpoint: export fits the
    latent PCA on it.
    """
    run = Path(run)
    model_config, tc = config.model, config.train
    if tc.example_length % model_config.ratio:
        raise ConfigError(
            f"example_length {tc.example_length} is not a multiple of the model's ratio {model_config.ratio}; "
            f"use e.g. --set example_length={tc.example_length // model_config.ratio * model_config.ratio or model_config.ratio}"
        )
    if not resume and checkpoint_path(run).exists():
        raise ConfigError(f"{run} already holds a checkpoint: pass --resume to continue it, or choose another --out")
    checkpoint = load_checkpoint(run) if resume else None
    if checkpoint is not None:
        refuse_finished(run, checkpoint, tc.steps)
    with processes(tc.device) as procs:
        return _train(dataset, run, config, checkpoint, procs, on_step, dataset_path)


def _train(dataset, run, config, checkpoint, procs, on_step, dataset_path) -> TrainResult:
    model_config, tc = config.model, config.train
    device, leader = procs.device, procs.rank == 0

    # ---- build: the same initial weights on every rank (DDP also broadcasts rank 0's) ----
    torch.manual_seed(tc.seed)
    model = RaveModel(model_config).to(device).train()
    discriminator = CombinedDiscriminator(
        tc.periods, tc.discriminator_scales, tc.discriminator_capacity, tc.discriminator_layers
    ).to(device).train()
    adam = {"lr": tc.lr, "betas": tc.adam_betas}
    model_optimizer = torch.optim.Adam(model.parameters(), **adam)
    discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), **adam)
    adversary = _descriptor_adversary(model, dataset, checkpoint, adam)  # None unless the model is conditioned
    distance = SpectralDistance(tc.stft_scales).to(device)

    step = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        discriminator.load_state_dict(checkpoint["discriminator"])
        model_optimizer.load_state_dict(checkpoint["optimizers"]["model"])
        discriminator_optimizer.load_state_dict(checkpoint["optimizers"]["discriminator"])
        step = checkpoint["step"]
        if checkpoint["world_size"] == procs.world_size and checkpoint["dataset_length"] == len(dataset):
            set_rng_state(checkpoint["rng"][procs.rank])
        else:  # still a valid continuation, but not the uninterrupted run's batches and noise
            logger.warning("resuming with %d process(es) on %d examples (checkpoint: %d on %d): not bit for bit",
                           procs.world_size, len(dataset), checkpoint["world_size"], checkpoint["dataset_length"])
            _seed_everything(tc.seed + 1000 * step + procs.rank)
    else:
        _seed_everything(tc.seed + procs.rank)  # each rank its own crops and noise

    # ---- data: this rank's batches from this step on; the loader's own generator keeps the global RNG ----
    sampler = EpochBatches(len(dataset), tc.batch_size, seed=tc.seed, rank=procs.rank,
                           world_size=procs.world_size, start=step)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=tc.workers, pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(tc.seed + step),
    )
    batches = iter(loader)
    # torch's global RNG draws the augmentations' chances (no seed of their own): checkpoints save it, so a
    # resumed run augments its batches as the uninterrupted one would
    augment = build_augmentations(tc.augment, model_config.sample_rate)

    def wrap(module: nn.Module) -> nn.Module:
        if not procs.distributed:
            return module
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    autoencoder = wrap(TrainingPass(model))
    judge = wrap(discriminator)
    if adversary is not None:
        adversary.judge = wrap(adversary.discriminator)
    encoder_frozen = False
    log = RunLog(run, step) if leader else None
    losses_seen: list[dict[str, float]] = []
    logger.info("training %s on %s (%d process(es)) from step %d to %d", run, device, procs.world_size, step, tc.steps)

    try:
        while step < tc.steps:
            # ---- schedule: the KL weight warms up; phase 2 freezes the encoder and wakes the discriminator ----
            beta = kl_beta(step, tc.beta, tc.kl_warmup_steps)
            adversarial = step >= tc.phase_1_steps
            discriminator_turn = adversarial and (step - tc.phase_1_steps) % tc.discriminator_every == 0
            decoder_turn = not discriminator_turn or tc.discriminator_every == 1
            if adversarial and not encoder_frozen:
                model.encoder.requires_grad_(False)  # Adam skips parameters without gradients
                autoencoder = wrap(TrainingPass(model))  # DDP syncs only what requires grad when wrapped
                encoder_frozen = True

            x = augment(next(batches).to(device, non_blocking=True))

            # ---- forward: reconstruction losses (no graph when only the discriminator learns) ----
            with torch.set_grad_enabled(decoder_turn):
                audio, bands, input_bands, regularization, latent, descriptors = autoencoder(x)
                spectral = distance(x, audio)
                multiband = distance(input_bands, bands)
            loss = spectral + multiband
            values = {"spectral": spectral, "multiband": multiband, "regularization": regularization}
            if not adversarial:
                loss = loss + beta * regularization  # frozen in phase 2: the encoder would not move anyway
            if adversary is not None and not adversarial:  # descriptor_adversary.py: keep them out of the latent
                latent_discriminator, confusion = adversary.step(latent, descriptors)
                loss = loss + tc.descriptor_confusion_weight * confusion
                values.update(descriptor_discriminator=latent_discriminator, descriptor_confusion=confusion)

            if discriminator_turn:
                # ---- discriminator step: real vs the detached reconstruction, in one pass ----
                real, fake = split_scores(judge(torch.cat([x, audio.detach()])), len(x))
                discriminator_loss = hinge_discriminator_loss([s for s, _ in real], [s for s, _ in fake])
                discriminator_optimizer.zero_grad(set_to_none=True)
                discriminator_loss.backward()
                _clip(discriminator, tc.clip_grad_norm)
                discriminator_optimizer.step()
                values.update(discriminator=discriminator_loss)

            if decoder_turn:
                if adversarial:
                    # ---- the decoder against the discriminator: the unwrapped one (it gets no gradients
                    # here, so DDP has none to sync) ----
                    adversarial_loss, matching = generator_adversarial_losses(discriminator, x, audio)
                    loss = loss + tc.adversarial_weight * adversarial_loss + tc.feature_matching_weight * matching
                    values.update(adversarial=adversarial_loss, feature_matching=matching)
                # ---- backward, clip, step ----
                model_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                _clip(model, tc.clip_grad_norm)
                model_optimizer.step()
                values.update(total=loss)  # what the model minimised; a discriminator turn has none
            step += 1

            # ---- log ----
            values = {name: value.detach().item() for name, value in values.items()}
            losses_seen.append(values)
            if leader:
                if step % tc.log_interval == 0 or step == tc.steps:
                    log.scalars(values | {"beta": beta, "lr": tc.lr, "phase": 2.0 if adversarial else 1.0}, step)
                if step % tc.audio_interval == 0 or step == tc.steps:
                    log.example(x[0, 0], audio[0, 0], model_config.sample_rate, step)
                if on_step is not None:
                    on_step(StepReport(step, tc.steps, values))

            # ---- checkpoint: every rank gives its random state, rank 0 writes ----
            if step % tc.checkpoint_interval == 0 or step == tc.steps:
                rngs = every_rank_rng_state(procs)
                if leader:
                    save_checkpoint(
                        run, config, step=step, model=model.state_dict(), discriminator=discriminator.state_dict(),
                        optimizers={"model": model_optimizer.state_dict(),
                                    "discriminator": discriminator_optimizer.state_dict()},
                        rng=rngs, world_size=procs.world_size, dataset_length=len(dataset),
                        dataset=str(Path(dataset_path).resolve()) if dataset_path is not None else None,
                        **({"descriptor_adversary": adversary.state_dict()} if adversary is not None else {}),
                    )
                    logger.info("step %d: checkpoint written to %s", step, checkpoint_path(run))
    finally:
        if log is not None:
            log.close()
    return TrainResult(step, model, discriminator, losses_seen)


def _descriptor_adversary(model, dataset, checkpoint, adam) -> DescriptorAdversary | None:
    """A conditioned model's latent discriminator (resumed from `checkpoint`); a new run measures the corpus range.

    Built before the random states are set or seeded, as the other networks. The range is a model buffer: a
    resume has it from the checkpoint's model, and DDP broadcasts rank 0's.
    """
    if not model.conditioning:
        return None
    conditioning = model.conditioning[0]
    if checkpoint is None:
        conditioning.set_range(*corpus_range(dataset, conditioning))
    latent = LatentDescriptorDiscriminator(model.latent_dims, model.descriptor_count).to(conditioning.range.device)
    adversary = DescriptorAdversary(latent, **adam)
    if checkpoint is not None:
        adversary.load_state_dict(checkpoint["descriptor_adversary"])
    return adversary


def _clip(module: nn.Module, max_norm: float) -> None:
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.grad is not None], max_norm)


def _seed_everything(seed: int) -> None:
    """torch (CPU and CUDA), numpy and python: user datasets may draw from any of them."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def train_run(
    dataset: str | Path,
    run: str | Path,
    names: tuple[str, ...] = (),
    settings: tuple[str, ...] = (),
    *,
    resume: bool = False,
    on_step: Callable[[StepReport], None] | None = None,
) -> TrainResult:
    """`ravelive train`: configs from --config / --set (checked against the checkpoint on resume), then train."""
    from ravelive.training.config import build_config, resumed_config
    from ravelive.training.data import open_dataset

    if resume:
        config = resumed_config(load_checkpoint(run)["config"], names, settings)
    else:
        config = build_config(names, settings)
    examples = open_dataset(dataset, config.train.example_length, config.model.sample_rate)
    return train(examples, run, config, resume=resume, on_step=on_step, dataset_path=dataset)
