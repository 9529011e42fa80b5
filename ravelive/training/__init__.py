"""Training RAVE-family models: the dataset (`ravelive preprocess`), the loop (`ravelive train`), and export.

Modules: `preprocess` / `decode` / `dataset` (the memory-mapped dataset),
`augment`, `config` (TrainConfig, RunConfig, --config / --set), `data`
(open_dataset, the loop's one seam to the data; EpochBatches), `losses`,
`discriminators`, `checkpoint`, `tensorboard_log`, `loop` (train,
train_run), `latent_fit` (the latent PCA an export keeps), `export`
(export_run). The defaults live here, apart from the modules, so the CLI can
show them without importing torch.
"""

SAMPLE_RATE = 44100  # Hz, the dataset's default rate
EXAMPLE_LENGTH = 131072  # frames per example: RAVE's n_signal (about 3 s at 44.1 kHz)
FIDELITY = 0.95  # share of the latent variance an export keeps by default (RAVE's --fidelity)
