"""patches/ravelive.pd in headless Pd against a running OSC server: what Pd sends is applied, replies reach Pd."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from osc_helpers import PrintedLines, free_udp_port

PATCHES = Path(__file__).resolve().parents[2] / "patches"
PD_SECONDS = 20.0  # Pd is stopped after this long whatever happens

pytestmark = pytest.mark.skipif(shutil.which("pd") is None, reason="Pd (puredata-core) not installed")

TEST_PATCH = """#N canvas 0 50 600 400 12;
#X obj 20 20 loadbang;
#X obj 20 50 delay 500;
#X msg 20 80 bias 1 2.5 \\, method decode \\, send mix 0.25 \\, send latent/2/freeze 1 \\, query latent/1/bias \\, ping \\, status \\, send latent/0/bias 9;
#X obj 20 140 ravelive 127.0.0.1 {port} {reply_port};
#X obj 20 170 print REPLY;
#X connect 0 0 1 0;
#X connect 1 0 2 0;
#X connect 2 0 3 0;
#X connect 3 0 4 0;
"""


@pytest.fixture
def pd_replies(osc_server, tmp_path):
    """Start Pd on a patch using [ravelive] against `osc_server`; yields a function waiting for a printed reply."""
    reply_port = free_udp_port()
    patch = tmp_path / "pd_test.pd"
    patch.write_text(TEST_PATCH.format(port=osc_server.address[1], reply_port=reply_port))
    process = subprocess.Popen(
        ["pd", "-nogui", "-noaudio", "-nomidi", "-stderr", "-path", str(PATCHES), "-open", str(patch)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    printed = PrintedLines(process.stderr, "Pd")
    deadline = time.monotonic() + PD_SECONDS

    def wait_for(text: str) -> str:
        return printed.wait_for(text, deadline)

    yield wait_for
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def test_pd_abstraction_sets_queries_and_receives_replies(pd_replies, store, osc_server):
    assert pd_replies("REPLY: notify 1")  # subscribed at load
    assert pd_replies("REPLY: latent 1 bias 2.5")  # the query's reply
    assert pd_replies("REPLY: pong")
    assert pd_replies("REPLY: status model codec.ts")
    assert pd_replies("REPLY: status latency 64")
    error = pd_replies("REPLY: error /ravelive/latent/0/bias")
    assert "out of range" in error.replace("\\", "")  # Pd escapes the spaces of a symbol when printing
    assert store.get("latent/1/bias") == 2.5 and store.get("method") == "decode"
    assert store.get("mix") == 0.25 and store.get("latent/2/freeze") is True
    assert store.get("latent/0/bias") == 0.0
    store.set("latent/3/noise", 0.5)  # a change made elsewhere reaches Pd as feedback
    assert pd_replies("REPLY: latent 3 noise 0.5")
