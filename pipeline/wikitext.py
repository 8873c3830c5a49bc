"""Turn the wikitext of one article into plain text, with mwparserfromhell.

The text policy (docs/text-policy.md has the full table):

- kept: prose, link labels (or the link target where there is no label),
  external link labels, headings and list items as their own lines, the
  contents of formatting tags, <code>, <math>, <nowiki> and <pre> verbatim;
- dropped: templates, template arguments, references, tables, comments,
  File/Image/Media embeds with their captions, category links,
  interlanguage links, galleries and similar extension tags, behaviour
  switches such as __NOTOC__, bare and unlabelled external URLs;
- HTML entities are decoded (a lone surrogate becomes U+FFFD), no-break
  spaces become plain spaces, and the output has one paragraph, heading or
  list item per line, without blank lines.

Namespace prefixes come from the dump's own siteinfo (localized names) plus
MediaWiki's canonical English names, so a German dump drops
[[Datei:...]] as well as [[File:...]].
"""

from __future__ import annotations

import functools
import gzip
import html
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Mapping

import mwparserfromhell
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)
from mwparserfromhell.wikicode import Wikicode

# Raised whenever a change to this module changes the text it produces, so
# that builds write new output folders instead of reusing old text.
TEXT_POLICY_VERSION = 1

# Namespace ids of MediaWiki's built-in namespaces that the policy needs.
MEDIA_NAMESPACE = -2
FILE_NAMESPACE = 6
CATEGORY_NAMESPACE = 14

# Canonical names work on every wiki whatever its language; "Image" is the
# old name of File that articles still use widely.
CANONICAL_FILE_NAMES = ("File", "Image", "Media")
CANONICAL_CATEGORY_NAMES = ("Category",)

# Tags whose contents never reach the reader as prose.
DROPPED_TAGS = frozenset({
    "ref", "references", "gallery", "imagemap", "timeline", "graph", "mapframe", "maplink",
    "templatestyles", "templatedata", "score", "hiero", "categorytree", "inputbox", "indicator",
    "includeonly", "noinclude", "section", "style", "script", "table", "syntaxhighlight", "source",
})
# Tags whose contents are kept character for character, markup included.
VERBATIM_TAGS = frozenset({"nowiki", "pre", "code", "math", "chem", "ce", "tt", "kbd", "samp", "var"})
# Tags that start and end a line when rendered.
BLOCK_TAGS = frozenset({
    "p", "div", "blockquote", "poem", "center", "li", "ul", "ol", "dl", "dt", "dd",
    "h1", "h2", "h3", "h4", "h5", "h6", "tr", "caption", "figure", "figcaption",
})
LINE_BREAK_TAGS = frozenset({"br", "hr"})
# Removed nodes leave this mark, so that spaces before punctuation and empty
# brackets that they leave behind can be cleaned up. XML 1.0 cannot carry
# U+0000, so it never occurs in dump text.
REMOVED = "\x00"

BEHAVIOUR_SWITCH = re.compile(r"__[^\W\d_a-z]+(?:_[^\W\d_a-z]+)*__")
BOLD_ITALIC_RESIDUE = re.compile(r"'{2,}")
SPACE_RUN = re.compile(r"[ \t\u00a0\u2007\u202f]+")
SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]*(?:\x00[ \t]*)+(?=[.,;:!?])")
EMPTY_BRACKETS = re.compile(r"\(\s*\x00[\s\x00,;]*\)")
SEPARATOR_AFTER_OPENING_BRACKET = re.compile(r"\(\s*(?:\x00\s*)+[,;]\s*")
# Lines of a table that mwparserfromhell could not parse as one (a row start,
# a cell or a header cell) are markup, never prose.
TABLE_RESIDUE_LINE = re.compile(r"^(?:\{\||\|[-}+]?|!)")
PARENTHETICAL = re.compile(r"\s*\([^()]*\)$")


def _namespace_key(name: str) -> str:
    """Normalise a namespace name for comparison: MediaWiki ignores case and treats _ as a space."""
    return " ".join(name.replace("_", " ").split()).casefold()


@functools.lru_cache(maxsize=1)
def interlanguage_prefixes() -> frozenset[str]:
    """Return the language codes that Wikimedia projects use as interlanguage link prefixes.

    Read from the bundled namespace table of 841 Wikimedia wikis (2023-09):
    every language subdomain of a Wikipedia or sister project, such as
    "de", "simple" or "zh-min-nan".
    """
    projects = ("wikipedia.org", "wiktionary.org", "wikivoyage.org", "wikibooks.org",
                "wikiquote.org", "wikisource.org", "wikinews.org", "wikiversity.org")
    not_languages = {"www", "beta", "test", "test2", "species", "meta", "commons", "incubator"}
    table = resources.files("pipeline.resources").joinpath("mediawiki_project_namespace_map-2023-09.json.gz")
    prefixes = set()
    with table.open("rb") as compressed, gzip.open(compressed, "rt", encoding="utf-8") as lines:
        for line in lines:
            hostname = json.loads(line)["hostname"]
            subdomain, _, domain = hostname.partition(".")
            if domain in projects and subdomain not in not_languages:
                prefixes.add(_namespace_key(subdomain))
    return frozenset(prefixes)


