"""Wikitext to plain text: a table of cases, and the shared hard cases."""

from __future__ import annotations

import json

import pytest

from pipeline.dump_templates import DumpTemplates
from pipeline.wikitext import (
    Namespaces,
    WikitextConverter,
    is_disambiguation,
    redirect_target,
    remove_dropped_markup,
)

from conftest import DATA

ENGLISH = WikitextConverter(Namespaces.english())
GERMAN = WikitextConverter(Namespaces.from_site_info({-2: "Medium", 6: "Datei", 14: "Kategorie", 4: "Wikipedia"}))

CASES = [
    # (name, wikitext, expected)
    ("plain prose", "Just text.", "Just text."),
    ("link label kept", "A [[Target page|label]] here.", "A label here."),
    ("link without label", "A [[Target page]] here.", "A Target page here."),
    ("link trail", "Two [[bus]]es left.", "Two buses left."),
    ("pipe trick", "See [[Paris (France)|]] now.", "See Paris now."),
    ("bold and italic", "'''Bold''' and ''italic'' words.", "Bold and italic words."),
    ("possessive after italic", "The ''Iliad'''s plot.", "The Iliad's plot."),
    ("apostrophe after one-letter word", "''Chanson de l'''amour here.", "Chanson de l'amour here."),
    ("four quotes keep one", "A ''''word'''' here.", "A 'word' here."),
    ("six quotes keep one", "A ''''''x'''''' b.", "A 'x' b."),
    ("quotes in code kept", "Use <code>''x''</code> now.", "Use ''x'' now."),
    ("quotes across a link", "In ''[[Republic (Plato)|''Republic'']]'' he.", "In Republic he."),
    ("file caption with odd quotes", "A [[File:X.svg|thumb|Tree of '''x: y]] B.", "A B."),
    ("unbalanced bold", "'''Bold never closed.", "Bold never closed."),
    ("template dropped", "Before {{cite web|url=x}} after.", "Before after."),
    ("template before full stop", "A claim{{citation needed|date=May 2020}}.", "A claim."),
    ("infobox over lines", "{{Infobox person\n| name = A\n| born = 1900\n}}\nA was born.", "A was born."),
    ("reference dropped", "Fact.<ref>Source, p. 4.</ref> More.", "Fact. More."),
    ("self-closing reference", 'Fact.<ref name="a" /> More.', "Fact. More."),
    ("references list dropped", "Text.\n== Notes ==\n<references />", "Text.\nNotes"),
    ("file embed with caption", "A [[File:X.jpg|thumb|A [[caption]] here]] B.", "A B."),
    ("image alias", "A [[Image:X.png|200px]] B.", "A B."),
    ("file name case-insensitive", "A [[file:X.png|thumb|c]] B.", "A B."),
    ("visible file link", "See [[:File:X.png|the map]].", "See the map."),
    ("category dropped", "Text.\n[[Category:Things|sort key]]", "Text."),
    ("visible category link", "In [[:Category:Things]].", "In Category:Things."),
    ("interlanguage dropped", "Text.\n[[de:Beispiel]]\n[[zh-min-nan:Lē]]", "Text."),
    ("interwiki with colon kept", "See [[:de:Beispiel|German]].", "See German."),
    ("sister project link kept", "See [[wikt:word|word]].", "See word."),
    ("external link label", "Read [http://example.org the site] now.", "Read the site now."),
    ("external link without label", "Read [http://example.org] now.", "Read now."),
    ("protocol-relative link label", "See [//tools.example.org/map?x=1 the map] now.", "See the map now."),
    ("link label after a tag", "A [//t.org/p?a=1<small>Click</small>.] b", "A Click. b"),
    ("punctuation-only line dropped", "Text.\n{{cite book|title=X}}.\nMore.", "Text.\nMore."),
    ("table dropped", "Before.\n{| class=wikitable\n|-\n| a || b\n|}\nAfter.", "Before.\nAfter."),
    ("html table dropped", "Before.<table><tr><td>cell</td></tr></table> After.", "Before. After."),
    ("comment dropped", "A <!-- hidden --> B.", "A B."),
    ("heading own line", "Intro.\n== History ==\nText.", "Intro.\nHistory\nText."),
    ("heading without spaces", "Intro.\n==History==\nText.", "Intro.\nHistory\nText."),
    ("unbalanced heading", "Intro.\n=== History ==\nText.", "Intro.\n= History\nText."),
    ("heading with link", "=== The [[Moon]] ===\nText.", "The Moon\nText."),
    ("bulleted list", "Items:\n* one\n* two", "Items:\none\ntwo"),
    ("list item starting with dashes", "* --------, Title of a book.", "--------, Title of a book."),
    ("indented line", ": Indented text.", "Indented text."),
    ("numbered nested list", "# one\n## one a\n# two", "one\none a\ntwo"),
    ("definition list", "; Term : Definition", "Term\nDefinition"),
    ("entities decoded", "Fish &amp; chips &lt;3 &mdash; yes&#33;", "Fish & chips <3 — yes!"),
    ("no-break space", "5&nbsp;km", "5 km"),
    ("lone surrogate entity", "A &#xD83D; B", "A \ufffd B"),
    ("magic word dropped", "__NOTOC__\nText. __NOEDITSECTION__", "Text."),
    ("math kept as source", "Area <math>\\pi r^2</math>.", "Area \\pi r^2."),
    ("code kept verbatim", "Type <code>a {{b}} c</code>.", "Type a {{b}} c."),
    ("nowiki kept verbatim", "Write <nowiki>[[x]]</nowiki>.", "Write [[x]]."),
    ("formatting tags unwrapped", "A <small>small</small> <span style='x'>span</span> B.", "A small span B."),
    ("line break tag", "Line one<br/>line two", "Line one\nline two"),
    ("gallery dropped", "A\n<gallery>\nFile:A.jpg|cap\n</gallery>\nB", "A\nB"),
    ("empty brackets removed", "Name ({{IPA-fr|nɔ̃}}) is.", "Name is."),
    ("separator after removal", "Name ({{IPA|x}}; born 1900) is.", "Name (born 1900) is."),
    ("blank lines collapsed", "One.\n\n\n\nTwo.", "One.\nTwo."),
    ("only markup gives empty text", "{{Infobox}}\n[[Category:X]]", ""),
]


