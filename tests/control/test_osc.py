"""The OSC server over real UDP on loopback: every address class, feedback rules, limits."""

import time

import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from osc_helpers import Client
from ravelive.control.osc import OscConfig, OscServer
from ravelive.errors import ConfigError


def test_python_osc_client_sets_queries_and_gets_errors(osc_server, store):
    host, port = osc_server.address
    with SimpleUDPClient(host, port) as client:
        client.send_message("/ravelive/latent/2/bias", 1.25)
        client.send_message("/ravelive/latent/2/bias", [])
        reply = next(client.get_messages(5.0))
        assert (reply.address, reply.params) == ("/ravelive/latent/2/bias", [1.25])
        client.send_message("/ravelive/latent/2/bias", 9.0)
        reply = next(client.get_messages(5.0))
        assert reply.address == "/ravelive/error"
        assert reply.params == ["/ravelive/latent/2/bias", "latent/2/bias: 9.0 is out of range [-5, 5]"]
    assert store.get("latent/2/bias") == 1.25


@pytest.mark.parametrize(
    "address, sent, stored",
    [("/ravelive/latent/0/scale", 2, 2.0), ("/ravelive/latent/1/freeze", True, True),
     ("/ravelive/latent/1/freeze", 1.0, True), ("/ravelive/bypass", 1, True), ("/ravelive/mix", 0.5, 0.5),
     ("/ravelive/method", "decode", "decode")],
)
def test_set_accepts_numbers_and_bools_where_they_make_sense(client, store, address, sent, stored):
    client.send(address, sent)
    client.send(address)
    assert client.expect(address) == [int(stored) if isinstance(stored, bool) else stored]
    assert store.get(address.removeprefix("/ravelive/")) == stored


@pytest.mark.parametrize(
    "address, arguments, message",
    [("/ravelive/latent/0/bias", ["loud"], "latent/0/bias: 'loud' is of type str"),
     ("/ravelive/latent/0/freeze", [0.5], "latent/0/freeze: 0.5 is not a bool"),
     ("/ravelive/latent/0/bias", [1.0, 2.0], "latent/0/bias: got 2 values; send exactly one"),
     ("/ravelive/method", ["prior"], "method: 'prior' is not one of"),
     ("/ravelive/latent/9/bias", [1.0], "/ravelive/latent/9/bias: no such address"),
     ("/elsewhere", [], "/elsewhere: no such address"),
     ("/ravelive/model/load", [], "/ravelive/model/load: got []; send one name")],
)
def test_refusals_reply_error_with_address_and_reason(client, osc_server, address, arguments, message):
    client.send(address, *arguments)
    reply = client.expect("/ravelive/error")
    assert reply[0] == address and message in reply[1]
    assert sum(osc_server.faults.values()) == 1


def test_a_method_whose_output_is_not_audio_is_refused_until_the_flag_is_set(client, store):
    client.send("/ravelive/method", "encode")
    address, message = client.expect("/ravelive/error")
    assert address == "/ravelive/method"
    assert message.startswith("method: 'encode' outputs 4 channels at 1/64 of the audio rate, not audio")
    assert "/ravelive/allow_control_output 1" in message and "--allow-control-output" in message
    assert store.get("method") == "forward"  # the running method stays
    client.send("/ravelive/allow_control_output", 1)
    client.send("/ravelive/method", "encode")
    client.send("/ravelive/method")
    assert client.expect("/ravelive/method") == ["encode"]
    client.send("/ravelive/allow_control_output", 0)  # not while encode plays
    address, message = client.expect("/ravelive/error")
    assert address == "/ravelive/allow_control_output"
    assert "'encode' outputs" in message and "select an audio method (decode, forward) first" in message
    assert store.get("allow_control_output") is True


def test_errors_the_server_reports_reach_every_subscriber(osc_server, make_client):
    listener, bystander = make_client(), make_client()
    listener.send("/ravelive/notify", 1)
    listener.expect("/ravelive/notify")
    osc_server.report_error("/ravelive/status/nonfinite_blocks", "model output NaN/Inf")
    assert listener.expect("/ravelive/error") == ["/ravelive/status/nonfinite_blocks", "model output NaN/Inf"]
    assert bystander.silent(0.3) == []  # only subscribers hear what nobody asked about


def test_status_replies_one_address_per_item(client):
    client.send("/ravelive/status")
    items = {}
    while "osc_faults" not in items:
        for address, arguments in client.receive():
            items[address.removeprefix("/ravelive/status/")] = arguments[0]
    assert items["model"] == "codec.ts" and items["latency"] == 64 and items["late_blocks"] == 0
    assert {"method", "sample_rate", "block", "cpu_load", "xruns"} <= set(items)


