"""Regenerate docs/images/serve.png: the page of ``h2q serve --demo`` in headless Chromium.

Usage: ``python scripts/screenshot_serve.py [--out docs/images/serve.png] [--item 5] [--k 10]``.
Needs the serve extra, selenium and Debian's chromium + chromium-driver (``scripts/setup.sh
--test``). The demo fits its small digits run first when no ``results/`` folder is present
(in ``$H2Q_CACHE_DIR/serve-demo``). The PNG is written to a temporary file and renamed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from h2q.serve.browser import headless_chromium, run_query
from h2q.serve.launch import ServerProcess


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images/serve.png")
    parser.add_argument("--item", type=int, default=5, help="database item used as the query")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument(
        "--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver"
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(["--demo"], cwd=tmp) as server:
        with headless_chromium(
            Path(tmp) / "profile", args.chromium, args.chromedriver, size=(1200, 900)
        ) as driver:
            run_query(driver, server.url, args.item, args.k)
            driver.execute_script(
                "return Promise.all([...document.images].map(i => i.decode().catch(() => 0)))"
            )
            fd, partial = tempfile.mkstemp(suffix=".png", dir=out.parent)
            os.close(fd)
            try:
                if not driver.save_screenshot(partial):
                    raise RuntimeError("Chromium did not write the screenshot")
                os.replace(partial, out)
            finally:
                if os.path.exists(partial):
                    os.remove(partial)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
