"""Two CPU processes (gloo, as torchrun starts them) train one model: identical weights, and an exact resume."""

import os

import pytest
import torch
import torch.multiprocessing as mp
from training_fixtures import QUICK
from ports import free_port

from ravelive.training.loop import train_run

WORLD_SIZE = 2
STEPS = 4
SETTINGS = QUICK + ("phase_1_steps=2", "batch_size=2")  # both phases, each wrapped in DDP


def _rank(rank: int, port: int, dataset: str, run: str, out: str, settings: tuple, resume: bool) -> None:
    """One process as torchrun would start it: the rendezvous in the environment, then `ravelive train`'s call."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD_SIZE))
    result = train_run(dataset, run, () if resume else ("tiny",), settings, resume=resume)
    torch.save({"model": result.model.state_dict(), "discriminator": result.discriminator.state_dict(),
                "losses": result.losses}, f"{out}/rank{rank}.pt")


def _train(dataset, run, out, settings, resume=False) -> list[dict]:
    out.mkdir(exist_ok=True)
    mp.spawn(_rank, args=(free_port(), str(dataset), str(run), str(out), settings, resume), nprocs=WORLD_SIZE)
    return [torch.load(out / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]


@pytest.fixture(scope="module")
def straight(sines, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    return folder / "run", _train(sines, folder / "run", folder / "out", SETTINGS + (f"steps={STEPS}",))


def test_two_processes_keep_identical_weights(straight):
    run, (first, second) = straight
    assert first["losses"] != second["losses"]  # each rank trained on its own share of the batches
    for part in ("model", "discriminator"):
        for name, value in first[part].items():
            assert torch.equal(value, second[part][name]), f"{part} {name}"
    assert (run / "checkpoint.pt").is_file()  # written by rank 0 alone
    assert len(list((run / "logs").glob("events.out.tfevents.*"))) == 1


def test_a_resumed_two_process_run_equals_the_straight_one(sines, straight, tmp_path):
    _, expected = straight
    _train(sines, tmp_path / "run", tmp_path / "first", SETTINGS + (f"steps={STEPS // 2}",))
    resumed = _train(sines, tmp_path / "run", tmp_path / "second", (f"steps={STEPS}",), resume=True)
    for rank in range(WORLD_SIZE):  # every rank's random state came back from rank 0's checkpoint
        assert resumed[rank]["losses"] == expected[rank]["losses"][STEPS // 2 :]
    for name, value in expected[0]["model"].items():
        assert torch.equal(value, resumed[0]["model"][name]), name
