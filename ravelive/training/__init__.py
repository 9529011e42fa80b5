"""Training: the dataset (`ravelive preprocess`) and what the training loop reads from it.

The defaults live here, apart from the modules, so that the CLI can show them without importing torch.
"""

SAMPLE_RATE = 44100  # Hz, the dataset's default rate
EXAMPLE_LENGTH = 131072  # frames per example: RAVE's n_signal (about 3 s at 44.1 kHz)
