"""Two CPU processes (gloo, as torchrun starts them) train one model: their weights stay identical."""

import os
import socket

import torch
import torch.multiprocessing as mp
from conftest import QUICK

from ravelive.training.loop import train_run

WORLD_SIZE = 2
SETTINGS = QUICK + ("steps=4", "phase_1_steps=2", "batch_size=2")  # both phases, each rewrapped in DDP


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank(rank: int, port: int, dataset: str, run: str, out: str) -> None:
    """One process as torchrun would start it: the rendezvous in the environment, then `ravelive train`'s call."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD_SIZE))
    result = train_run(dataset, run, ("tiny",), SETTINGS)
    torch.save({"model": result.model.state_dict(), "discriminator": result.discriminator.state_dict(),
                "losses": result.losses}, f"{out}/rank{rank}.pt")


def test_two_processes_keep_identical_weights(sines, tmp_path):
    mp.spawn(_rank, args=(_free_port(), str(sines), str(tmp_path / "run"), str(tmp_path)), nprocs=WORLD_SIZE)
    first, second = (torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD_SIZE))
    assert first["losses"] != second["losses"]  # each rank trained on its own share of the batches
    for part in ("model", "discriminator"):
        for name, value in first[part].items():
            assert torch.equal(value, second[part][name]), f"{part} {name}"
    assert (tmp_path / "run" / "checkpoint.pt").is_file()  # written by rank 0 alone
    assert len(list((tmp_path / "run" / "logs").glob("events.out.tfevents.*"))) == 1
