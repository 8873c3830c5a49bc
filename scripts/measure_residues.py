"""Measure markup residues and content probes in the output of both extractors.

For each dump, this script runs this project (`python -m pipeline.extract`,
or the iter_articles stand-in before that command existed) and wikiextractor
3.1.0 (`--no-templates --json`), or reads outputs they wrote earlier, and
compares the plain text of the articles both wrote.

Residues: occurrences of wikitext markup patterns (`{{`, `[[`, `<ref`,
`&amp;`, `'''`, `{|`, `thumb|`, `Category:`, `__NOTOC__`-style magic words,
...) per 10,000 characters of output, beside the same density in the source
wikitext for scale.

Content probes: strings taken from the source wikitext of each article by
fixed rules, each checked for presence in that article's output. Probes of
what a reader sees and should be kept (list items, {{lang}} text, {{convert}}
values) and of what the text policy drops (File captions, <ref> bodies,
table cells). A probe is used only when it occurs exactly once in the
article's wikitext (or, for {{lang}} and {{convert}}, nowhere outside such
templates), so finding it in the output can only mean the tool kept that
piece. docs/residues.md describes the rules; they use regular expressions
and bracket matching only, not either tool's parser.

    .venv/bin/python scripts/measure_residues.py --project-commit HEAD
    .venv/bin/python scripts/measure_residues.py --dump mirror/enwiki/20160501/enwiki-20160501-pages-articles-multistream.xml.bz2

--project-commit runs pipeline/ of that commit, exported with `git archive`,
instead of the working tree. With no --dump it measures the bundled dump and, when it exists, the
benchmark dump of scripts/make_benchmark_dump.py, and writes
docs/residues.md. Nothing here uses the network.
"""

from __future__ import annotations

import argparse
import bz2
import dataclasses
import datetime as dt
import logging
import os
import re
import shlex
import signal
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_extraction import (  # noqa: E402  (the scripts folder is put on sys.path above)
    DEFAULT_DUMP,
    DEFAULT_PROJECT_PYTHON,
    DEFAULT_WIKIEXTRACTOR_PYTHON,
    PROJECT,
    REPO,
    WIKIEXTRACTOR,
    BenchmarkError,
    Extractor,
    display_path,
    export_commit,
    iter_documents,
    measure,
    package_version,
    project_extractor,
    project_revision,
    wikiextractor_extractor,
)

log = logging.getLogger("measure_residues")

BUNDLED_DUMP = REPO / "mirror" / "enwiki" / "20160501" / "enwiki-20160501-pages-articles-multistream.xml.bz2"
DEFAULT_WORK_DIR = REPO / "bench" / "residues"
DEFAULT_REPORT = REPO / "docs" / "residues.md"

RESIDUES: list[tuple[str, re.Pattern[str]]] = [
    (label, re.compile(re.escape(label)))
    for label in ("{{", "}}", "[[", "]]", "<ref", "&lt;", "&amp;", "'''", "{|", "|-", "thumb|", "File:", "Category:")
] + [("__X__ (magic word)", re.compile(r"__[A-Z]{2,}__"))]

# A reader-visible piece of text between two pieces of markup. Removed spans
# become NUL so that the text on either side never joins into one segment.
SEGMENT_BREAK = re.compile(r"[\x00\[\]{}<>|=\n&]|''+")
# Markup that is not displayed on the page: the target of a piped link, the URL
# of an external link, tags, and character references (their decoded form differs).
HIDDEN_MARKUP = re.compile(
    r"\[\[[^\[\]|]*\|"
    r"|\[\s*(?:https?:|ftp:)?//[^\s\]]*"
    r"|(?:https?|ftp)://[^\s\]|<]*"
    r"|&#?\w+;"
    r"|<[^<>\n]*>",
    re.I,
)
# Punctuation at a segment's ends is stripped because dropping a neighbouring template changes it:
# "small ({{convert|...}}) Arctic grouse" becomes "small Arctic grouse" in an output.
EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")
# Markup deleted, not replaced, for the uniqueness test: "[[David Thompson (explorer)|David Thompson]]
# Highway" must count as an occurrence of "David Thompson Highway".
JOINING_MARKUP = re.compile(r"\[\[|\]\]|''+")
# [[:Category:X]] shows "Category:X": the leading colon is markup.
LINK_COLON = re.compile(r"\[\[\s*:")
WHITESPACE = re.compile(r"\s+")
MIN_PROSE_CHARACTERS = 20
MIN_SHORT_CHARACTERS = 15
MIN_WORDS = 3
EXAMPLES_PER_CASE = 5

COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
REFERENCE = re.compile(r"<ref(?:\s[^>]*)?/>|<ref(?:\s[^>]*)?>(.*?)</ref\s*>", re.S | re.I)
NON_PROSE_TAG = re.compile(r"<(gallery|imagemap|timeline|math|chem|score|graph|mapframe|syntaxhighlight|source|pre|code|nowiki)\b[^>]*>.*?</\1\s*>", re.S | re.I)
FILE_LINK_START = re.compile(r"\[\[\s*(?:file|image)\s*:", re.I)
LIST_LINE = re.compile(r"^([*#]+)[:;*#]*(.*)$", re.M)
LANG_TEMPLATE = re.compile(r"\{\{\s*lang\s*\|\s*[\w-]+\s*\|([^{}|]*)\}\}|\{\{\s*lang-[\w-]+\s*\|([^{}|]*)\}\}", re.I)
CONVERT_TEMPLATE = re.compile(r"\{\{\s*convert\s*\|\s*[-+\u2212]?([\d,]*\.?\d+)\s*\|", re.I)
IMAGE_OPTION = re.compile(
    r"^\s*(thumb|thumbnail|frame|framed|frameless|border|right|left|center|centre|none|upright(\s*[\d.]+)?"
    r"|baseline|middle|sub|super|top|text-top|bottom|text-bottom|\d*x?\d+\s*px|[\w-]+\s*=.*)\s*$",
    re.I | re.S,
)


class ResidueError(RuntimeError):
    """A dump or an output cannot be read; the message names the file."""


@dataclasses.dataclass
class Source:
    """The wikitext of one article candidate: namespace 0, not a redirect."""

    page_id: int
    title: str
    wikitext: str


@dataclasses.dataclass
class Probe:
    """One string to look for in one article's output, and whether finding it means the tool kept it."""

    kind: str
    text: str
    number: bool = False  # matched as a number token, also with thousands separators


@dataclasses.dataclass(frozen=True)
class ProbeKind:
    key: str
    label: str
    want_kept: bool
    rule: str


PROBE_KINDS = [
    ProbeKind("list", "list items (`*`, `#`)", True,
              f"longest markup-free segment (at least {MIN_PROSE_CHARACTERS} characters and {MIN_WORDS} words) of a "
              "line that starts with `*` or `#`, after templates, references, comments, tables and File links are removed"),
    ProbeKind("lang", "`{{lang}}` text", True,
              "the text argument of `{{lang|xx|text}}` or `{{lang-xx|text}}` in running prose (not inside another "
              "template, a table, a File link or a reference) when it contains no markup other than `''`, "
              "and occurs nowhere in the article outside such templates"),
    ProbeKind("convert", "`{{convert}}` values", True,
              "the first value of `{{convert|value|unit|...}}` in running prose (as for `{{lang}}`), matched as a "
              "number (also with thousands commas), when that number occurs nowhere in the article outside `{{convert}}`"),
    ProbeKind("caption", "File captions", False,
              f"longest markup-free segment (at least {MIN_SHORT_CHARACTERS} characters and {MIN_WORDS} words) of the last "
              "argument of `[[File:...]]` or `[[Image:...]]` that is not an image option"),
    ProbeKind("reference", "`<ref>` bodies", False,
              f"longest markup-free segment (at least {MIN_PROSE_CHARACTERS} characters and {MIN_WORDS} words) of a "
              "`<ref>...</ref>` body, after templates inside it are removed"),
    ProbeKind("table", "table cells", False,
              f"longest markup-free segment (at least {MIN_SHORT_CHARACTERS} characters and {MIN_WORDS} words) of a "
              "cell of a `{| ... |}` table, after templates and references are removed"),
]


def normalize(text: str) -> str:
    """Collapse every run of whitespace, no-break spaces included, into one space."""
    return WHITESPACE.sub(" ", text.replace("\u00a0", " ")).strip()


