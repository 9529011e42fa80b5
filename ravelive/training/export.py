"""`ravelive export RUN`: the last checkpoint of a run as a verified nn~ model, with its costs.

`export_checkpoint` builds the model from the checkpoint's config and
weights with the export options, saves it, reloads it and checks every
method (streaming: against the offline model after its delay); `export_run`
then reads the numbers worth reporting: each method's latency (its streaming
delay, from the file's own description) and the realtime factor of
`forward` at the smallest block (compute time / audio time on this machine,
from `ravelive bench`'s timer).

Options:

- `fidelity` (RAVE's, default 0.95): the latent PCA is fitted on the run's
  dataset (`latent_fit`; the path the checkpoint records, or `dataset`) and
  `encode` keeps the fewest principal dims that reach this share of the
  variance. When there is no dataset to fit on (a run trained from examples
  in memory, an older checkpoint, a dataset folder since deleted) the export
  keeps every dim unrotated and `ExportReport.latent_note` says why, in one
  line, with the fix (`--dataset PATH`).
- `sample_rate`: a whole multiple of the training rate, resampled inside
  the model (`RaveModel`); any other rate is refused.
- `streaming=False`: the offline network (what RAVE writes without
  `--streaming`), marked `"streaming": false`; `serve` and the block engine
  refuse it. No realtime factor is measured for it (it does not run in blocks).
- `prior`: a `ravelive train-prior` run folder, played by the model's own
  `prior` method in place of N(0, 1) noise (generation/prior_stream). Its
  corpus must have been encoded by an export of this run at this step with
  the same latent options (`latent.digest`, models/rave/model.py): anything
  else is refused in one line, before anything is written.
"""

from dataclasses import dataclass
from pathlib import Path

from ravelive.models.rave.latent_pca import LatentPCA, check_fidelity
from ravelive.models.rave.model import RaveModel, export_rave, resampling_factor
from ravelive.training import FIDELITY
from ravelive.training.checkpoint import load_checkpoint
from ravelive.training.config import RunConfig
from ravelive.training.data import open_dataset
from ravelive.training.latent_fit import fit_latent_pca

BENCH_SECONDS = 2.0  # enough blocks for a stable mean, short enough to wait for


@dataclass(frozen=True)
class MethodLatency:
    name: str
    samples: int
    milliseconds: float


@dataclass(frozen=True)
class ExportedCheckpoint:
    path: Path
    step: int  # training steps of the exported weights
    latent_dims: int  # the model's latent
    kept_dims: int  # what encode gives
    latent_note: str | None  # why no PCA was fitted, when none was
    prior_step: int | None = None  # training steps of the trained prior it plays; None: the N(0, 1) noise prior


@dataclass(frozen=True)
class ExportReport:
    export: ExportedCheckpoint
    latencies: tuple[MethodLatency, ...]
    block: int  # samples per block the realtime factor was measured at
    realtime_factor: float | None  # compute time / audio time of forward; below 1 keeps up; None: not streaming


def export_checkpoint(
    run: str | Path,
    out: str | Path,
    *,
    fidelity: float = FIDELITY,
    dataset: str | Path | None = None,
    sample_rate: int | None = None,
    streaming: bool = True,
    prior: str | Path | None = None,
) -> ExportedCheckpoint:
    """The last checkpoint of `run` as a verified model file `out`; see the module for the options."""
    check_fidelity(fidelity)
    trained_prior = None
    if prior is not None:
        from ravelive.generation.prior_stream import TrainedPrior  # generation code only for a prior

        trained_prior = TrainedPrior.load(prior)
    checkpoint = load_checkpoint(run)
    config, step = checkpoint["config"], checkpoint["step"]
    resampling_factor(config.model.sample_rate, sample_rate or config.model.sample_rate)  # refused before the fit
    model = RaveModel(config.model)
    model.load_state_dict(checkpoint["model"])
    pca, note = _fit_pca(model, config, dataset or checkpoint.get("dataset"), explicit=dataset is not None)
    if pca is not None:
        pca = pca.with_fidelity(fidelity)
    path = export_rave(config.model, out, state_dict=checkpoint["model"], pca=pca,
                       fidelity=fidelity if pca is not None else None, sample_rate=sample_rate, streaming=streaming,
                       training={"step": step, "config": config.train.to_dict()},  # how the weights came about
                       prior=trained_prior)
    kept = pca.kept if pca is not None else config.model.latent_dims
    return ExportedCheckpoint(path, step, config.model.latent_dims, kept, note,
                              trained_prior.step if trained_prior is not None else None)


def _fit_pca(
    model: RaveModel, config: RunConfig, dataset: str | Path | None, *, explicit: bool
) -> tuple[LatentPCA | None, str | None]:
    """(the fit, None), or (None, why not) when there is no dataset to fit on."""
    unrotated = f"exported all {config.model.latent_dims} latent dims unrotated"
    if dataset is None:
        return None, f"the run records no dataset to fit the latent PCA on: {unrotated}; pass --dataset PATH to fit it"
    if not explicit and not Path(dataset).exists():
        return None, f"the run's dataset {dataset} is gone: {unrotated}; pass --dataset PATH to fit the latent PCA"
    examples = open_dataset(dataset, config.train.example_length, config.model.sample_rate)
    return fit_latent_pca(model, examples), None


def export_run(
    run: str | Path,
    out: str | Path,
    *,
    bench_seconds: float = BENCH_SECONDS,
    fidelity: float = FIDELITY,
    dataset: str | Path | None = None,
    sample_rate: int | None = None,
    streaming: bool = True,
    prior: str | Path | None = None,
) -> ExportReport:
    """Export the last checkpoint of `run` to `out` (.ts), verified, and measure it."""
    from ravelive.engine.bench import benchmark
    from ravelive.models.nn_model import NNModel

    exported = export_checkpoint(run, out, fidelity=fidelity, dataset=dataset, sample_rate=sample_rate,
                                 streaming=streaming, prior=prior)
    model = NNModel.load(exported.path)
    latencies = tuple(
        MethodLatency(name, entry["delay"], 1000 * entry["delay"] / model.sample_rate)
        for name, entry in model.metadata["methods"].items()
    )
    block = model.minimum_block()
    realtime_factor = None
    if streaming:
        (result,) = benchmark(model, "forward", [block], bench_seconds)
        realtime_factor = result.realtime_factor
    return ExportReport(exported, latencies, block, realtime_factor)
