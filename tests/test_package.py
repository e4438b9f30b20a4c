import subprocess
import sys

import h2q


def test_public_api_is_exported():
    for name in h2q.__all__:
        assert hasattr(h2q, name), name


def test_import_loads_no_optional_dependency():
    code = (
        "import sys, h2q, h2q.losses, h2q.data, h2q.training, h2q.experiments, h2q.cli.main;"
        "heavy = ('faiss', 'matplotlib', 'sklearn', 'PIL', 'pytorch_metric_learning',"
        " 'efficientnet_lite_pytorch', 'torchvision', 'fastapi', 'uvicorn', 'starlette');"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "h2q.cli.main", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and h2q.__version__ in out.stdout
