"""Turn the wikitext of one article into plain text, with mwparserfromhell.

The text policy (docs/text-policy.md has the full table):

- kept: prose, link labels (or the link target where there is no label),
  external link labels, headings and list items as their own lines, the
  contents of formatting tags, <code>, <math>, <nowiki> and <pre> verbatim,
  and the text of the common prose templates ({{convert}}, {{lang-xx}},
  {{nihongo}}, {{quote}}, date templates, ...; see pipeline/templates.py);
- dropped: every other template, template arguments, references, tables,
  comments, File/Image/Media embeds with their captions, category links,
  interlanguage links, galleries and similar extension tags, behaviour
  switches such as __NOTOC__, bare and unlabelled external URLs;
- HTML entities are decoded (a lone surrogate becomes U+FFFD), no-break
  spaces become plain spaces, and the output has one paragraph, heading or
  list item per line, without blank lines;
- a redirect page and a disambiguation page give "" (redirect_target and
  is_disambiguation tell them apart for counting).

Conversion has two steps. remove_dropped_markup first cuts out, by exact
scanning that follows MediaWiki's own rules, what the policy drops anyway:
comments, references and other dropped extension tags, wiki tables, and
templates that render no text. That is most of a typical article's markup,
so mwparserfromhell's parse (whose tree builder is the slow part) gets far
less to do, and a reference or table that the parser would end in the wrong
place cannot swallow prose. The parse tree of what remains is then walked.

Namespace prefixes come from pipeline/namespaces.py: the dump's siteinfo,
MediaWiki's canonical English names and the usual localized aliases, so a
German dump drops [[Datei:...]] and [[Bild:...]] as well as [[File:...]].
"""

from __future__ import annotations

import functools
import html
import re
from typing import Callable, Optional

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

from pipeline import templates
from pipeline.dump_templates import DumpTemplates, substitute
from pipeline.namespaces import (  # noqa: F401  (re-exported: other modules import them from here)
    CANONICAL_CATEGORY_NAMES,
    CANONICAL_FILE_NAMES,
    CATEGORY_NAMESPACE,
    FILE_NAMESPACE,
    MEDIA_NAMESPACE,
    Namespaces,
    disambiguation_templates,
    interlanguage_prefixes,
    namespace_key,
    redirect_keywords,
)
from pipeline.templates import REMOVED, TemplateCall

# Raised whenever a change to this module changes the text it produces, so
# that builds write new output folders instead of reusing old text.
# Version 2 renders prose templates, cuts tables and references by exact
# scanning, and gives "" for redirect and disambiguation pages.
TEXT_POLICY_VERSION = 4

# Extension tags whose contents never reach the reader as prose. The scan
# before parsing cuts CUT_TAGS. The converter drops all DROPPED_TAGS that
# reach the parser, such as an unclosed tag.
CUT_TAGS = frozenset({
    "ref", "references", "gallery", "imagemap", "timeline", "graph", "mapframe", "maplink",
    "templatestyles", "templatedata", "score", "hiero", "categorytree", "inputbox", "indicator",
    "syntaxhighlight", "source",
})
DROPPED_TAGS = CUT_TAGS | {"includeonly", "noinclude", "section", "style", "script", "table"}
# Tags whose contents are kept character for character, markup included.
VERBATIM_TAGS = frozenset({"nowiki", "pre", "code", "math", "chem", "ce", "tt", "kbd", "samp", "var"})
# Verbatim tags that the scan before parsing steps over untouched, so that a
# "{{" or "<ref>" inside them stays text.
PROTECTED_TAGS = frozenset({"nowiki", "pre", "code", "math", "chem", "ce"})
# Tags that start and end a line when rendered.
BLOCK_TAGS = frozenset({
    "p", "div", "blockquote", "poem", "center", "li", "ul", "ol", "dl", "dt", "dd",
    "h1", "h2", "h3", "h4", "h5", "h6", "tr", "caption", "figure", "figcaption",
})
LINE_BREAK_TAGS = frozenset({"br", "hr"})

