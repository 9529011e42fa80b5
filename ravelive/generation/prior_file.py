"""A prior file as a host opens it: the model it plays for, checked against the model it is to feed.

`open_prior(path, model)` loads a `ravelive export-prior` file and refuses,
in one line, a prior whose frames do not fit `model`'s decode (latent size,
ratio, rate: ModelIdentity.check_decoder, the refusal a latent corpus
gives); a model of the right shape that is not the one the prior learnt
(another sha256) plays with a warning. `has_trained_prior(model)`: whether
a model file carries a trained prior in its own `prior` method (`ravelive
export --prior`, checked against its latent space at export), which serve
plays when no prior file is given. Kept apart from prior_export so that
serve opens priors without importing the training code.
"""

import logging
from pathlib import Path

from ravelive.engine.stream import PRIOR_METHOD
from ravelive.errors import ConfigError
from ravelive.generation.latents import ModelIdentity, file_sha256
from ravelive.models.nn_model import NNModel

logger = logging.getLogger(__name__)


def prior_identity(prior: NNModel) -> ModelIdentity:
    """The model a prior file plays for (its ravelive.json); ConfigError when the file is not an exported prior."""
    try:
        return ModelIdentity(**prior.metadata["prior"]["model"])
    except (TypeError, KeyError):
        raise ConfigError(f"{prior.path}: not a prior exported by `ravelive export-prior` (no prior.model in its "
                          f"ravelive.json); export one: ravelive export-prior PRIOR --out {prior.path.name}") from None


def has_trained_prior(model: NNModel) -> bool:
    """Whether `model` is a model (it decodes) whose own `prior` method is a trained prior (its ravelive.json)."""
    return isinstance(model.described("prior"), dict) and PRIOR_METHOD in model.methods and "decode" in model.methods


def open_prior(path: str | Path, model: NNModel) -> NNModel:
    """The prior file `path`, checked to decode through `model`: ConfigError when its latents are another model's."""
    prior = NNModel.load(path)
    identity = prior_identity(prior)
    if PRIOR_METHOD not in prior.methods:
        raise ConfigError(f"{prior.path}: no method '{PRIOR_METHOD}' (methods here: {', '.join(prior.methods)}); "
                          f"export it again with `ravelive export-prior`")
    identity.check_decoder(model, f"{prior.path.name} plays",
                           f"or train a prior on its latents (ravelive latents {model.path.name} ..., ravelive "
                           f"train-prior)")
    if model.path.is_file():
        if file_sha256(model.path) != identity.sha256:
            logger.warning("%s was trained on latents of %s (sha256 %s), not of %s: it decodes, but expect other "
                           "sounds than the prior learnt", prior.path.name, identity.name, identity.sha256[:12],
                           model.path.name)
    return prior
