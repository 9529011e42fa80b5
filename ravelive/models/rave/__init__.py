"""RAVE-family streaming models: PQMF, encoder, latent, decoder with noise, presets, nn~ export.

Modules: `config` (RaveConfig, presets, resolve_config), `blocks` (shared
layers), `encoder`, `decoder`, `noise`, `latent`, `latent_pca` (the kept,
rotated latent of an export), `model` (RaveModel, count_parameters,
export_rave).
"""

from ravelive.models.rave.config import PRESETS, RaveConfig, resolve_config
from ravelive.models.rave.model import Reconstruction, RaveModel, count_parameters, export_rave

__all__ = ["PRESETS", "RaveConfig", "RaveModel", "Reconstruction", "count_parameters", "export_rave", "resolve_config"]