# Templates nested deeper than this are dropped whole, rendered or not:
# mwparserfromhell 0.7 stops parsing templates at 100 levels of nesting and
# leaves the rest as text, and no prose template is nested this deep.
MAX_TEMPLATE_DEPTH = 40
# Templates from the dump may call each other; deeper expansion is dropped.
MAX_EXPANSION_DEPTH = 10
# A call with a positional parameter beyond this is not prose; the limit
# keeps "{{x|100000=y}}" from building a huge parameter list.
MAX_POSITIONAL_PARAMETERS = 50

_SCANNED_TAGS = "|".join(sorted(CUT_TAGS | PROTECTED_TAGS, key=len, reverse=True))
# What the scan before parsing looks for: a comment, a scanned tag, a brace
# run that may open a template, or a table start at the start of a line
# (after indentation, as in ":{|").
MARKUP_START = re.compile(
    # Every alternative starts with "<", "{" or "[", so the engine can skip
    # ahead to those characters. The code checks whether "{|" starts a line.
    r"<!--|(?P<braces>\{\{)|<(?P<tag>" + _SCANNED_TAGS + r")(?=[\s/>])|(?P<table>\{\|)|(?P<link>\[\[)",
    re.IGNORECASE,
)
# A wikilink to an article with plain text around it: no namespace, no nested
# markup. Most links of an article are of this kind, and turning them into
# their text before the parse spares mwparserfromhell's builder a node each.
SIMPLE_LINK = re.compile(r"\[\[(?P<target>[^\[\]{}|<>:\n#][^\[\]{}|<>:\n]*)(?:\|(?P<label>[^\[\]{}<>|\n]*))?\]\]")
# Bold and italic quote runs. MediaWiki reads 2 as italic, 3 as bold, 5 as both,
# 4 as an apostrophe then bold, and more than 5 as apostrophes then both.
QUOTE_RUN = re.compile(r"'{2,}")
PROTECTED_REGION = re.compile(
    r"<(" + "|".join(sorted(PROTECTED_TAGS)) + r")\b[^>]*?(?:/>|>.*?(?:</\1\s*>|\Z))", re.IGNORECASE | re.DOTALL)
HIDDEN_REGION = re.compile(r"\x02(\d+)\x03")
LIST_MARKERS = re.compile(r"[*#:]+[ \t]*")
# A bracketed external link, protocol-relative ones ([//host/path label]) included.
# MediaWiki ends the URL at a space or at "<", so a label may follow a tag directly.
EXTERNAL_LINK = re.compile(r"\[(?:(?:https?|ftp|ftps|mailto|news|irc|ircs|gopher|svn|git|sftp|ssh|telnet|worldwind|xmpp):)?//"
                           r"[^\s\[\]<>\"]+(?P<label>[^\[\]\n]*)\]", re.IGNORECASE)
# A heading is a whole line between runs of 1 to 6 equals signs; the shorter run sets the level.
HEADING_LINE = re.compile(r"^(={1,6})(.+?)\1[ \t]*$")
# A list or heading line anywhere in a text: a newline (or the start) and then its marker.
LINE_MARKUP = re.compile(r"(?:^|\n)[*#:=]")
# Text that would start a list item, a heading or preformatted text at the start of a line.
LINE_START_MARKUP = re.compile(r"^[*#:;= \t-]")
# Inside a template: brace runs, and what protects braces from counting.
BRACE_TOKEN = re.compile(
    r"<!--|(?P<open>\{\{+)|(?P<close>\}\}+)|<(?P<tag>" + _SCANNED_TAGS + r")(?=[\s/>])",
    re.IGNORECASE,
)
# Inside a table: nested table starts and ends, and what to step over.
TABLE_TOKEN = re.compile(
    r"<!--|(?P<braces>\{\{)|<(?P<tag>" + _SCANNED_TAGS + r")(?=[\s/>])"
    r"|^[ \t:]*(?P<open>\{\|)|^[ \t]*(?P<close>\|\})",
    re.IGNORECASE | re.MULTILINE,
)
BRACE_RUN = re.compile(r"\{+")
OPENING_TAG = re.compile(r"<[A-Za-z]+\b[^>]*>")
COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)

