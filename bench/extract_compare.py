"""Compare PDF text extractors on real PDFs: pages, characters, words, seconds, peak RSS.

Each library runs in its own child process (so one's imports and peak memory never count
against another), from the project's environment or from a `--target` directory made with
`uv pip install --target DIR PACKAGE` (how pdfminer.six was measured without adding it):

    PYTHONPATH=backend .venv/bin/python bench/extract_compare.py PDF_DIR \
        --lib pypdf --lib pdfminer=/tmp/files-fp/t_pdfminer_six_

Words are runs of 3+ letters: two extractors that agree on them found the same text.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, re, resource, sys, time
lib, paths = sys.argv[1], sys.argv[2:]
rows = []
for path in paths:
    started = time.perf_counter()
    try:
        if lib == "pypdf":
            import pypdf
            pages = [page.extract_text() or "" for page in pypdf.PdfReader(path).pages]
        else:
            from pdfminer.high_level import extract_pages
            from pdfminer.layout import LTTextContainer
            pages = ["".join(e.get_text() for e in layout if isinstance(e, LTTextContainer))
                     for layout in extract_pages(path)]
        text = "\n".join(pages)
        rows.append({"file": path.rsplit("/", 1)[-1], "pages": len(pages), "chars": len(text),
                     "words": len(re.findall(r"[A-Za-z]{3,}", text)),
                     "seconds": round(time.perf_counter() - started, 2)})
    except Exception as exc:
        rows.append({"file": path.rsplit("/", 1)[-1], "error": type(exc).__name__})
print(json.dumps({"lib": lib, "rows": rows,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pdf_dir", type=Path)
    parser.add_argument("--lib", action="append", default=[], help="pypdf | pdfminer, optionally =TARGET_DIR")
    args = parser.parse_args()
    pdfs = sorted(str(path) for path in args.pdf_dir.glob("*.pdf"))
    for spec in args.lib or ["pypdf"]:
        lib, _, target = spec.partition("=")
        env = dict(os.environ)
        if target:
            env["PYTHONPATH"] = target
        out = subprocess.run([sys.executable, "-c", CHILD, lib, *pdfs], env=env, capture_output=True,
                             text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{lib}: peak RSS {result['peak_rss_mb']} MB")
        for row in result["rows"]:
            print("  ", row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
