"""Build the prebuilt audio-callback libraries shipped in the package, and check them.

    python tools/build_native.py            # build linux-x86_64 (gcc) and linux-aarch64 (aarch64-linux-gnu-gcc)
    python tools/build_native.py --check    # only check the committed ones: source hash, machine, symbols

A Raspberry Pi (64-bit OS) installs ravelive without a compiler because the aarch64 library is in the
package; `ravelive.engine.native` uses a prebuilt library only when its embedded source hash matches the
C source next to it (tests/engine/test_native.py fails when a committed one is stale). Debian packages:
gcc, gcc-aarch64-linux-gnu, binutils (readelf).
"""

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ravelive.engine import native  # noqa: E402

TARGETS = {"x86_64": ("gcc", "Advanced Micro Devices X86-64"), "aarch64": ("aarch64-linux-gnu-gcc", "AArch64")}
SYMBOLS = ("rl_callback", "rl_load", "rl_store", "rl_clock_start", "rl_clock_stop", "rl_state_size", "rl_source_hash",
           "rl_jack_open", "rl_jack_running", "rl_jack_close", "rl_jack_period", "rl_jack_connect_midi", "rl_limit",
           "rl_dc_block", "rl_use_midi_gain")


def check(architecture: str) -> list[str]:
    """Problems with the committed library for `architecture` (empty: fine)."""
    path = native.prebuilt_path(architecture)
    if not path.exists():
        return [f"{path.name}: missing"]
    problems = []
    if native.embedded_hash(path) != native.source_hash():
        problems.append(f"{path.name}: built from another source; run tools/build_native.py")
    header = subprocess.run(["readelf", "-h", str(path)], capture_output=True, text=True, check=True).stdout
    machine = TARGETS[architecture][1]
    if machine not in header:
        problems.append(f"{path.name}: not an {machine} library")
    dynamic = subprocess.run(["readelf", "--dyn-syms", "-W", str(path)], capture_output=True, text=True, check=True)
    exported = {line.split()[-1] for line in dynamic.stdout.splitlines() if " FUNC " in line and " UND " not in line}
    problems += [f"{path.name}: does not export {symbol}" for symbol in SYMBOLS if symbol not in exported]
    return problems


def glibc_needed(path: Path) -> str:
    """The newest GLIBC symbol version the library needs (what the target system's libc must provide)."""
    dynamic = subprocess.run(["readelf", "--dyn-syms", "-W", str(path)], capture_output=True, text=True, check=True)
    versions = {word.split("@")[1].split(" ")[0] for word in dynamic.stdout.split() if "@GLIBC_" in word}
    return max(versions, key=lambda v: tuple(int(n) for n in v.removeprefix("GLIBC_").split(".")), default="none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="check the committed libraries, build nothing")
    arguments = parser.parse_args()
    problems = []
    for architecture, (compiler, _) in TARGETS.items():
        path = native.prebuilt_path(architecture)
        if not arguments.check:
            native.build(path, compiler)
            subprocess.run([compiler.replace("gcc", "strip"), "--strip-unneeded", str(path)], check=True)
        found = check(architecture)
        problems += found
        if not found:
            print(f"{path.name}: {path.stat().st_size} bytes, source {native.source_hash()[:12]}, "
                  f"needs {glibc_needed(path)}")
    for problem in problems:
        print(problem, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