BEHAVIOUR_SWITCH = re.compile(r"__[^\W\d_a-z]+(?:_[^\W\d_a-z]+)*__")
BOLD_ITALIC_RESIDUE = re.compile(r"'{2,}")
SPACE_RUN = re.compile(r"[ \t\u00a0\u2007\u202f]+")
# Spaces and marks before punctuation: "word \x01." (matched on the reversed text).
REVERSED_SPACE_BEFORE_PUNCTUATION = re.compile(r"([.,;:!?])(?:[ \t]*\x01)+[ \t]*")
EMPTY_BRACKETS = re.compile(r"\(\s*\x01[\s\x01,;]*\)")
# "(\x01; born 1900)" and "(\x01, \x01; born 1900)": the separators go with what was dropped.
SEPARATOR_AFTER_OPENING_BRACKET = re.compile(r"\(\s*\x01[\s\x01,;]*")
# "(French: Nom; \x01)": likewise before a closing bracket.
REVERSED_SEPARATOR_BEFORE_CLOSING_BRACKET = re.compile(r"\)[ \t,;\x01]*\x01[ \t,;]*")
# "Nom; \x01; born": one separator stays.
DOUBLE_SEPARATOR = re.compile(r"([,;])[ \t]*\x01[ \t\x01]*[,;]")
# Lines of a table that mwparserfromhell could not parse as one (a row start,
# a cell or a header cell) are markup, never prose.
TABLE_RESIDUE_LINE = re.compile(r"^(?:\{\||\|[-}+]?|!)")
PARENTHETICAL = re.compile(r"\s*\([^()]*\)$")
# Characters that XML 1.0 cannot carry, so a dump never has them: U+0000 stops
# mwparserfromhell's tokenizer, and U+0001 is the removal mark.
NOT_IN_XML = re.compile(r"[\x00-\x03]")


# --- Page-level checks -----------------------------------------------------


def _title_pattern(name: str) -> str:
    """Return a regex for a page title: first letter in either case, "_" or spaces between words."""
    words = [re.escape(word) for word in name.replace("_", " ").split()]
    first = words[0]
    letter = first[0]
    if letter.lower() != letter.upper():
        first = f"[{letter.lower()}{letter.upper()}]" + first[1:]
    return r"[ _]+".join([first, *words[1:]])


def _languages(language: Optional[str]) -> tuple[str, ...]:
    return (language,) if language else ()


@functools.lru_cache(maxsize=64)
def _redirect_pattern(languages: tuple[str, ...]) -> re.Pattern:
    keywords = "|".join(re.escape(word) for word in sorted(redirect_keywords(languages), key=len, reverse=True))
    return re.compile(
        r"\A\s*#(?:" + keywords + r")[ \t]*:?\s*\[\[\s*([^\[\]|\n]*?)\s*(?:\|[^\[\]\n]*)?\]\]",
        re.IGNORECASE,
    )


def redirect_target(wikitext: str, language: Optional[str] = None) -> Optional[str]:
    """Return the target title if the wikitext is a redirect, else None.

    A redirect starts (after optional whitespace) with "#REDIRECT" or the
    keyword of the wiki's `language` ("#WEITERLEITUNG" on "de"), in any
    case, then an optional colon and spaces, then a wikilink:
    "#redirect:[[Target A|label]]" gives "Target A". English "#REDIRECT"
    works on every wiki; without `language` every language's keyword in
    pipeline/namespaces.py is accepted. The returned title has "_" read as a
    space, and no leading colon or "#section" fragment (a redirect to a
    section of its own page returns the fragment).
    """
    match = _redirect_pattern(_languages(language)).match(wikitext)
    if match is None:
        return None
    target = match.group(1).replace("_", " ").lstrip(":").strip()
    title = target.split("#", 1)[0].strip()
    return title or target