def iter_sources(dump: Path) -> Iterator[Source]:
    """Yield the article candidates of a bzip2 dump (all streams), with ElementTree rather than either tool's reader."""
    try:
        with bz2.open(dump, "rb") as xml:
            page: dict[str, str] = {}
            for event, element in ElementTree.iterparse(xml, events=("end",)):
                tag = element.tag.rsplit("}", 1)[-1]
                if tag in ("title", "ns", "text") and tag not in page:
                    page[tag] = element.text or ""
                elif tag == "id" and "id" not in page:
                    page["id"] = element.text or ""
                elif tag == "redirect":
                    page["redirect"] = "yes"
                elif tag == "page":
                    if page.get("ns") == "0" and "redirect" not in page and page.get("text", "").strip():
                        yield Source(int(page["id"]), page["title"], page["text"])
                    page = {}
                    element.clear()
    except (OSError, EOFError, ElementTree.ParseError) as error:
        raise ResidueError(f"{dump}: cannot read as a bzip2 MediaWiki dump: {error}") from error


def balanced_end(text: str, start: int, opener: str, closer: str) -> int:
    """Return the index just past the `closer` that balances the `opener` at `start`, or len(text) if none does."""
    depth = 0
    position = start
    while position < len(text):
        if text.startswith(opener, position):
            depth += 1
            position += len(opener)
        elif text.startswith(closer, position):
            depth -= 1
            position += len(closer)
            if depth == 0:
                return position
        else:
            position += 1
    return len(text)


def template_spans(text: str) -> list[tuple[int, int]]:
    """Return the [start, end) spans of the outermost `{{...}}` in `text`."""
    spans = []
    position = text.find("{{")
    while position >= 0:
        end = balanced_end(text, position, "{{", "}}")
        spans.append((position, end))
        position = text.find("{{", end)
    return spans


def table_spans(text: str) -> list[tuple[int, int]]:
    """Return the [start, end) spans of the outermost wiki tables, from a line starting `{|` to its `|}` line."""
    spans = []
    depth = 0
    start = 0
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped.startswith("{|"):
            if depth == 0:
                start = offset
            depth += 1
        elif stripped.startswith("|}") and depth:
            depth -= 1
            if depth == 0:
                spans.append((start, offset + len(line)))
        offset += len(line)
    if depth:
        spans.append((start, len(text)))
    return spans


def file_link_spans(text: str) -> list[tuple[int, int]]:
    """Return the [start, end) spans of `[[File:...]]` and `[[Image:...]]` links, nested links included."""
    spans = []
    for match in FILE_LINK_START.finditer(text):
        if spans and match.start() < spans[-1][1]:
            continue  # inside the caption of the previous file link
        spans.append((match.start(), balanced_end(text, match.start(), "[[", "]]")))
    return spans