@pytest.mark.parametrize("name, wikitext, expected", CASES, ids=[case[0] for case in CASES])
def test_wikitext_case(name, wikitext, expected):
    assert ENGLISH.to_text(wikitext) == expected


@pytest.mark.parametrize("wikitext, expected", [
    ("A [[Datei:X.jpg|mini|Bild]] B.", "A B."),
    ("A [[Kategorie:Dinge]] B.", "A B."),
    ("A [[File:X.jpg|thumb|c]] B.", "A B."),
    ("A [[Wikipedia:Hilfe|Hilfe]] B.", "A Hilfe B."),
])
def test_localized_namespaces(wikitext, expected):
    assert GERMAN.to_text(wikitext) == expected


def test_localized_prefix_not_dropped_on_english_wiki():
    assert ENGLISH.to_text("A [[Datei:X]] B.") == "A Datei:X B."


# Shared hard cases that the converter still gets wrong, with the reason.
# strict=True makes a fix show up. None are left; keep the mechanism for new ones.
KNOWN_GAPS: dict[str, str] = {}


def _hard_cases():
    for line in (DATA / "extraction-cases.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        if case["input_kind"] != "wikitext":
            continue
        marks = [pytest.mark.xfail(reason=KNOWN_GAPS[case["id"]], strict=True)] if case["id"] in KNOWN_GAPS else []
        yield pytest.param(case["input"], case["expected"], id=case["id"], marks=marks)


@pytest.mark.parametrize("wikitext, expected", list(_hard_cases()))
def test_hard_case(wikitext, expected):
    # The cases' expected texts ignore whitespace differences.
    assert " ".join(GERMAN.to_text(wikitext).split()) == " ".join(expected.split())


# --- Whole kinds of fault behind the hard cases, with variations ---

FAULT_KINDS = [
    # Prose templates rendered from their parameters.
    ("quote with attribution", "Said:\n{{quote|Text of it.|A. Author|A Book}}\nAfter.",
     "Said:\nText of it.\n— A. Author, A Book\nAfter."),
    ("quote named text", "{{Quote|text=Named [[quote|text]].<ref>x</ref>}}", "Named text."),
    ("blockquote alias", "{{blockquote|Kept in full.}}", "Kept in full."),
    ("cquote named author", "{{cquote|Pulled.|author=Someone}}", "Pulled.\n— Someone"),
    ("quote with nested lang", "{{quote|{{lang|fr|Liberté}} was the cry.}}", "Liberté was the cry."),
    ("nihongo without lead", "The {{nihongo|Tokyo Tower|東京タワー|Tōkyō Tawā}} stands.",
     "The Tokyo Tower (東京タワー, Tōkyō Tawā) stands."),
    ("nihongo japanese only", "A {{nihongo||東京|Tōkyō}} b.", "A 東京 (Tōkyō) b."),
    ("nihongo3 romaji first", "{{nihongo3|Tokyo|東京|Tōkyō}}", "Tōkyō (東京, Tokyo)"),
    ("lang-xx russian", "Moscow ({{lang-ru|Москва}}) is big.", "Moscow (Russian: Москва) is big."),
    ("lang-xx with translit", "X ({{lang-ru|Москва|tr=Moskva}})", "X (Russian: Москва, romanized: Moskva)"),
    ("lang-xx region subtag", "X ({{lang-sr-Latn|Beograd}})", "X (Serbian: Beograd)"),
    ("lang-xx unknown code", "X ({{lang-qqq|text}})", "X (text)"),
    ("langx", "X ({{langx|hy|Երևան}})", "X (Armenian: Երևան)"),
    ("lang plain", "The {{lang|de|Autobahn}} is fast.", "The Autobahn is fast."),
    ("lang then ipa", "Paris ({{lang-fr|Paris}}; {{IPA-fr|paʁi}}) is.", "Paris (French: Paris) is."),
    ("ipa dropped without hole", "Ann ({{IPAc-en|æ|n}}; {{respell|AN}}; born 1990) is.", "Ann (born 1990) is."),
    ("ipa only in brackets", "Ann ({{IPAc-en|æ|n}} {{audio|Ann.ogg|listen}}) is.", "Ann is."),
    ("ipa between separators", "Ann ({{lang-fr|Anne}}; {{IPA-fr|an}}; born 1990)", "Ann (French: Anne; born 1990)"),
    ("nowrap", "It cost {{nowrap|5 million}} euros.", "It cost 5 million euros."),
    ("sortname", "Won by {{sortname|Ada|Lovelace}}.", "Won by Ada Lovelace."),
    ("convert basic", "At {{convert|1300|mi|km}}, Alabama", "At 1300 mi (2100 km), Alabama"),
    ("convert alias cvt", "{{cvt|5|km}} long", "5 km (3.1 mi) long"),
    ("convert upper case", "{{Convert|100|m|ft}}", "100 m (330 ft)"),
    ("convert range", "{{convert|2|-|3|m}}", "2–3 m (6.6–9.8 ft)"),
    ("convert abbr off", "{{convert|1|mi|km|abbr=off}}", "1 mile (1.6 kilometres)"),
    ("convert inside nowrap", "{{nowrap|{{convert|37|C|F}}}}", "37 °C (99 °F)"),
    ("birth and death dates", "({{birth date|1874|9|16|df=y}} – {{death date and age|1922|11|22|1874|9|16|df=y}})",
     "(16 September 1874 – 22 November 1922 (aged 48))"),
    ("birth date month first", "Born {{birth date|1874|9|16}}.", "Born September 16, 1874."),
    ("birth date and age without age", "Born {{birth date and age|1990|5|1|df=yes}}.", "Born 1 May 1990."),
    ("start date year month", "Since {{start date|1993|2}}.", "Since February 1993."),
    ("as of", "{{as of|2020|5}}, it had 10 staff.", "As of May 2020, it had 10 staff."),
    ("circa", "Built {{circa|1900}}.", "Built c. 1900."),
    ("dash templates", "1990{{ndash}}1995 and a{{snd}}b", "1990–1995 and a – b"),
    ("flag", "Born in {{flag|France}}.", "Born in France."),
    ("interlanguage link template", "See {{ill|Ziel|de|Ziel (Begriff)}}.", "See Ziel."),
    ("template prefix and subst", "{{Template:Nowrap|a b}} {{subst:nowrap|c}}", "a b c"),
    ("unknown template dropped", "A {{Infobox ship begin}} B{{efn|note}}.", "A B."),
    # Deep and recursive templates.
    ("registered template nested too deep", "Before.\n" + "{{nowrap|" * 60 + "x" + "}}" * 60 + "\nAfter.",
     "Before.\nAfter."),
    ("unknown template nested 150 deep", "Before. " + "{{t|p=" * 150 + "x" + "}}" * 150 + " After.", "Before. After."),
    ("self-recursive call", "Start. {{Loop|1}} End.", "Start. End."),
    ("unclosed template stays text", "A {{ b c.", "A {{ b c."),
    # References end at the first </ref>; comments and nowiki protect their contents.
    ("ref name with slash", 'A.<ref name="x/y">Src</ref> B.<ref name="x/y" /> C.', "A. B. C."),
    ("ref ends at first close", "A.<ref>one</ref> kept <ref>two</ref> B.", "A. kept B."),
    ("ref with braces inside", "A.<ref>{{cite web|title=}}x}}</ref> B.", "A. B."),
    ("comment with template opener", "A.\n<!-- {{open\n-->\nB.", "A.\nB."),
    ("unclosed comment runs to end", "A. <!-- never closed\nB.", "A."),
    ("nowiki protects ref", "Type <nowiki><ref>x</ref></nowiki> here.", "Type <ref>x</ref> here."),
    ("math keeps braces", "<math>\\frac{a}{b}}</math> ok", "\\frac{a}{b}} ok"),
    # Tables end at the first |} line at their own level, and nest.
    ("nested tables", "A.\n{|\n|x\n{|\n|inner\n|}\n|y\n|}\nB.", "A.\nB."),
    ("table closer inside template", "A.\n{|\n|{{tl|\n|}}\n|z\n|}\nB.", "A.\nB."),
    ("indented table", "A.\n:{| class=x\n|cell\n|}\nB.", "A.\nB."),
    ("table cells never leak", "{|\n!rowspan=2|Season!!Cup\n|-\n|2001||24\n|}\nText.", "Text."),
    # Characters that XML cannot carry.
    ("nul character", "A\x00B [[c]].", "AB c."),
]


@pytest.mark.parametrize("name, wikitext, expected", FAULT_KINDS, ids=[case[0] for case in FAULT_KINDS])
def test_fault_kind(name, wikitext, expected):
    assert ENGLISH.to_text(wikitext) == expected


@pytest.mark.parametrize("wikitext, expected", [
    ("Keep {{convert|1|m}} <!-- c --> {{cite web|x}}.", "Keep {{convert|1|m}} \x01 \x01."),
    ("{{Infobox\n|a=b}}\n'''X''' is.", "\n'''X''' is."),
    ("A<ref>x</ref>.", "A\x01."),
    ("<nowiki>{{x}}</nowiki>", "<nowiki>{{x}}</nowiki>"),
    ("{{quote|a<ref>r</ref>b}}", "{{quote|a\x01b}}"),
    ("{{{1|default}}} text", " text"),
])
def test_remove_dropped_markup(wikitext, expected):
    assert remove_dropped_markup(wikitext) == expected


# --- Redirects and disambiguation pages ---

@pytest.mark.parametrize("wikitext, language, expected", [
    ("#REDIRECT [[Target A]]", None, "Target A"),
    ("#REDIRECT[[Target A]]", "en", "Target A"),
    ("#redirect [[Target A]]", "en", "Target A"),
    ("#REDIRECT:[[Target A]]", "en", "Target A"),
    ("#Redirect [[Target A|see target]]\n\n{{R from alternative name}}", "en", "Target A"),
    ("  #REDIRECT [[Target_A#History]]", "en", "Target A"),
    ("#WEITERLEITUNG [[Ziel]]", "de", "Ziel"),
    ("#weiterleitung [[Ziel]]", None, "Ziel"),
    ("#REDIRECT [[Ziel]]", "de", "Ziel"),
    ("#REDIRECTION [[Modèle:Lien web]]", "fr", "Modèle:Lien web"),
    ("#REDIRECCIÓN [[Destino]]", "es", "Destino"),
    ("#RINVIA [[Destinazione]]", "it", "Destinazione"),
    ("#REDIRECIONAMENTO [[Destino]]", "pt", "Destino"),
    ("#DOORVERWIJZING [[Doel]]", "nl", "Doel"),
    ("#ПЕРЕНАПРАВЛЕНИЕ [[Цель]]", "ru", "Цель"),
    ("#перенаправление [[Цель]]", "ru", "Цель"),
    ("#PATRZ [[Cel]]", "pl", "Cel"),
    ("#PRZEKIERUJ [[Cel]]", "pl", "Cel"),
    ("#転送 [[目標]]", "ja", "目標"),
    ("#WEITERLEITUNG [[Ziel]]", "fr", None),
    ("Text #REDIRECT [[Target]]", None, None),
    ("# REDIRECT [[Target]]", None, None),
    ("#REDIRECT Target", None, None),
    ("'''Article''' text.", None, None),
])
def test_redirect_target(wikitext, language, expected):
    assert redirect_target(wikitext, language) == expected


@pytest.mark.parametrize("wikitext, language, expected", [
    ("'''Mercury''' may refer to:\n* [[Mercury (planet)]]\n\n{{disambiguation}}", None, True),
    ("A may refer to:\n{{Disambiguation|geo|hndis}}", "en", True),
    ("A\n{{disambig}}", "en", True),
    ("A\n{{dab}}", "en", True),
    ("A\n{{hndis|Smith, John}}", "en", True),
    ("A\n{{geodis}}", "en", True),
    ("A\n{{Template:Disambiguation}}", "en", True),
    ("A\n__DISAMBIG__", "en", True),
    ("A\n{{Begriffsklärung}}", "de", True),
    ("A\n{{begriffsklärung}}", None, True),
    ("A\n{{Homonymie}}", "fr", True),
    ("A\n{{Desambiguación}}", "es", True),
    ("A\n{{Disambigua}}", "it", True),
    ("A\n{{Begriffsklärung}}", "fr", False),
    ("A list of ships.\n{{set index article}}", "en", False),
    ("A list of people.\n{{surname}}", "en", False),
    ("Text. {{Disambiguation needed}}", "en", False),
    ("Text. <!-- {{disambiguation}} -->", "en", False),
    ("For the film, see [[X (film)]].\n{{about|the town}}", "en", False),
])
def test_is_disambiguation(wikitext, language, expected):
    assert is_disambiguation(wikitext, language) is expected


def test_disambiguation_page_kept_on_request():
    converter = WikitextConverter(Namespaces.english(), keep_disambiguation=True)
    assert converter.to_text("'''A''' may refer to:\n* [[A (film)]]\n{{dab}}") == "A may refer to:\nA (film)"


def test_redirect_page_gives_no_text():
    assert ENGLISH.to_text("#REDIRECT [[Target A]]\n{{R from move}}") == ""


# --- Namespaces by wiki ---

@pytest.mark.parametrize("dbname, siteinfo, wikitext, expected", [
    ("dewiki", {}, "A [[Datei:X.jpg|mini|c]] [[Bild:Y.png]] [[Kategorie:Z]] B.", "A B."),
    ("dewiki", {6: "Datei"}, "A [[Bild:Y.png|links|c]] B.", "A B."),
    ("frwiki", {}, "A [[Fichier:X.jpg|vignette|c]] [[Image:Y.png]] [[Catégorie:Z]] B.", "A B."),
    ("eswiki", {}, "A [[Archivo:X.jpg]] [[Imagen:Y.png]] [[Categoría:Z]] B.", "A B."),
    ("itwiki", {}, "A [[Immagine:X.jpg]] [[Categoria:Z]] B.", "A B."),
    ("ptwiki", {}, "A [[Imagem:X.jpg]] [[Ficheiro:Y.jpg]] B.", "A B."),
    ("nlwiki", {}, "A [[Afbeelding:X.jpg]] [[Bestand:Y.jpg]] B.", "A B."),
    ("ruwiki", {}, "A [[Изображение:X.jpg]] [[Файл:Y.jpg]] [[Категория:Z]] B.", "A B."),
    ("plwiki", {}, "A [[Grafika:X.jpg]] [[Plik:Y.jpg]] B.", "A B."),
    ("svwiki", {}, "A [[Bild:X.jpg]] [[Fil:Y.jpg]] B.", "A B."),
    ("jawiki", {}, "A [[画像:X.jpg]] [[ファイル:Y.jpg]] B.", "A B."),
    ("zhwiki", {}, "A [[图像:X.jpg]] [[圖像:Y.jpg]] [[文件:Z.jpg]] B.", "A B."),
    ("enwiki", {}, "A [[Bild:X.jpg]] B.", "A Bild:X.jpg B."),
    ("unknownwiki", {6: "Datei"}, "A [[Datei:X.jpg]] B.", "A B."),
])
def test_namespaces_for_wiki(dbname, siteinfo, wikitext, expected):
    assert WikitextConverter(Namespaces.for_wiki(dbname, siteinfo)).to_text(wikitext) == expected


def test_german_siteinfo_adds_german_aliases():
    assert GERMAN.to_text("A [[Bild:X.jpg|mini|c]] B.") == "A B."


def test_for_wiki_knows_its_language():
    assert Namespaces.for_wiki("dewiki", {}).languages == frozenset({"de"})
    assert WikitextConverter(Namespaces.for_wiki("dewiki", {})).to_text("#WEITERLEITUNG [[Ziel]]") == ""


# --- Templates defined in the dump ---

def _dump_templates(*pages):
    found = DumpTemplates()
    for title, wikitext, redirect in pages:
        found.add_page(title, wikitext, redirect)
    return found


@pytest.mark.parametrize("pages, wikitext, expected", [
    ([("Modèle:Lien", "#REDIRECTION [[Modèle:Lien web]]", "Modèle:Lien web"), ("Modèle:Lien web", "{{{titre}}}", None)],
     "Voir {{Lien|titre=le texte officiel}} pour les détails.", "Voir le texte officiel pour les détails."),
    ([("Template:Loop", "a{{Loop|{{{1}}}}}b", None)], "Start. {{Loop|1}} End.", "Start. End."),
    ([("Template:Ping", "{{Pong|{{{1}}}}}", None), ("Template:Pong", "{{Ping|{{{1}}}}}", None)],
     "Start. {{Ping|1}} End.", "Start. End."),
    ([("Template:Greeting", "Hello, [[{{{1}}}]]!", None)], "{{greeting|World}}", "Hello, World!"),
    ([("Template:Convert", "{{{1}}} units", None)], "{{convert|5|km}}", "5 km (3.1 mi)"),
])
def test_dump_templates_expanded(pages, wikitext, expected):
    converter = WikitextConverter(Namespaces.from_site_info({}), templates=_dump_templates(*pages))
    assert converter.to_text(wikitext) == expected
