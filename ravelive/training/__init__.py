"""Training RAVE-family models, and exporting what they learnt.

Modules: `config` (TrainConfig, RunConfig, --config / --set), `data`
(open_dataset, the seam to the dataset; EpochBatches), `losses`,
`discriminators`, `checkpoint`, `tensorboard_log`, `loop` (train,
train_run), `export` (export_run). Nothing here imports torch at package
import, so the CLI can import names cheaply.
"""
