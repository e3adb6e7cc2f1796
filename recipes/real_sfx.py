"""Build the real game sound-effects corpus from 21 Debian game-data packages (run on demand, not in CI).

    sudo apt-get install 0ad-data wesnoth-1.16-data hedgewars-data warzone2100-data ufoai-sound \
        scorched3d-data widelands-data megaglest-data ktuberling-data klettres-data \
        supertuxkart-data neverball-data xmoto-data pingus-data openttd-opensfx gcompris-qt-data \
        warmux-data redeclipse-data kobodeluxe-data tuxtype-data ri-li-data
    .venv/bin/python recipes/real_sfx.py -o corpora/real_sfx

Writes corpora/real_sfx/manifest.jsonl (paths into /usr/share, plus archive members extracted under
corpora/real_sfx/extracted/), report.json, and prints the tables that docs/data.md shows. Reads audio
headers only: a few minutes of disk reading, little CPU. (neverball-data and kobodeluxe-data hold no
recorded audio: Neverball's sounds are in another package, Kobo Deluxe synthesises its own.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from foley.data.gamesfx import PACKAGES, build_corpus, markdown_report  # noqa: E402
from foley.errors import FoleyError  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", default="corpora/real_sfx", help="output folder (default: corpora/real_sfx)")
    ap.add_argument("--packages", nargs="*", default=list(PACKAGES), help="a subset of the packages (default: all)")
    args = ap.parse_args()
    try:
        report = build_corpus(args.out, tuple(args.packages), progress=sys.stderr.isatty())
    except FoleyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    missing = [p for p, r in report.items() if not r.installed]
    if missing:
        print(f"note: not installed, skipped: {' '.join(missing)} "
              f"(sudo apt-get install {' '.join(missing)})", file=sys.stderr)
    print(markdown_report(report))
    print(f"manifest: {Path(args.out) / 'manifest.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