def test_namespace_lists_every_parameter_with_type_and_range(client, store):
    client.send("/ravelive/namespace")
    entries = {}
    while True:
        messages = client.receive()
        assert messages, "namespace listing stopped early"
        done = [arguments for address, arguments in messages if address == "/ravelive/namespace/end"]
        entries.update({a[0]: a for address, a in messages if address == "/ravelive/namespace/entry"})
        if done:
            assert done[0] == [len(entries)]
            break
    assert entries["/ravelive/latent/3/bias"][1:4] == ["f", "rw", "[-5, 5]"]
    assert entries["/ravelive/ping"][2] == "w"
    assert {f"/ravelive/{name}" for name in store.specs} <= set(entries)


def test_ping_pongs_its_arguments(client):
    client.send("/ravelive/ping", 7, "x")
    assert client.expect("/ravelive/pong") == [7, "x"]


def test_subscribers_hear_changes_but_not_their_own(make_client, store):
    performer, watcher = make_client(), make_client()
    for client in (performer, watcher):
        client.send("/ravelive/notify", 1)
        assert client.expect("/ravelive/notify") == [1]
    performer.send("/ravelive/latent/0/bias", 0.5)
    assert watcher.expect("/ravelive/latent/0/bias") == [0.5]
    performer.send("/ravelive/latent/0/bias")  # a query still answers
    assert performer.expect("/ravelive/latent/0/bias") == [0.5]
    assert performer.silent(0.3) == []  # no echo of its own change
    store.set("mix", 0.25)  # the server itself (MIDI, a preset) changes a value: everyone hears it
    assert performer.expect("/ravelive/mix") == [0.25] and watcher.expect("/ravelive/mix") == [0.25]


def test_a_value_the_server_changed_is_echoed_to_its_sender(make_client, codec_model, store):
    performer = make_client()
    performer.send("/ravelive/notify", 1)
    performer.expect("/ravelive/notify")
    performer.send("/ravelive/method", "decode")
    assert performer.silent(0.3) == []
    store.set("method", "forward")  # e.g. the server could not switch and put the old method back
    assert performer.expect("/ravelive/method") == ["forward"]


def test_notify_to_another_port_sends_replies_and_feedback_there(osc_server, store):
    sender, listener = Client(osc_server.address), Client(osc_server.address)
    try:
        sender.send("/ravelive/notify", 1, listener.port)  # Max's udpsend cannot receive: replies go to udpreceive
        assert listener.expect("/ravelive/notify") == [1]
        sender.send("/ravelive/ping")
        assert listener.expect("/ravelive/pong") == []
        store.set("latent/1/noise", 0.5)
        assert listener.expect("/ravelive/latent/1/noise") == [0.5]
        sender.send("/ravelive/notify", 0)
        assert listener.expect("/ravelive/notify") == [0]
        store.set("latent/1/noise", 0.0)
        assert listener.silent(0.3) == [] and sender.silent(0.1) == []
    finally:
        sender.close()
        listener.close()


def test_feedback_is_coalesced_to_at_most_60_per_second(make_client, store):
    watcher = make_client()
    watcher.send("/ravelive/notify", 1)
    watcher.expect("/ravelive/notify")
    start = time.monotonic()
    for step in range(2000):
        store.set("latent/0/bias", (step % 100) / 100)
    elapsed = time.monotonic() - start
    received = [m for m in watcher.silent(0.5) if m[0] == "/ravelive/latent/0/bias"]
    assert 1 <= len(received) <= 60 * (elapsed + 0.5) + 2
    assert received[-1][1] == [pytest.approx(0.99)]  # the last value always arrives


def test_latent_trajectory_goes_to_latent_subscribers(make_client, osc_server):
    watcher = make_client()
    watcher.send("/ravelive/latent/notify", 1)
    watcher.expect("/ravelive/latent/notify")
    frames = np.arange(12, dtype=np.float32).reshape(4, 3)  # 4 dimensions, 3 frames
    osc_server.push_latent(frames)
    got = [watcher.expect("/ravelive/latent/out") for _ in range(3)]
    assert got == [[0.0, 3.0, 6.0, 9.0], [1.0, 4.0, 7.0, 10.0], [2.0, 5.0, 8.0, 11.0]]


def test_the_server_hears_when_the_first_latent_subscriber_comes_and_the_last_one_goes(make_client, osc_server):
    wanted = []
    osc_server.feedback.on_latent_wanted = wanted.append
    first, second = make_client(), make_client()
    for client, on in ((first, 1), (second, 1), (first, 0), (second, 0)):
        client.send("/ravelive/latent/notify", on)
        client.expect("/ravelive/latent/notify")
    assert wanted == [True, False]


