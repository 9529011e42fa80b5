"""Generation from trained autoencoders: latent corpora, latent diffusion, and what plays from them.

Modules: `latents` (`ravelive latents`: a corpus encoded into normalised
fixed-length latent sequences, the training material of a latent diffusion
model or a prior), `diffusion_config` (the denoiser's and its training's
frozen config, presets), `denoiser` (the 1-D U-Net), `sampling` (diffusers'
cosine schedule, v-objective, DPM-Solver++ and DDIM, inpainting),
`diffusion_training` (`ravelive train-diffusion`), `generate` (`ravelive
generate-latents`: windows, slerp, decoding); `prior_config`, `prior` (a GRU
over latent frames, a diagonal Gaussian per frame), `prior_training`
(`ravelive train-prior`), `prior_stream` (the trained prior sampled frame
by frame, and the run it is read from: what both exports embed),
`prior_export` (`ravelive export-prior`: the nn~ file), `prior_file` (a
prior file opened for a model, as `serve --prior` does); shared by both
trainers: `table_config` (presets, TOML, `--set`, resume rules) and
`corpus_training` (the loop, checkpoints, torchrun). The defaults live
here, apart from the modules, so the CLI can show them without importing
torch.
"""

DEFAULT_LENGTH = 2048  # latent frames per sequence: ~95 s at 44.1 kHz and ratio 2048 (RAVE-Latent-Diffusion's)
MAX_LENGTH = 16384