@dataclass(frozen=True)
class Namespaces:
    """The link prefixes that the text policy drops, normalised with _namespace_key."""

    file: frozenset[str]
    category: frozenset[str]
    interlanguage: frozenset[str]

    @classmethod
    def from_site_info(cls, names: Mapping[int, str]) -> "Namespaces":
        """Build the prefixes from a dump's namespace table (id -> localized name).

        A siteinfo without namespaces still gets the canonical English names.
        """
        file_names = [*CANONICAL_FILE_NAMES, names.get(FILE_NAMESPACE, ""), names.get(MEDIA_NAMESPACE, "")]
        category_names = [*CANONICAL_CATEGORY_NAMES, names.get(CATEGORY_NAMESPACE, "")]
        local_names = {_namespace_key(name) for name in names.values() if name}
        return cls(
            file=frozenset(_namespace_key(name) for name in file_names if name),
            category=frozenset(_namespace_key(name) for name in category_names if name),
            # A local namespace such as "Wikipedia:" or "WP:" is never a language.
            interlanguage=interlanguage_prefixes() - local_names,
        )

    @classmethod
    def english(cls) -> "Namespaces":
        return cls.from_site_info({MEDIA_NAMESPACE: "Media", FILE_NAMESPACE: "File", CATEGORY_NAMESPACE: "Category"})


class WikitextConverter:
    """Convert article wikitext to plain text under the text policy above.

    `to_text` never returns None: a page whose text is all markup gives "".
    Malformed wikitext does not raise (mwparserfromhell parses anything), but
    a pathological page can raise RecursionError or MemoryError; callers skip
    and count such pages.
    """

    def __init__(self, namespaces: Namespaces):
        self.namespaces = namespaces

    def to_text(self, wikitext: str) -> str:
        pieces: list[str] = []
        self._render(mwparserfromhell.parse(wikitext), pieces)
        return _tidy("".join(pieces))

    def _render(self, code: Wikicode, out: list[str]) -> None:
        for node in code.nodes:
            if isinstance(node, Text):
                out.append(BOLD_ITALIC_RESIDUE.sub("", BEHAVIOUR_SWITCH.sub(REMOVED, node.value)))
            elif isinstance(node, Wikilink):
                self._render_wikilink(node, out)
            elif isinstance(node, Tag):
                self._render_tag(node, out)
            elif isinstance(node, HTMLEntity):
                out.append(html.unescape(str(node)))
            elif isinstance(node, Heading):
                out.append("\n")
                self._render(node.title, out)
                out.append("\n")
            elif isinstance(node, ExternalLink):
                if node.title is not None and str(node.title).strip():
                    self._render(node.title, out)
                else:
                    out.append(REMOVED)
            elif isinstance(node, (Template, Argument, Comment)):
                out.append(REMOVED)
            else:
                # Any node type added by a later mwparserfromhell is dropped, not leaked as markup.
                out.append(REMOVED)

    def _render_wikilink(self, link: Wikilink, out: list[str]) -> None:
        target = _plain(link.title)
        visible_prefix = target.startswith(":")
        if visible_prefix:
            target = target[1:].strip()
        prefix, colon, rest = target.partition(":")
        key = _namespace_key(prefix) if colon else ""

        # [[File:..]], [[Category:..]] and [[de:..]] are embeds or page metadata,
        # but [[:File:..]] and [[:Category:..]] are ordinary visible links.
        if key and not visible_prefix and (
            key in self.namespaces.file or key in self.namespaces.category or key in self.namespaces.interlanguage
        ):
            out.append(REMOVED)
            return

        if link.text is None:
            out.append(target)
        elif str(link.text).strip():
            self._render(link.text, out)
        else:
            # The pipe trick: [[Paris (France)|]] shows "Paris", [[Help:Contents|]] shows "Contents".
            shown = rest if key else target
            out.append(PARENTHETICAL.sub("", shown))

    def _render_tag(self, tag: Tag, out: list[str]) -> None:
        name = _plain(tag.tag).lower()
        if tag.wiki_markup and name in ("li", "dt", "dd"):
            # A list marker (*, #, ;, :) starts a line; the item's text follows it.
            out.append("\n")
            return
        if name in LINE_BREAK_TAGS:
            out.append("\n")
            return
        if name in DROPPED_TAGS or name in ("td", "th"):
            out.append(REMOVED)
            return
        if tag.self_closing or tag.contents is None:
            return
        if name in VERBATIM_TAGS:
            out.append(html.unescape(str(tag.contents)))
            return

        block = name in BLOCK_TAGS
        if block:
            out.append("\n")
        self._render(tag.contents, out)
        if block:
            out.append("\n")


def _plain(code: Wikicode) -> str:
    """Return the text of a link target or tag name with comments dropped and entities decoded."""
    pieces = []
    for node in code.nodes:
        if isinstance(node, Text):
            pieces.append(node.value)
        elif isinstance(node, HTMLEntity):
            pieces.append(html.unescape(str(node)))
    return "".join(pieces).strip()


def _tidy(text: str) -> str:
    """Normalise whitespace and remove the marks that dropped nodes left behind."""
    text = EMPTY_BRACKETS.sub("", text)
    text = SEPARATOR_AFTER_OPENING_BRACKET.sub("(", text)
    text = SPACE_BEFORE_PUNCTUATION.sub("", text)
    text = text.replace(REMOVED, "")
    lines = (SPACE_RUN.sub(" ", line).strip() for line in text.replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line and not TABLE_RESIDUE_LINE.match(line))

