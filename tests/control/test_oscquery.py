"""OSCQuery JSON over HTTP, generated from the same declarations as the OSC namespace; mDNS announcement."""

import json
import threading
import urllib.error
import urllib.request

import pytest

from ravelive.control.oscquery import OscQueryService


@pytest.fixture
def oscquery(osc_server):
    service = OscQueryService(osc_server, http_port=0, advertise=False).start()
    yield f"http://127.0.0.1:{service.http_port}"
    service.close()


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_whole_tree_has_every_parameter_with_type_range_value(oscquery, store):
    tree = get(oscquery + "/")
    bias = tree["CONTENTS"]["ravelive"]["CONTENTS"]["latent"]["CONTENTS"]["2"]["CONTENTS"]["bias"]
    assert bias == {"FULL_PATH": "/ravelive/latent/2/bias", "TYPE": "f", "ACCESS": 3, "VALUE": [0.0],
                    "RANGE": [{"MIN": -5.0, "MAX": 5.0}], "DESCRIPTION": "added to latent dimension 2"}
    method = tree["CONTENTS"]["ravelive"]["CONTENTS"]["method"]
    assert method["RANGE"] == [{"VALS": ["encode", "decode", "forward"]}]
    gain = get(oscquery + "/ravelive/gain/out")
    assert gain["UNIT"] == ["dB"] and gain["TYPE"] == "f"


def test_node_and_attribute_queries_follow_the_store(oscquery, store):
    store.set("latent/1/freeze", True)
    assert get(oscquery + "/ravelive/latent/1/freeze?VALUE") == {"VALUE": [True]}
    assert get(oscquery + "/ravelive/ping")["ACCESS"] == 2


def test_host_info_names_the_osc_port(oscquery, osc_server):
    info = get(oscquery + "/?HOST_INFO")
    assert info["OSC_PORT"] == osc_server.address[1] and info["OSC_TRANSPORT"] == "UDP"
    assert info["EXTENSIONS"]["VALUE"] and not info["EXTENSIONS"]["LISTEN"]


def test_unknown_path_is_404(oscquery):
    with pytest.raises(urllib.error.HTTPError, match="404"):
        get(oscquery + "/ravelive/latent/99/bias")


def test_mdns_announces_both_services(osc_server):
    zeroconf = pytest.importorskip("zeroconf")
    service = OscQueryService(osc_server, http_port=0, name="ravelive-test").start()
    try:
        found = threading.Event()
        names = []

        class Listener:
            def add_service(self, zc, kind, name):
                names.append(name)
                found.set()

            update_service = remove_service = lambda *args: None

        browser_zc = zeroconf.Zeroconf()
        zeroconf.ServiceBrowser(browser_zc, "_oscjson._tcp.local.", Listener())
        if not found.wait(10):
            pytest.skip("no mDNS traffic on this host (multicast unavailable)")
        assert any(name.startswith("ravelive-test") for name in names)
        browser_zc.close()
    finally:
        service.close()