def test_model_load_by_name_is_asynchronous_and_answers(client, daemon, models_dir):
    client.send("/ravelive/model/list")
    assert client.expect("/ravelive/model/list") == ["codec", "identity"]
    client.send("/ravelive/model/load", "identity")
    assert client.expect("/ravelive/done") == ["/ravelive/model/load", "identity"]
    assert daemon.loads == [models_dir / "identity.ts"]
    client.send("/ravelive/model/reload")
    assert client.expect("/ravelive/done") == ["/ravelive/model/reload", ""]


def test_model_load_failure_answers_fail_with_the_reason(client, models_dir):
    (models_dir / "broken.ts").write_bytes(b"not a zip archive")
    client.send("/ravelive/model/load", "broken")
    address, name, reason = client.expect("/ravelive/fail")
    assert (address, name) == ("/ravelive/model/load", "broken") and "broken.ts" in reason


@pytest.mark.parametrize("name", ["../identity", "/etc/passwd", "notes.txt", "notes", "missing"])
def test_model_load_reads_only_models_in_the_directory(client, daemon, name):
    client.send("/ravelive/model/load", name)
    assert "model" in client.expect("/ravelive/error")[1]
    assert daemon.loads == []


def test_latent_play_hands_a_checked_sequence_to_the_server_and_stop_ends_it(client, daemon, store, tmp_path):
    latents = tmp_path / "latents"
    latents.mkdir()
    piece = np.random.default_rng(0).standard_normal((4, 30)).astype(np.float32)  # the codec model: 4 latents
    np.save(latents / "piece.npy", piece)
    np.save(latents / "wide.npy", np.zeros((8, 30), np.float32))
    np.save(latents / "objects.npy", np.array([{"not": "numbers"}], dtype=object), allow_pickle=True)
    np.save(latents / "broken.npy", np.full((4, 3), np.nan, np.float32))
    client.send("/ravelive/latent/list")
    assert client.expect("/ravelive/latent/list") == ["broken", "objects", "piece", "wide"]
    client.send("/ravelive/latent/play", "piece")
    assert client.expect("/ravelive/done") == ["/ravelive/latent/play", "piece"]
    np.testing.assert_array_equal(daemon.played[-1], piece)
    for name, reason in (("wide", "the playing model takes float [4, frames]"), ("objects", "not a numpy array file"),
                         ("broken", "NaN or Inf"), ("../piece", "latent sequence"), ("missing", "available: broken")):
        client.send("/ravelive/latent/play", name)
        assert reason in client.expect("/ravelive/error")[1], name
    assert len(daemon.played) == 1
    store.update({"latent/loop/play": True})
    client.send("/ravelive/latent/stop")
    client.send("/ravelive/latent/loop/play")
    assert client.expect("/ravelive/latent/loop/play") == [0]


def test_presets_over_osc(client, store):
    client.send("/ravelive/latent/3/bias", -2.0)
    client.send("/ravelive/preset/save", "low")
    assert client.expect("/ravelive/done") == ["/ravelive/preset/save", "low"]
    client.send("/ravelive/latent/3/bias", 0.0)
    client.send("/ravelive/preset/load", "low")
    assert client.expect("/ravelive/done") == ["/ravelive/preset/load", "low"]
    assert store.get("latent/3/bias") == -2.0
    client.send("/ravelive/preset/list")
    assert client.expect("/ravelive/preset/list") == ["low"]


def test_packets_from_outside_the_allow_list_are_dropped_and_counted(store, daemon):
    with OscServer(store, daemon, OscConfig(host="127.0.0.1", port=0, allow=("10.0.0.0/8",))) as server:
        assert server.allows("10.1.2.3") and server.allows("127.0.0.1") and not server.allows("192.168.1.5")


def test_a_wide_bind_without_allow_is_refused(store, daemon):
    with pytest.raises(ConfigError, match=r"--osc-host 0\.0\.0\.0 accepts packets from the network: name the clients"):
        OscServer(store, daemon, OscConfig(host="0.0.0.0", port=0))


def test_a_bad_allow_entry_is_refused(store, daemon):
    with pytest.raises(ConfigError, match=r"--allow 'lan' is not an address or subnet"):
        OscServer(store, daemon, OscConfig(port=0, allow=("lan",)))


def test_a_busy_port_is_a_clear_error(osc_server, store, daemon):
    with pytest.raises(ConfigError, match=rf"OSC port {osc_server.address[1]} on 127\.0\.0\.1 cannot be opened"):
        OscServer(store, daemon, OscConfig(port=osc_server.address[1]))
