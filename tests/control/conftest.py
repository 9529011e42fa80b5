"""Fixtures for the control layer: a parameter store for a real model, a running OSC server, OSC clients."""

from pathlib import Path

import pytest

from osc_helpers import Client, Daemon
from ravelive.control.model_params import ModelControls
from ravelive.control.osc import OscConfig, OscServer
from ravelive.models.nn_model import NNModel


@pytest.fixture
def codec_model(codec_model_path):
    return NNModel.load(codec_model_path)


@pytest.fixture
def models_dir(tmp_path, codec_model_path, identity_model_path):
    directory = tmp_path / "models"
    directory.mkdir()
    for source, name in ((codec_model_path, "codec.ts"), (identity_model_path, "identity.ts")):
        (directory / name).write_bytes(Path(source).read_bytes())
    (directory / "notes.txt").write_text("not a model")
    return directory


@pytest.fixture
def daemon(codec_model_path):
    return Daemon(codec_model_path)


@pytest.fixture
def store(daemon):
    return ModelControls.from_model(daemon.model).store()


@pytest.fixture
def osc_server(store, daemon, models_dir, tmp_path):
    config = OscConfig(port=0, models_dir=models_dir, presets_dir=tmp_path / "presets", latents_dir=tmp_path / "latents")
    with OscServer(store, daemon, config) as server:
        yield server


@pytest.fixture
def client(osc_server):
    client = Client(osc_server.address)
    yield client
    client.close()


@pytest.fixture
def make_client(osc_server):
    clients = []

    def make():
        clients.append(Client(osc_server.address))
        return clients[-1]

    yield make
    for client in clients:
        client.close()
