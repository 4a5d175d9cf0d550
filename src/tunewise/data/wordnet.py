"""WordNet synonyms from Debian's `wordnet-base` files, read with nltk's WordNetCorpusReader.

No `nltk.download`: there is no internet, and the distribution package already ships WordNet 3.0
in its original database format. Three gaps are bridged here: Debian leaves out the `lexnames`
file (the fixed list of 45 lexicographer file names, which nltk reads at start-up), and nltk's
path guard only opens files under its data paths, so the directory is added to them.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from tunewise.errors import DataError

DEBIAN_DIR = Path("/usr/share/wordnet")
# WordNet 3.0's lexicographer files, in index order (lexnames(5WN)); Debian omits the file.
_LEXNAMES = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
]
_SYNTACTIC_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


def wordnet_dir(configured: str | None = None) -> Path:
    """Where WordNet's database files are; a clear error when they are not installed."""
    path = Path(configured or os.environ.get("TUNEWISE_WORDNET") or DEBIAN_DIR)
    if not (path / "data.noun").is_file():
        raise DataError(
            f"WordNet is not installed at {path} (no data.noun there). Synonym augmentation "
            "reads Debian's wordnet-base package: `make setup` installs it, or run "
            "`apt-get install wordnet-base`; set augment.wordnet_dir (or $TUNEWISE_WORDNET) "
            "for another location."
        )
    return path


@lru_cache(maxsize=2)
def load_wordnet(directory: str | None = None) -> Any:
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = wordnet_dir(directory).resolve()
    if str(root) not in [str(p) for p in nltk.data.path]:
        nltk.data.path.append(str(root))  # nltk's path guard reads only under its data paths

    class DebianWordNet(WordNetCorpusReader):
        def open(self, file: str) -> Any:
            if file == "lexnames":
                lines = [
                    f"{i:02d}\t{name}\t{_SYNTACTIC_CATEGORY[name.split('.')[0]]}\n"
                    for i, name in enumerate(_LEXNAMES)
                ]
                return io.StringIO("".join(lines))
            return super().open(file)

        def map_wn(self, version: str = "wordnet") -> Any:
            return None  # the multilingual (OMW) mapping needs nltk_data's copy; unused here

    import warnings

    with warnings.catch_warnings():  # "multilingual functions are not available": expected
        warnings.simplefilter("ignore")
        return DebianWordNet(str(root), None)


def synonyms(word: str, directory: str | None = None) -> list[str]:
    """Other lemma names of the word's synsets, in WordNet's order, without the word itself."""
    wn = load_wordnet(directory)
    lower = word.lower()
    out: list[str] = []
    for synset in wn.synsets(lower):
        for lemma in synset.lemma_names():
            name = lemma.replace("_", " ")
            if name.lower() != lower and name not in out:
                out.append(name)
    return out
