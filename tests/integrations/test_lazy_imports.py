import subprocess
import sys


def test_cli_and_package_do_not_import_the_engines():
    code = (
        "import sys, h2q, h2q.integrations, h2q.cli.main;"
        "h2q.cli.main.build_parser();"
        "heavy = ('pymilvus', 'milvus_lite', 'pyspark', 'pyarrow', 'pandas');"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
