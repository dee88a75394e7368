"""What importing a module loads, seen from a fresh interpreter (this one has loaded everything already)."""

import json
import subprocess
import sys


def modules_loaded_by(module: str) -> list[str]:
    """The names in ``sys.modules`` after ``import module`` in a new Python process, sorted."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    names: list[str] = json.loads(loaded.stdout)
    return names
