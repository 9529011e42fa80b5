"""Two CPU processes (gloo, as torchrun starts them) train one denoiser: identical weights, one checkpoint."""

import os

import torch
import torch.multiprocessing as mp
from ports import free_port

from ravelive.generation.diffusion_training import train_diffusion

WORLD_SIZE = 2


def _rank(rank: int, port: int, latents: str, run: str, out: str) -> None:
    """One process as torchrun would start it: the rendezvous in the environment, then the command's call."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD_SIZE))
    result = train_diffusion(latents, run, ["tiny"], ["steps=4", "batch_size=2", "device=cpu"])
    torch.save({"model": result.network.state_dict(), "losses": result.losses}, f"{out}/rank{rank}.pt")


def test_two_processes_keep_identical_weights(latents_dir, tmp_path):
    run, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    mp.spawn(_rank, args=(free_port(), str(latents_dir), str(run), str(out)), nprocs=WORLD_SIZE)
    first, second = (torch.load(out / f"rank{rank}.pt") for rank in range(WORLD_SIZE))
    assert first["losses"] != second["losses"]  # each rank trained on its own share of the batches and noise
    for name, value in first["model"].items():
        assert torch.equal(value, second["model"][name]), name
    assert (run / "checkpoint.pt").is_file()  # written by rank 0 alone
    assert len(list((run / "logs").glob("events.out.tfevents.*"))) == 1