@functools.lru_cache(maxsize=64)
def _disambiguation_pattern(languages: tuple[str, ...]) -> re.Pattern:
    names = "|".join(_title_pattern(name) for name in disambiguation_templates(languages))
    return re.compile(
        r"__DISAMBIG__|\{\{\s*(?:[Tt]emplate\s*:\s*)?(?:" + names + r")\s*(?:\||\}\})"
    )


def is_disambiguation(wikitext: str, language: Optional[str] = None) -> bool:
    """Tell whether the wikitext is a disambiguation page.

    True where the page has the __DISAMBIG__ behaviour switch or calls one
    of the disambiguation templates of English Wikipedia or of the wiki's
    `language` (Begriffsklärung on "de", Homonymie on "fr"; every language's
    without `language`). Set index articles ({{set index article}},
    {{surname}}, {{shipindex}}) are articles, not disambiguation pages.
    A template name matches with its first letter in either case and "_"
    for a space. Calls inside comments do not count.
    """
    pattern = _disambiguation_pattern(_languages(language))
    if pattern.search(wikitext) is None:
        return False
    return pattern.search(COMMENT.sub("", wikitext)) is not None


# --- Exact removal before parsing -------------------------------------------


def remove_dropped_markup(wikitext: str, renders_text: Callable[[str], bool] = templates.renders_text) -> str:
    """Cut out what the text policy drops anyway, following MediaWiki's own rules.

    Removed, each leaving a removal mark (none at the start of a line, where
    a mark would stop a following "*" or "==" from starting a list item or
    heading):
    - comments; an unclosed comment runs to the end of the page;
    - references and the other tags in CUT_TAGS with their contents; a
      reference ends at the first </ref>, and <ref .../> is empty;
    - wiki tables: a table ends at the first "|}" line at its own nesting
      level, and tables nest;
    - templates that render no text (for which `renders_text`, given the
      name as written, is false; by default the registry of
      pipeline/templates.py decides), template arguments ({{{1}}}), and any
      template nested deeper than MAX_TEMPLATE_DEPTH.
    Templates that render text are kept, with the same removal applied to
    their parameters. The contents of <nowiki>, <pre>, <code>, <math> and
    <chem> are not touched. Unbalanced markup (a "{{" never closed, an
    unclosed table or tag) is left for the parser, as MediaWiki shows it as
    text.
    """
    pieces: list[str] = []
    position = 0
    while True:
        match = MARKUP_START.search(wikitext, position)
        if match is None:
            pieces.append(wikitext[position:])
            return "".join(pieces)

        start = match.start()
        pieces.append(wikitext[position:start])
        if match.group("table") and not _starts_line(wikitext, start):
            # "{|" inside a line is text, not a table.
            pieces.append("{|")
            position = start + 2
            continue

        if match.group("link"):
            end, kept = _simple_link(wikitext, start)
        elif match.group("braces"):
            end, kept = _cut_template(wikitext, start, renders_text)
        elif match.group("tag"):
            end, kept = _cut_tag(wikitext, start, match.group("tag").lower())
        elif match.group("table"):
            end = _table_end(wikitext, start)
            kept = "{|" if end is None else None
            end = start + 2 if end is None else end
        else:
            end, kept = _comment_end(wikitext, start), None

        pieces.append(kept if kept is not None else _removal_mark(wikitext, start))
        position = end


def _starts_line(wikitext: str, start: int) -> bool:
    """Tell whether only spaces, tabs and colons (indentation) stand between `start` and the start of its line."""
    position = start - 1
    while position >= 0 and wikitext[position] in " \t:":
        position -= 1
    return position < 0 or wikitext[position] == "\n"


