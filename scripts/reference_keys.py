"""Writes the state_dict keys and shapes of the reference models to
crates/models/tests/fixtures/<model>.keys, for the test that checks cnnzoo's key mapping.

    scripts/python_env.sh torch -- scripts/reference_keys.py

scripts/python_env.sh makes the git-ignored venv .venv-scripts/ with the packages named on first
use; set $PYTHON to run on another Python that has them instead (nothing is installed into it).
"""
import pathlib

from reference_models import build

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/models/tests/fixtures"

for name in ["googlenet", "resnet", "resnet_preact", "densenet"]:
    lines = [f"{key} {'x'.join(map(str, t.shape)) or 'scalar'}" for key, t in build(name).state_dict().items()]
    (OUT / f"{name}.keys").write_text("\n".join(lines) + "\n")
    print(name, len(lines), "keys")