def blank_out(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """Replace each span of `text` by one NUL, keeping its newlines so that line structure survives."""
    pieces = []
    position = 0
    for start, end in sorted(spans):
        if start < position:
            continue
        pieces.append(text[position:start])
        pieces.append("\x00" + "\n" * text.count("\n", start, end))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def without_templates(text: str) -> str:
    return blank_out(text, template_spans(text))


def without_references(text: str) -> str:
    return REFERENCE.sub("\x00", text)


def longest_segment(fragment: str, min_characters: int) -> Optional[str]:
    """Return the longest markup-free, URL-free piece of `fragment` with enough characters and words, or None."""
    best = None
    fragment = HIDDEN_MARKUP.sub("\x00", LINK_COLON.sub("[[", fragment))
    for piece in SEGMENT_BREAK.split(fragment):
        piece = EDGE_PUNCTUATION.sub("", normalize(piece))
        if len(piece) < min_characters or len(piece.split()) < MIN_WORDS or "://" in piece or "www." in piece:
            continue
        if best is None or len(piece) > len(best):
            best = piece
    return best


def split_parameters(link: str) -> list[str]:
    """Split the inside of `[[...]]` at the `|` that are not inside nested links or templates."""
    parts, depth, current = [], 0, []
    position = 0
    while position < len(link):
        pair = link[position:position + 2]
        if pair in ("[[", "{{"):
            depth += 1
            current.append(pair)
            position += 2
        elif pair in ("]]", "}}"):
            depth -= 1
            current.append(pair)
            position += 2
        elif link[position] == "|" and depth == 0:
            parts.append("".join(current))
            current = []
            position += 1
        else:
            current.append(link[position])
            position += 1
    parts.append("".join(current))
    return parts


def list_probes(wikitext: str) -> Iterator[Probe]:
    spans = template_spans(wikitext) + table_spans(wikitext) + file_link_spans(wikitext)
    text = blank_out(wikitext, spans)
    text = NON_PROSE_TAG.sub("\x00", without_references(COMMENT.sub("\x00", text)))
    for match in LIST_LINE.finditer(text):
        if match.group(0).lower().startswith("#redirect"):
            continue
        segment = longest_segment(match.group(2), MIN_PROSE_CHARACTERS)
        if segment:
            yield Probe("list", segment)


def prose_template_starts(wikitext: str) -> set[int]:
    """Return the offsets of the templates that stand in running prose.

    Those are outermost templates (not an argument of an infobox or another
    template) outside tables, File links, references, comments and tags
    such as <gallery>: places whose content the text policy drops anyway.
    """
    dropped = table_spans(wikitext) + file_link_spans(wikitext)
    for pattern in (REFERENCE, COMMENT, NON_PROSE_TAG):
        dropped += [match.span() for match in pattern.finditer(wikitext)]
    return {start for start, _ in template_spans(wikitext)
            if not any(low <= start < high for low, high in dropped)}


def lang_probes(wikitext: str) -> Iterator[Probe]:
    outside = normalize(LANG_TEMPLATE.sub("\x00", wikitext))
    in_prose = prose_template_starts(wikitext)
    seen = set()
    for match in LANG_TEMPLATE.finditer(wikitext):
        if match.start() not in in_prose:
            continue
        text = normalize((match.group(1) or match.group(2) or "").replace("'''", "").replace("''", ""))
        if len(text) < 2 or text in seen or any(mark in text for mark in "[]<>=&") or text in outside:
            continue
        seen.add(text)
        yield Probe("lang", text)


def number_pattern(value: str) -> re.Pattern[str]:
    """Return a regex that finds `value` as a whole number, also written with thousands commas."""
    plain = value.replace(",", "")
    whole, _, fraction = plain.partition(".")
    grouped = f"{int(whole):,}" if whole.isdigit() else whole
    forms = {plain, grouped + ("." + fraction if fraction else ""), value}
    alternatives = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<![\d.,])(?:{alternatives})(?![\d]|[.,]\d)")


def convert_probes(wikitext: str) -> Iterator[Probe]:
    outside = blank_out(wikitext, [span for span in template_spans(wikitext)
                                   if CONVERT_TEMPLATE.match(wikitext, span[0])])
    in_prose = prose_template_starts(wikitext)
    seen = set()
    for match in CONVERT_TEMPLATE.finditer(wikitext):
        if match.start() not in in_prose:
            continue
        value = match.group(1)
        if value in seen or number_pattern(value).search(outside):
            continue
        seen.add(value)
        yield Probe("convert", value, number=True)


def caption_probes(wikitext: str) -> Iterator[Probe]:
    for start, end in file_link_spans(wikitext):
        parameters = split_parameters(wikitext[start + 2:end - 2])[1:]
        captions = [parameter for parameter in parameters if not IMAGE_OPTION.match(parameter)]
        if captions:
            segment = longest_segment(without_references(without_templates(captions[-1])), MIN_SHORT_CHARACTERS)
            if segment:
                yield Probe("caption", segment)


def reference_probes(wikitext: str) -> Iterator[Probe]:
    for match in REFERENCE.finditer(COMMENT.sub("\x00", wikitext)):
        segment = longest_segment(without_templates(match.group(1) or ""), MIN_PROSE_CHARACTERS)
        if segment:
            yield Probe("reference", segment)


def table_probes(wikitext: str) -> Iterator[Probe]:
    for start, end in table_spans(wikitext):
        table = without_references(without_templates(COMMENT.sub("\x00", wikitext[start:end])))
        for line in table.splitlines():
            line = line.strip()
            if not line or line[0] not in "|!" or line.startswith(("|-", "|}")):
                continue
            # "|+" starts the table caption, a cell like any other for this purpose.
            for cell in re.split(r"\|\||!!", line[2:] if line.startswith("|+") else line[1:]):
                segment = longest_segment(cell, MIN_SHORT_CHARACTERS)
                if segment:
                    yield Probe("table", segment)


PROBE_BUILDERS: list[Callable[[str], Iterator[Probe]]] = [
    list_probes, lang_probes, convert_probes, caption_probes, reference_probes, table_probes,
]