def _drop_line_quotes(line: str) -> str:
    """Remove the quote runs of one line the way MediaWiki reads them, keeping the apostrophes it shows.

    When a line has an odd number of both italic and bold runs, MediaWiki
    reads one bold run as an apostrophe followed by italic. It picks the first
    bold run after a one-letter word, else after a longer word, else after a
    space; that run keeps one apostrophe here.
    """
    runs = list(QUOTE_RUN.finditer(line))
    if not runs:
        return line
    lengths = [len(run.group()) for run in runs]
    italics = sum(1 for length in lengths if length == 2 or length >= 5)
    bolds = sum(1 for length in lengths if length in (3, 4) or length >= 5)
    apostrophe_run = None
    if italics % 2 and bolds % 2:
        choices: dict[str, int] = {}
        for number, run in enumerate(runs):
            if lengths[number] != 3:
                continue
            before = line[run.start() - 1] if run.start() >= 1 else " "
            before_that = line[run.start() - 2] if run.start() >= 2 else " "
            if before == " ":
                kind = "space"
            elif before_that == " ":
                kind = "single"
            else:
                kind = "multiple"
            choices.setdefault(kind, number)
        apostrophe_run = choices.get("single", choices.get("multiple", choices.get("space")))

    pieces = []
    position = 0
    for number, run in enumerate(runs):
        pieces.append(line[position:run.start()])
        if number == apostrophe_run or lengths[number] == 4:
            pieces.append("'")
        elif lengths[number] > 5:
            pieces.append("'" * (lengths[number] - 5))
        position = run.end()
    pieces.append(line[position:])
    return "".join(pieces)


def _drop_line_markup(line: str) -> str:
    """Remove list markers at the start of a line, heading markup and bold and italic quote runs from one line."""
    if line[:1] == "=":
        heading = HEADING_LINE.match(line)
        if heading:
            line = heading.group(2).strip()
    elif line[:1] in ("*", "#", ":"):
        item = LIST_MARKERS.sub("", line, count=1)
        # An item that starts with "----", "=" or "{|" would become a rule, heading or table on its own line.
        if not item.startswith(("----", "=", "{|")):
            line = item
    return _drop_line_quotes(line) if "''" in line else line


def drop_line_markup(text: str) -> str:
    """Remove list markers and bold and italic quotes, line by line, keeping what MediaWiki shows.

    A list item ("*", "#", ":" at the start of a line) or a heading
    ("== History ==") is already a line of its own, so its markers go.
    Definition lines (";") are left to the parser.
    Quote runs go, keeping the apostrophes that MediaWiki shows. Neither is
    text, and without them mwparserfromhell builds no list or formatting
    nodes, which are most of its work on many articles. The contents of
    protected tags (<nowiki>, <code>, <math>, ...) are left as they are.
    """
    if "''" not in text and "//" not in text and not LINE_MARKUP.search(text):
        return text
    hidden: list[str] = []

    def hide(match: re.Match) -> str:
        hidden.append(match.group())
        return f"\x02{len(hidden) - 1}\x03"

    # U+0002 and U+0003 cannot occur in XML 1.0, so they mark the hidden regions safely.
    text = PROTECTED_REGION.sub(hide, text)
    if "//" in text:
        text = EXTERNAL_LINK.sub(_external_link_label, text)
    text = "\n".join(_drop_line_markup(line) for line in text.split("\n"))
    return HIDDEN_REGION.sub(lambda match: hidden[int(match.group(1))], text) if hidden else text


def _external_link_label(match: re.Match) -> str:
    """Return the label of a bracketed external link, or a removal mark when it has none."""
    label = match.group("label").strip()
    return label if label else REMOVED


def _simple_link(wikitext: str, start: int) -> tuple[int, str]:
    """Replace a simple wikilink at `start` by the text it shows; leave any other "[[" to the parser."""
    link = SIMPLE_LINK.match(wikitext, start)
    if link is None:
        return start + 2, "[["
    label = link.group("label")
    if label is None:
        shown = link.group("target")
    elif label.strip():
        shown = label
    else:
        # The pipe trick: [[Paris (France)|]] shows "Paris".
        shown = PARENTHETICAL.sub("", link.group("target"))
    at_line_start = start == 0 or wikitext[start - 1] == "\n"
    # Bold or italic quotes inside a label pair up with quotes outside the link, so the parser must read them together.
    if "''" in shown or (at_line_start and LINE_START_MARKUP.match(shown)):
        return start + 2, "[["
    return link.end(), shown


