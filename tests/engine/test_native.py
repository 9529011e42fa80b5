"""The C audio callback's library: the prebuilt ones match the source, the fallback build works, aarch64 is right."""

import shutil
import subprocess
from pathlib import Path

import pytest

from ravelive.engine import native


@pytest.mark.parametrize("architecture", ["x86_64", "aarch64"])
def test_the_committed_library_was_built_from_this_source(architecture):
    path = native.prebuilt_path(architecture)
    assert native.embedded_hash(path) == native.source_hash(), "stale: run tools/build_native.py and commit"


@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf (binutils) is not installed")
@pytest.mark.parametrize("architecture, machine", [("x86_64", "X86-64"), ("aarch64", "AArch64")])
def test_the_committed_library_is_for_its_machine_and_exports_the_callback(architecture, machine):
    path = native.prebuilt_path(architecture)
    header = subprocess.run(["readelf", "-h", str(path)], capture_output=True, text=True, check=True).stdout
    assert machine in header and "ELF64" in header and "DYN" in header
    dynamic = subprocess.run(["readelf", "-d", "--dyn-syms", "-W", str(path)], capture_output=True, text=True,
                             check=True).stdout
    needed = [line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line]
    assert needed == ["libc.so.6"]  # no PortAudio, no Python, no libatomic
    for symbol in ("rl_callback", "rl_load", "rl_store", "rl_clock_start", "rl_clock_stop", "rl_state_size",
                   "rl_jack_connect_midi", "rl_use_midi_gain"):
        assert f" {symbol}\n" in dynamic + "\n"


def test_the_library_is_built_from_source_with_its_hash(tmp_path):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    path = tmp_path / "librtcallback.so"
    native.build(path, "cc")
    assert native.embedded_hash(path) == native.source_hash()


def test_the_declarations_match_the_compiled_layout():
    ffi, lib = native.load()
    assert lib.rl_state_size() == ffi.sizeof("struct rl_state")
    assert ffi.string(lib.rl_source_hash()).decode() == native.source_hash()


EXPECTED_DRIVE = ("0 0 0 0 0 0 0 0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1 1.1 1.2 0.421667 0.2 0.445625 0.08 \n"
                  "periods 6 xruns 1 late_periods 1 late_blocks 1 played 24\n")


@pytest.mark.parametrize("architecture, compiler, runner", [
    ("x86_64", "gcc", []),
    ("aarch64", "aarch64-linux-gnu-gcc", ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]),  # as on a Raspberry Pi
])
def test_the_committed_library_plays_model_output_then_the_faded_dry_fallback(architecture, compiler, runner,
                                                                              tmp_path):
    if shutil.which(compiler) is None or (runner and shutil.which(runner[0]) is None):
        pytest.skip(f"needs {compiler} {' '.join(runner[:1])} (Debian: gcc-aarch64-linux-gnu qemu-user)")
    driver = tmp_path / "drive"
    library = native.prebuilt_path(architecture)
    subprocess.run([compiler, "-std=c11", "-o", str(driver), str(Path(__file__).parent / "native" / "drive_callback.c"),
                    str(library), f"-Wl,-rpath,{library.parent}"], check=True)
    result = subprocess.run([*runner, str(driver)], capture_output=True, text=True, timeout=60, check=True)
    # three periods of model output (input x 10, 8 frames later), then the input 8 frames back (0.13, NaN, 5, 0.16)
    # made safe (0.13, 0, the -1 dBFS ceiling 0.891, 0.16), faded in from the last output (0.843, 0.4, 0.891, 0.16)
    # and the output gain halved (no ramp: x 0.5 from the first frame)
    assert result.stdout == EXPECTED_DRIVE