def probes_for(wikitext: str) -> list[Probe]:
    """Return the probes of one article: only those whose presence in an output is unambiguous.

    Segment probes must occur exactly once in the article's wikitext with
    link brackets, link targets, URLs, tags and `''` taken out, so a segment
    repeated elsewhere (in prose as well as in a caption, for example) is
    ambiguous and is left out. Each distinct string counts once.
    """
    source = normalize(JOINING_MARKUP.sub("", HIDDEN_MARKUP.sub("", LINK_COLON.sub("[[", wikitext))))
    probes, seen = [], set()
    for build in PROBE_BUILDERS:
        for probe in build(wikitext):
            if (probe.kind, probe.text) in seen:
                continue
            if not probe.number and probe.kind != "lang" and source.count(probe.text) != 1:
                continue
            seen.add((probe.kind, probe.text))
            probes.append(probe)
    return probes


def found(probe: Probe, output: str) -> bool:
    if probe.number:
        return number_pattern(probe.text).search(output) is not None
    return probe.text in output


def read_output(folder: Path) -> dict[int, str]:
    """Return {page id: text} of an extraction folder of JSON lines."""
    texts = {}
    try:
        for document in iter_documents(folder):
            texts[int(document["id"])] = document["text"]
    except (KeyError, ValueError) as error:
        raise ResidueError(f"{folder}: a JSON line lacks an integer id or a text: {error}") from error
    if not texts:
        raise ResidueError(f"{folder}: no documents found in */wiki_* files")
    return texts


def run_tool(extractor: Extractor, dump: Path, folder: Path, processes: int) -> dict[int, str]:
    """Run one extractor on `dump` into `folder` and return its texts by page id."""
    log.info("Running %s on %s with %d processes", extractor.name, dump.name, processes)
    processes = processes if extractor.supports(processes) else 1
    run = measure(extractor, dump, folder, processes, "1M", folder.with_suffix(".log"), 1800.0, 0.5, 1)
    log.info("%s wrote %d articles, %d characters in %.1f s", extractor.name, run.articles, run.characters, run.wall_s)
    return read_output(folder)


def measure_dump(dump: Path, outputs: dict[str, dict[int, str]]) -> dict:
    """Return the residue densities and probe counts of both tools' outputs for `dump`."""
    sources = {source.page_id: source for source in iter_sources(dump)}
    common = sorted(set(sources) & set(outputs[PROJECT]) & set(outputs[WIKIEXTRACTOR]))
    log.info("%s: %d article candidates in the wikitext; %d written by this project, %d by wikiextractor, %d by both",
             dump.name, len(sources), len(outputs[PROJECT]), len(outputs[WIKIEXTRACTOR]), len(common))
    if not common:
        raise ResidueError(f"{dump.name}: the two outputs share no page ids; were they made from this dump?")

    wikitext_characters = sum(len(sources[page_id].wikitext) for page_id in common)
    residues = {label: {"wikitext": 0, PROJECT: 0, WIKIEXTRACTOR: 0} for label, _ in RESIDUES}
    # (pattern or probe kind, tool) -> up to EXAMPLES_PER_CASE (title, excerpt), one per title.
    residue_examples: dict[tuple[str, str], list[tuple[str, str]]] = {}
    wrong_way: dict[tuple[str, str], list[tuple[str, str]]] = {}
    characters = {PROJECT: 0, WIKIEXTRACTOR: 0}
    probe_counts = {kind.key: {"probes": 0, PROJECT: 0, WIKIEXTRACTOR: 0, "example": None} for kind in PROBE_KINDS}
    probe_cache: dict[str, list[Probe]] = {}

    for number, page_id in enumerate(common, start=1):
        wikitext = sources[page_id].wikitext
        texts = {tool: outputs[tool][page_id] for tool in (PROJECT, WIKIEXTRACTOR)}
        for label, pattern in RESIDUES:
            residues[label]["wikitext"] += len(pattern.findall(wikitext))
            for tool, text in texts.items():
                matches = list(pattern.finditer(text))
                residues[label][tool] += len(matches)
                if matches:
                    excerpt = text[max(0, matches[0].start() - 40):matches[0].end() + 40]
                    add_example(residue_examples, (label, tool), sources[page_id].title, excerpt)
        for tool, text in texts.items():
            characters[tool] += len(text)

        # Copies of one page in the benchmark dump share their wikitext; their probes are built once.
        if wikitext not in probe_cache:
            probe_cache[wikitext] = probes_for(wikitext)
        normalized = {tool: normalize(text) for tool, text in texts.items()}
        for probe in probe_cache[wikitext]:
            counts = probe_counts[probe.kind]
            counts["probes"] += 1
            counts["example"] = counts["example"] or probe.text
            for tool, text in normalized.items():
                kept = found(probe, text)
                counts[tool] += kept
                if kept != next(kind.want_kept for kind in PROBE_KINDS if kind.key == probe.kind):
                    add_example(wrong_way, (probe.kind, tool), sources[page_id].title, probe.text)
        if number % 200 == 0:
            log.info("%s: %d of %d articles compared", dump.name, number, len(common))

    return {
        "dump": dump,
        "articles": len(common),
        "only": {tool: len(set(outputs[tool]) - set(common)) for tool in (PROJECT, WIKIEXTRACTOR)},
        "wikitext_characters": wikitext_characters,
        "characters": characters,
        "residues": residues,
        "probes": probe_counts,
        "residue_examples": residue_examples,
        "wrong_way": wrong_way,
    }