def _removal_mark(wikitext: str, start: int) -> str:
    return "" if start == 0 or wikitext[start - 1] == "\n" else REMOVED


def _comment_end(wikitext: str, start: int) -> int:
    end = wikitext.find("-->", start + 4)
    return len(wikitext) if end < 0 else end + 3


@functools.lru_cache(maxsize=None)
def _closing_tag(name: str) -> re.Pattern:
    return re.compile(r"</" + name + r"\s*>", re.IGNORECASE)


def _tag_end(wikitext: str, start: int, name: str) -> Optional[int]:
    """Return the end of the element whose opening tag starts at `start`, or None if it is never closed."""
    opening = OPENING_TAG.match(wikitext, start)
    if opening is None:
        return None
    if opening.group().endswith("/>"):
        return opening.end()
    closing = _closing_tag(name).search(wikitext, opening.end())
    return None if closing is None else closing.end()


def _cut_tag(wikitext: str, start: int, name: str) -> tuple[int, Optional[str]]:
    """Return where scanning goes on after the tag at `start`, and the text kept in its place (None: a mark)."""
    end = _tag_end(wikitext, start, name)
    if end is None:
        return start + 1, "<"
    if name in PROTECTED_TAGS:
        return end, wikitext[start:end]
    return end, None


def _template_end(wikitext: str, start: int) -> Optional[tuple[int, int]]:
    """Return the end and the nesting depth of the brace group opening at `start`, or None if unclosed.

    Brace runs match the way MediaWiki's preprocessor matches them: a
    closing run closes the innermost open run, three braces at a time where
    both sides have three or more (a template argument) and two otherwise; a
    single brace left over is text. Comments and scanned tags hide braces.
    """
    open_runs: list[int] = []
    depth = 0
    position = start
    while True:
        token = BRACE_TOKEN.search(wikitext, position)
        if token is None:
            return None
        position = token.end()

        if token.group("open"):
            open_runs.append(len(token.group("open")))
            depth = max(depth, len(open_runs))
        elif token.group("close"):
            closing = len(token.group("close"))
            while closing >= 2 and open_runs:
                used = 3 if min(open_runs[-1], closing) >= 3 else 2
                open_runs[-1] -= used
                closing -= used
                if open_runs[-1] < 2:
                    open_runs.pop()
                if not open_runs:
                    return token.end() - closing, depth
        elif token.group("tag"):
            end = _tag_end(wikitext, token.start(), token.group("tag").lower())
            position = end if end is not None else token.start() + 1
        else:
            position = _comment_end(wikitext, token.start())


def _template_name(inner: str) -> str:
    """Return the name part of a template's inner text (before the first "|"), comments removed."""
    return COMMENT.sub("", inner.split("|", 1)[0]).strip()


def _cut_template(wikitext: str, start: int, renders_text: Callable[[str], bool]) -> tuple[int, Optional[str]]:
    """Return where scanning goes on after the braces at `start`, and the text kept in their place (None: a mark)."""
    matched = _template_end(wikitext, start)
    if matched is None:
        return start + 2, "{{"
    end, depth = matched

    run = BRACE_RUN.match(wikitext, start).end() - start
    inner = wikitext[start + 2:end - 2]
    name = _template_name(inner)
    renders = run == 2 and "{" not in name and renders_text(name)
    if not renders or depth > MAX_TEMPLATE_DEPTH:
        return end, None
    return end, "{{" + remove_dropped_markup(inner, renders_text) + "}}"


