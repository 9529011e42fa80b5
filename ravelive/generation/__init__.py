"""Generation from trained autoencoders: latent corpora (`ravelive latents`), and what plays from them.

Modules: `latents` (a corpus encoded into normalised fixed-length latent
sequences, the training material of a latent diffusion model or a prior).
The defaults live here, apart from the modules, so the CLI can show them
without importing torch.
"""

DEFAULT_LENGTH = 2048  # latent frames per sequence: ~95 s at 44.1 kHz and ratio 2048 (RAVE-Latent-Diffusion's)
MAX_LENGTH = 16384
