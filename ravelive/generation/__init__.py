"""Generation from trained autoencoders: latent corpora, latent diffusion, and what plays from them.

Modules: `latents` (`ravelive latents`: a corpus encoded into normalised
fixed-length latent sequences, the training material of a latent diffusion
model or a prior), `diffusion_config` (the denoiser's and its training's
frozen config, presets), `denoiser` (the 1-D U-Net), `sampling` (diffusers'
cosine schedule, v-objective, DPM-Solver++ and DDIM, inpainting),
`diffusion_training` (`ravelive train-diffusion`), `generate` (`ravelive
generate-latents`: windows, slerp, decoding). The defaults live here, apart
from the modules, so the CLI can show them without importing torch.
"""

DEFAULT_LENGTH = 2048  # latent frames per sequence: ~95 s at 44.1 kHz and ratio 2048 (RAVE-Latent-Diffusion's)
MAX_LENGTH = 16384