def _table_end(wikitext: str, start: int) -> Optional[int]:
    """Return the end of the table whose "{|" is at `start`, or None if it is never closed."""
    level = 1
    position = start + 2
    while True:
        token = TABLE_TOKEN.search(wikitext, position)
        if token is None:
            return None
        position = token.end()

        if token.group("open"):
            level += 1
        elif token.group("close"):
            level -= 1
            if level == 0:
                return token.end()
        elif token.group("braces"):
            matched = _template_end(wikitext, token.start())
            position = matched[0] if matched else token.end()
        elif token.group("tag"):
            end = _tag_end(wikitext, token.start(), token.group("tag").lower())
            position = end if end is not None else token.start() + 1
        else:
            position = _comment_end(wikitext, token.start())


# --- The converter -----------------------------------------------------------


class TemplateLoop(Exception):
    """A template from the dump calls itself, directly or through others."""


class WikitextConverter:
    """Convert article wikitext to plain text under the text policy above.

    `to_text` never returns None: a page whose text is all markup gives "",
    and so do a redirect and, unless `keep_disambiguation`, a disambiguation
    page. Malformed wikitext does not raise (mwparserfromhell parses
    anything), but a pathological page can raise RecursionError or
    MemoryError; callers skip and count such pages.

    `templates` contains the simple templates defined in the dump itself
    (pipeline.dump_templates). A template that the built-in registry does
    not render is expanded from its dump body when there is one, its
    redirects followed. A template that calls itself, directly or through
    others, vanishes whole, as do expansions nested deeper than
    MAX_EXPANSION_DEPTH.
    """

    def __init__(self, namespaces: Namespaces, keep_disambiguation: bool = False,
                 templates: Optional[DumpTemplates] = None):
        self.namespaces = namespaces
        self.keep_disambiguation = keep_disambiguation
        self.templates = templates
        # One language when the wiki is known; every language's words otherwise.
        self.language = next(iter(namespaces.languages)) if len(namespaces.languages) == 1 else None
        self._expanding: list[str] = []

    def to_text(self, wikitext: str) -> str:
        if NOT_IN_XML.search(wikitext):
            wikitext = NOT_IN_XML.sub("", wikitext)

        # A redirect or disambiguation page has no article prose.
        if redirect_target(wikitext, self.language) is not None:
            return ""
        if not self.keep_disambiguation and is_disambiguation(wikitext, self.language):
            return ""

        pieces: list[str] = []
        self._expanding = []
        self._render(self._parse(wikitext), pieces)
        return _tidy("".join(pieces))

    def _renders_text(self, name: str) -> bool:
        """Tell whether a template, by its name as written, renders text: built in, or simple in the dump."""
        if templates.renders_text(name):
            return True
        return self.templates is not None and self.templates.body(_template_title(name)) is not None

    def _parse(self, wikitext: str) -> Wikicode:
        return mwparserfromhell.parse(drop_line_markup(remove_dropped_markup(wikitext, self._renders_text)))

    def _render(self, code: Wikicode, out: list[str]) -> None:
        for node in code.nodes:
            if isinstance(node, Text):
                value = node.value
                # Most text has neither pattern; skipping the regexes then saves a tenth of the render time.
                if "__" in value:
                    value = BEHAVIOUR_SWITCH.sub(REMOVED, value)
                if "''" in value:
                    value = BOLD_ITALIC_RESIDUE.sub("", value)
                out.append(value)
            elif isinstance(node, Wikilink):
                self._render_wikilink(node, out)
            elif isinstance(node, Template):
                out.append(self._render_template(node) or REMOVED)
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
            elif isinstance(node, (Argument, Comment)):
                out.append(REMOVED)
            else:
                # Any node type added by a later mwparserfromhell is dropped, not leaked as markup.
                out.append(REMOVED)

    def _render_fragment(self, code: Wikicode) -> str:
        pieces: list[str] = []
        self._render(code, pieces)
        return "".join(pieces).strip()

    def _render_template(self, template: Template) -> str:
        """Render a prose template from its parameters, themselves rendered as text; "" drops it."""
        name = _plain(template.name)
        if templates.renders_text(name):
            return self._render_builtin(name, template)
        if self.templates is not None:
            body = self.templates.body(_template_title(name))
            if body is not None:
                return self._expand(name, body, template)
        return ""

    def _render_builtin(self, name: str, template: Template) -> str:
        positional: dict[int, str] = {}
        named: dict[str, str] = {}
        for parameter in template.params:
            key = _plain(parameter.name)
            if key.isdigit() and 0 < int(key) <= MAX_POSITIONAL_PARAMETERS:
                positional[int(key)] = self._render_fragment(parameter.value)
            elif not key.isdigit():
                named[key] = self._render_fragment(parameter.value)

        ordered = tuple(positional.get(index, "") for index in range(1, max(positional, default=0) + 1))
        return templates.render(TemplateCall(name, ordered, named))

    def _expand(self, name: str, body: str, template: Template) -> str:
        """Expand a dump template by substituting its arguments, then render the result as wikitext."""
        key = _template_title(name)
        if key in self._expanding:
            raise TemplateLoop(key)
        if len(self._expanding) >= MAX_EXPANSION_DEPTH:
            return ""

        arguments = {}
        for parameter in template.params:
            # MediaWiki strips named arguments but keeps the spaces of positional ones.
            value = str(parameter.value)
            arguments[_plain(parameter.name)] = value if not parameter.showkey else value.strip()

        self._expanding.append(key)
        try:
            pieces: list[str] = []
            self._render(self._parse(substitute(body, arguments)), pieces)
            return "".join(pieces)
        except TemplateLoop:
            if len(self._expanding) > 1:
                raise
            # The outermost call of a loop vanishes whole, as the text policy drops a template that cannot render.
            return ""
        finally:
            self._expanding.pop()

    def _render_wikilink(self, link: Wikilink, out: list[str]) -> None:
        target = _plain(link.title)
        visible_prefix = target.startswith(":")
        if visible_prefix:
            target = target[1:].strip()
        prefix, colon, rest = target.partition(":")
        key = namespace_key(prefix) if colon else ""

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