def add_example(examples: dict[tuple[str, str], list[tuple[str, str]]], key: tuple[str, str], title: str, text: str) -> None:
    """Keep (title, text) under `key` unless that key has enough examples or one from the same base title.

    The benchmark dump's copies are titled "X (copy N)"; they count as the same title.
    """
    found_for_key = examples.setdefault(key, [])
    base = re.sub(r" \(copy \d+\)$", "", title)
    if len(found_for_key) < EXAMPLES_PER_CASE and all(base != other for other, _ in found_for_key):
        found_for_key.append((base, text))


def per_10k(count: int, characters: int) -> str:
    return f"{count * 10_000 / characters:.2f}" if characters else "-"


def percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def dump_section(result: dict, previous: Optional[dict]) -> list[str]:
    """Return the Markdown lines of one dump's tables and examples.

    The examples are left out when they equal those of `previous`, the dump
    before it on the page (the benchmark dump repeats the bundled pages).
    """
    characters = result["characters"]
    lines = [
        f"### `{display_path(result['dump'])}`",
        "",
        f"{result['articles']} articles written by both tools; {result['wikitext_characters']:,} characters of their "
        f"wikitext, {characters[PROJECT]:,} characters of text from this project and {characters[WIKIEXTRACTOR]:,} "
        "from wikiextractor."
        + "".join(f" {count} articles only from {tool}." for tool, count in result["only"].items() if count),
        "",
        "Residues, occurrences per 10,000 characters (lower is better; the wikitext column is the source, for scale):",
        "",
        "| pattern | wikitext | this project | wikiextractor | this project (count) | wikiextractor (count) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, counts in result["residues"].items():
        shown = label.replace("|", "\\|")
        lines.append(
            f"| `{shown}` | {per_10k(counts['wikitext'], result['wikitext_characters'])} "
            f"| {per_10k(counts[PROJECT], characters[PROJECT])} | {per_10k(counts[WIKIEXTRACTOR], characters[WIKIEXTRACTOR])} "
            f"| {counts[PROJECT]} | {counts[WIKIEXTRACTOR]} |")

    lines += [
        "",
        "Content probes, share found in the output:",
        "",
        "| probe | should be | probes | this project | wikiextractor | example probe |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for kind in PROBE_KINDS:
        counts = result["probes"][kind.key]
        example = "`" + excerpt(counts["example"] or "", 60).replace("|", "\\|") + "`" if counts["example"] else ""
        lines.append(
            f"| {kind.label} | {'kept' if kind.want_kept else 'dropped'} | {counts['probes']} "
            f"| {percent(counts[PROJECT], counts['probes'])} ({counts[PROJECT]}) "
            f"| {percent(counts[WIKIEXTRACTOR], counts['probes'])} ({counts[WIKIEXTRACTOR]}) | {example} |")
    lines.append("")

    if previous is not None and (previous["wrong_way"], previous["residue_examples"]) == (result["wrong_way"], result["residue_examples"]):
        return lines + ["The examples of probes that went the wrong way and of residues are those of the dump above.", ""]

    labels = {kind.key: kind.label for kind in PROBE_KINDS}
    wanted = {kind.key: kind.want_kept for kind in PROBE_KINDS}
    lines += [
        "<details><summary>Examples: probes that went the wrong way, and where residues occur</summary>",
        "",
        f"Probes of kept content that are missing, or of dropped content that is present, in up to {EXAMPLES_PER_CASE} articles each.",
        "Where a tool missed every probe of a kind, the table says so and no examples are listed.",
        "",
    ]
    for (kind, tool), examples in sorted(result["wrong_way"].items()):
        if wanted[kind] and result["probes"][kind][tool] == 0:
            continue
        state = "missing" if wanted[kind] else "present"
        for title, text in examples:
            lines.append(f"- {tool}, {labels[kind]} {state}: {title}: `{excerpt(text)}`")
    lines += ["", "The first residue in up to 2 articles per pattern and tool:", ""]
    for (label, tool), examples in sorted(result["residue_examples"].items()):
        for title, text in examples[:2]:
            lines.append(f"- {tool}, `{label}`: {title}: `{excerpt(text)}`")
    lines += ["", "</details>", ""]
    return lines


def excerpt(text: str, limit: int = 160) -> str:
    """Return `text` on one line, shortened to `limit` characters, safe inside a Markdown code span."""
    text = text.replace("\n", " \u00b6 ").replace("`", "'")
    return text if len(text) <= limit else text[:limit] + "..."


def write_report(path: Path, results: Sequence[dict], context: dict) -> None:
    lines = [
        "# Markup residues and kept content: this project against wikiextractor",
        "",
        "Written by `scripts/measure_residues.py`; rerun it to refresh this page. It runs both extractors on a dump",
        "and compares the text of the articles both of them wrote.",
        "",
        "## Tools",
        "",
        f"- This project: {context['project']}{context['project_version']}.",
        f"- wikiextractor {context['wikiextractor_version']}: `{context['wikiextractor']}`, with no template expansion,",
        "  as this project does.",
        "",
        "## Method",
        "",
        "**Residues.** Each pattern is counted with a regular expression in the `text` of every article, and the",
        "count is divided by the characters of text that tool wrote, per 10,000. `__X__` is the regex",
        "`__[A-Z]{2,}__` (behaviour switches such as `__NOTOC__`). The same count in the source wikitext shows how",
        "common each pattern is before extraction. Some hits are legitimate text: the text policy keeps",
        "`[[:Category:X]]` as `Category:X`, and `<code>`, `<math>` and `<nowiki>` contents verbatim.",
        "",
        "**Content probes.** Each article's wikitext is read from the dump with Python's ElementTree and",
        "cut into probes by fixed rules: regular expressions and bracket matching, with no part of either",
        "tool's parser. A *markup-free segment* is a piece of text between two markup characters",
        "(`[ ] { } < > | = & newline`, or `''`) once the markup that is never displayed is taken out (the target",
        "of a piped link, the URL of an external link, tags, character references such as `&nbsp;`), with",
        "whitespace collapsed and punctuation trimmed from both ends. Segments that contain a URL are skipped.",
        "",
        "| probe | should be | rule |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {kind.label} | {'kept' if kind.want_kept else 'dropped'} | {kind.rule.replace('|', chr(92) + '|')} |"
              for kind in PROBE_KINDS]
    lines += [
        "",
        "A segment probe is used only when it occurs exactly once in the article's wikitext (with link brackets,",
        "link targets, URLs, tags and `''` taken out), so finding it in the output can only come from the piece it",
        "was taken from; the same string twice in one article counts once. A probe is *found* when it is a",
        "substring of the article's output with whitespace collapsed (a number probe: a whole-number match).",
        "For kept content, higher is better; for dropped content, lower.",
        "",
        "Limits: list items shorter than 20 characters or 3 words are not probed; a `{{convert}}` value could",
        "also appear as the converted value of another `{{convert}}`, which would count as found; only articles",
        "that both tools wrote are compared. wikiextractor 3.1.0 leaves out every line that starts with `*`, `#`",
        "or `;` unless it writes HTML (`compact()` in its `extract.py`), hence its list item share.",
        "",
        "The benchmark dump repeats the bundled pages (see [benchmarks.md](benchmarks.md)), so its shares",
        "should equal those of the bundled dump: a difference would mean that an extractor's output depends on",
        "the run (parallel workers, stream order) rather than on the page.",
        "",
        "## Results",
        "",
    ]
    previous = None
    for result in results:
        lines += dump_section(result, previous)
        previous = result
    lines += [
        f"Measured on {context['date']} (UTC).",
        "",
        "## Command",
        "",
        "```bash",
        "python3 -m venv bench/venv-wikiextractor && bench/venv-wikiextractor/bin/pip install wikiextractor==3.1.0",
        ".venv/bin/python scripts/make_benchmark_dump.py",
        context["command"],
        "```",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dump", type=Path, action="append", help="dump to measure; repeat for several (default: the bundled dump and the benchmark dump)")
    parser.add_argument("--project-output", type=Path, help="read this project's JSON output from this folder instead of running it (one --dump only)")
    parser.add_argument("--wikiextractor-output", type=Path, help="read wikiextractor's JSON output from this folder instead of running it (one --dump only)")
    parser.add_argument("--project-python", type=Path, default=DEFAULT_PROJECT_PYTHON, help="the project's Python (default: .venv/bin/python)")
    parser.add_argument("--project-mode", choices=("auto", "cli", "stand-in"), default="auto",
                        help="run `python -m pipeline.extract` (cli), iter_articles in a child (stand-in), or cli when it exists (auto, the default)")
    parser.add_argument("--project-commit", help="run pipeline/ of this commit (exported with git archive) instead of the working tree")
    parser.add_argument("--wikiextractor-python", type=Path, default=DEFAULT_WIKIEXTRACTOR_PYTHON, help="Python of a virtualenv with wikiextractor 3.1.0 (default: bench/venv-wikiextractor/bin/python)")
    parser.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)), help="processes for each tool (default: every available CPU)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="scratch folder for outputs (default: bench/residues)")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="Markdown file to write (default: docs/residues.md)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # SIGTERM becomes SystemExit so that a running extraction is killed with its workers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    dumps = arguments.dump or [BUNDLED_DUMP] + ([DEFAULT_DUMP] if DEFAULT_DUMP.is_file() else [])
    for dump in dumps:
        if not dump.is_file():
            parser.error(f"dump not found: {dump}")
    if (arguments.project_output or arguments.wikiextractor_output) and len(dumps) != 1:
        parser.error("--project-output and --wikiextractor-output need exactly one --dump")
    if arguments.processes < 1:
        parser.error("--processes must be at least 1")

    try:
        project = wikiextractor = None
        commit = None
        if arguments.project_output is None:
            root = REPO
            if arguments.project_commit:
                root, commit = export_commit(arguments.project_commit, arguments.work_dir.resolve())
            project = project_extractor(arguments.project_python.absolute(), arguments.project_mode, root)
        if arguments.wikiextractor_output is None:
            wikiextractor = wikiextractor_extractor(arguments.wikiextractor_python.absolute())

        results = []
        for dump in dumps:
            dump = dump.resolve()
            work = arguments.work_dir.resolve() / dump.name.split(".")[0]
            outputs = {
                PROJECT: read_output(arguments.project_output) if project is None
                else run_tool(project, dump, work / "project", arguments.processes),
                WIKIEXTRACTOR: read_output(arguments.wikiextractor_output) if wikiextractor is None
                else run_tool(wikiextractor, dump, work / "wikiextractor", arguments.processes),
            }
            results.append(measure_dump(dump, outputs))
    except (BenchmarkError, ResidueError) as error:
        log.error("%s", error)
        return 1

    if project is None:
        project_text = f"output read from `{arguments.project_output}`"
    elif project.mode == "stand-in":
        project_text = ("`pipeline.extract.iter_articles` in one child process (stand-in: `python -m pipeline.extract` "
                        f"did not exist yet), {project_revision(commit)}")
    else:
        project_text = f"`{project.describe()}`, {project_revision(commit)}"
    try:
        executable = os.path.relpath(sys.executable, Path.cwd())
    except ValueError:
        executable = sys.executable
    context = {
        "project": project_text,
        "project_version": "" if project is None else
        " (wikichar " + (package_version(project.python, "wikichar") or "unknown")
        + ", mwparserfromhell " + (package_version(project.python, "mwparserfromhell") or "unknown") + ")",
        "wikiextractor": wikiextractor.describe() if wikiextractor else f"output read from {arguments.wikiextractor_output}",
        "wikiextractor_version": (package_version(arguments.wikiextractor_python.absolute(), "wikiextractor") or "(version unknown)")
        if arguments.wikiextractor_python.is_file() else "(version unknown)",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "command": shlex.join([executable, *sys.argv]),
    }
    arguments.report.parent.mkdir(parents=True, exist_ok=True)
    write_report(arguments.report, results, context)
    log.info("Wrote %s", arguments.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
