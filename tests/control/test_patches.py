"""Every OSC address the Pd and Max patches use exists in the server's namespace (bundled default model)."""

import json
import re
from pathlib import Path

import pytest

from osc_helpers import Daemon
from ravelive.control import namespace
from ravelive.control.model_params import ModelControls
from ravelive.models.default import DEFAULT_MODEL_PATH

PATCHES = Path(__file__).resolve().parents[2] / "patches"
PD_LOCAL = {"set", "send", "connect", "listen"}  # messages to oscformat, netsend and netreceive, not OSC paths
ADDRESS = re.compile(r"/ravelive(?:/[A-Za-z0-9_.]+)*")


@pytest.fixture(scope="module")
def known() -> set[str]:
    daemon = Daemon(DEFAULT_MODEL_PATH)
    store = ModelControls.from_model(daemon.model).store()
    return namespace.addresses(namespace.endpoints(store.specs, {**daemon.status(), "osc_faults": 0}))


def pd_boxes(path: Path) -> list[tuple[str, str]]:
    """(kind, text) of every object and message box; comments are skipped."""
    boxes = []
    for record in path.read_text().split(";\n"):
        parts = record.split(" ", 4)
        if len(parts) == 5 and parts[0] == "#X" and parts[1] in ("obj", "msg"):
            boxes.append((parts[1], parts[4].replace("\\", "").strip()))
    return boxes


def pd_addresses(path: Path) -> set[str]:
    """The addresses a Pd patch sends or routes, read the way ravelive.pd builds them."""
    found = set()
    for kind, text in pd_boxes(path):
        words = text.split()
        if kind == "obj" and words[:2] == ["list", "prepend"] and len(words) > 2 and words[2] not in PD_LOCAL:
            found.add(words[2])  # list prepend method / model/load / notify
        elif kind == "obj" and words[0] == "makefilename" and not words[1].startswith("ravelive/"):
            found.add(words[1].replace("%d", "0").replace("%s", "gain"))  # latent/%d/bias, attr/%s
        elif kind == "obj" and words[0] == "route" and "connect" not in words:
            found.update(f"{word}" for word in words[1:])  # replies the help patch routes
        elif kind == "msg" and words[0] == "list":
            found.add(words[1])  # list status / ping / namespace
        elif kind == "msg" and words[0] in ("send", "query"):
            found.add(words[1])
        elif kind == "msg" and words[0] == "bias":
            found.add(f"latent/{words[1]}/bias")
        elif kind == "msg" and words[0] in ("method", "notify", "status", "ping", "namespace"):
            found.add(words[0])
        elif kind == "msg" and words[0] == "attr":
            found.add(f"attr/{words[1]}")
        elif kind == "msg" and words[0] == "load":
            found.add("model/load")
    return {f"{namespace.ROOT}/{name}" for name in found}


def max_addresses(path: Path) -> set[str]:
    boxes = json.loads(path.read_text())["patcher"]["boxes"]
    texts = [box["box"].get("text", "") for box in boxes if box["box"]["maxclass"] != "comment"]
    return {match for text in texts for match in ADDRESS.findall(text)}


def covered(address: str, known: set[str]) -> bool:
    return address in known or any(name.startswith(address + "/") for name in known)


@pytest.mark.parametrize("patch", ["ravelive.pd", "ravelive-help.pd"])
def test_pd_patch_addresses_exist(patch, known):
    used = pd_addresses(PATCHES / patch)
    assert used, f"no addresses found in {patch}"
    assert {address for address in used if not covered(address, known)} == set()


def test_max_patch_addresses_exist(known):
    used = max_addresses(PATCHES / "ravelive.maxpat")
    assert len(used) > 10
    assert {address for address in used if not covered(address, known)} == set()


def test_max_patch_uses_only_udpsend_and_udpreceive_for_the_network():
    boxes = json.loads((PATCHES / "ravelive.maxpat").read_text())["patcher"]["boxes"]
    objects = {box["box"]["text"].split()[0] for box in boxes if box["box"]["maxclass"] == "newobj"}
    assert objects <= {"udpsend", "udpreceive", "loadbang", "prepend", "route", "print"}