def _template_title(name: str) -> str:
    """Return a template's title without a "Template:" or "subst:" prefix, as pipeline.dump_templates keys it."""
    return templates.normalize_name(name)


def _plain(code: Wikicode) -> str:
    """Return the text of a link target, template name or tag name, with comments and marks dropped and entities decoded."""
    pieces = []
    for node in code.nodes:
        if isinstance(node, Text):
            pieces.append(node.value.replace(REMOVED, ""))
        elif isinstance(node, HTMLEntity):
            pieces.append(html.unescape(str(node)))
    return "".join(pieces).strip()


def _tidy(text: str) -> str:
    """Normalise whitespace and remove the marks that dropped markup left behind."""
    # Each of these patterns needs a removal mark. Two of them run on the
    # reversed text, where they start with a literal character that the
    # regex engine finds quickly. Run forwards, they took a tenth of all
    # extraction time.
    if REMOVED in text:
        text = EMPTY_BRACKETS.sub("", text)
        text = SEPARATOR_AFTER_OPENING_BRACKET.sub("(", text)
        text = REVERSED_SEPARATOR_BEFORE_CLOSING_BRACKET.sub(")", text[::-1])[::-1]
        text = DOUBLE_SEPARATOR.sub(r"\1", text)
        text = REVERSED_SPACE_BEFORE_PUNCTUATION.sub(r"\1", text[::-1])[::-1]
        text = text.replace(REMOVED, "")
    text = SPACE_RUN.sub(" ", text.replace("\r", "\n"))
    lines = (line.strip() for line in text.split("\n"))
    # A line with no letter or digit is what dropped templates left of a sentence (".", ", ;").
    return "\n".join(line for line in lines
                     if line and not TABLE_RESIDUE_LINE.match(line) and any(character.isalnum() for character in line))
