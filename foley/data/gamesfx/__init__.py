"""A captioned corpus of real game sound effects, ambiences and music from 21 Debian game-data packages.

`build_corpus` walks the packages (`games`; archives through `archives`), turns file and folder names and
the games' own data files into captions (`names`, `captions`), reads each clip's licence from its
package's copyright file (`licence`) and writes a manifest that references the installed files.
"""

from .captions import Described, describe
from .corpus import MANIFEST_NAME, REPORT_NAME, PackageReport, build_corpus, markdown_report
from .games import GAMES, LANGUAGES, PACKAGES, Candidate, Hint, find_audio
from .licence import Copyright, Licence, licence_for, package_licence, parse_copyright, pattern_matches
from .names import CATEGORIES, category_of, clean_words, informative

__all__ = ["CATEGORIES", "GAMES", "LANGUAGES", "MANIFEST_NAME", "PACKAGES", "REPORT_NAME", "Candidate", "Copyright",
           "Described", "Hint", "Licence", "PackageReport", "build_corpus", "category_of", "clean_words", "describe",
           "find_audio", "informative", "licence_for", "markdown_report", "package_licence", "parse_copyright",
           "pattern_matches"]
