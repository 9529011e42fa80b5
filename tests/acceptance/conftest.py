"""Reference models nobody here wrote (RAVE 2.3.1 and nn_tilde 1.6.0 exports), for the acceptance tests.

`RAVELIVE_REFERENCE_MODELS=DIR` points at files made by
`python3 tools/make_reference_models.py DIR`. Without it, the session builds
them once into the system temp directory, in a folder named after the
tool's hash (a separate venv in /tmp/rave-venv, PyPI access, about 2.5 min
and 2 GB with the venv on a 2-core machine; later sessions reuse both), and
skips the acceptance tests with the tool's last error line when that cannot
be done (no PyPI, no disk).
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "make_reference_models.py"
BUILD_TIMEOUT_S = 1200  # a fresh venv plus every model took about 150 s here; PyPI can be slow


@pytest.fixture(scope="session")
def reference_models_dir() -> Path:
    """Directory holding the reference .ts files and the tool's manifest.json."""
    given = os.environ.get("RAVELIVE_REFERENCE_MODELS")
    if given:
        directory = Path(given)
        if not (directory / "manifest.json").is_file():
            pytest.fail(f"RAVELIVE_REFERENCE_MODELS={given} has no manifest.json; run python3 {TOOL} {given}")
        return directory
    digest = hashlib.sha256(TOOL.read_bytes()).hexdigest()[:12]
    directory = Path(tempfile.gettempdir()) / f"ravelive-reference-models-{digest}"
    if (directory / "manifest.json").is_file():  # written last, only by a complete build
        return directory
    try:
        subprocess.run(
            [sys.executable, str(TOOL), str(directory)],
            check=True, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
        )
    except subprocess.CalledProcessError as error:
        last = (error.stderr or error.stdout or "").strip().splitlines()[-1:] or ["no output"]
        pytest.skip(f"cannot build the reference models ({last[0]}); set RAVELIVE_REFERENCE_MODELS to a built directory")
    except subprocess.TimeoutExpired:
        pytest.skip(f"building the reference models took over {BUILD_TIMEOUT_S} s; set RAVELIVE_REFERENCE_MODELS")
    return directory


@pytest.fixture(scope="session")
def reference_model(reference_models_dir):
    """reference_model(name) -> path of that .ts file; skips when the directory was built without it."""
    manifest = json.loads((reference_models_dir / "manifest.json").read_text())

    def path_of(name: str) -> Path:
        if name not in manifest:
            pytest.skip(f"{name} is not in {reference_models_dir}/manifest.json (built with --only?)")
        return reference_models_dir / manifest[name]["file"]

    return path_of
