"""Namespace names, redirect keywords and disambiguation templates, by wiki and language.

The text policy drops links into the File, Media and Category namespaces and
interlanguage links, so it needs every name a wiki accepts for them:

- the localized names from the dump's <siteinfo>;
- MediaWiki's canonical English names (File, Image, Media, Category), which
  work on every wiki;
- the usual localized aliases, such as Bild on German Wikipedia, which
  <siteinfo> does not list (LOCALIZED_NAMES below);
- the localized names of the bundled namespace table
  (resources/mediawiki_project_namespace_map-2023-09.json.gz, 841 wikis),
  so that a dump whose <siteinfo> has no namespaces still gets its wiki's
  names (Namespaces.for_wiki).

Names are compared the way MediaWiki compares them: without regard to case
and with "_" read as a space (namespace_key).
"""

from __future__ import annotations

import functools
import gzip
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Iterable, Mapping, Optional

# Namespace ids of MediaWiki's built-in namespaces that the policy needs.
MEDIA_NAMESPACE = -2
FILE_NAMESPACE = 6
CATEGORY_NAMESPACE = 14

# Canonical names work on every wiki whatever its language; "Image" is the
# old name of File that articles still use widely.
CANONICAL_FILE_NAMES = ("File", "Image", "Media")
CANONICAL_CATEGORY_NAMES = ("Category",)

NAMESPACE_TABLE = "mediawiki_project_namespace_map-2023-09.json.gz"


@dataclass(frozen=True)
class LanguageNames:
    """Localized words of one Wikipedia language beyond what <siteinfo> lists."""

    file: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    redirect: tuple[str, ...] = ()
    disambiguation: tuple[str, ...] = ()


# Hand-written from the MediaWiki message files and the wikis' own templates,
# for about 25 of the largest Wikipedias. It is incomplete: a wiki missing
# here still gets its <siteinfo> names, the canonical English names and the
# English #REDIRECT keyword, which MediaWiki accepts on every wiki.
# Redirect keywords are written without the leading "#". Disambiguation
# templates are written without "Template:"; set index articles (lists of
# ships, surnames, given names) are not disambiguation pages and are absent.
LOCALIZED_NAMES: dict[str, LanguageNames] = {
    "en": LanguageNames(
        file=("File", "Image", "Media"),
        category=("Category",),
        redirect=("REDIRECT",),
        disambiguation=(
            "Disambiguation", "Disambig", "Disamb", "Dab", "DAB", "Disambiguation page",
            "Hndis", "Human name disambiguation", "Geodis", "Place name disambiguation",
            "Numberdis", "Number disambiguation", "Letter-Number Combination Disambiguation",
            "Letter-NumberCombDisambig", "Hospital disambiguation", "School disambiguation",
            "Mil-unit-dis", "Species Latin name disambiguation", "Dab page", "Disambiguation cleanup",
            "Chinese title disambiguation", "Airport disambiguation", "Call sign disambiguation",
            "Genus disambiguation", "Road disambiguation", "Church disambiguation",
        ),
    ),
    "de": LanguageNames(
        file=("Datei", "Bild", "Medium"), category=("Kategorie",),
        redirect=("WEITERLEITUNG",), disambiguation=("Begriffsklärung", "BKL"),
    ),
    "fr": LanguageNames(
        file=("Fichier", "Image", "Média"), category=("Catégorie",),
        redirect=("REDIRECTION", "REDIRECT"), disambiguation=("Homonymie", "Bandeau homonymie", "Patronymie"),
    ),
    "es": LanguageNames(
        file=("Archivo", "Imagen", "Medio"), category=("Categoría",),
        redirect=("REDIRECCIÓN", "REDIRECCION", "REDIRECT"), disambiguation=("Desambiguación", "Desambiguacion", "Desambig"),
    ),
    "it": LanguageNames(
        file=("File", "Immagine", "Media"), category=("Categoria",),
        redirect=("RINVIA", "RINVIO", "RIMANDO"), disambiguation=("Disambigua",),
    ),
    "pt": LanguageNames(
        file=("Ficheiro", "Arquivo", "Imagem", "Multimédia"), category=("Categoria",),
        redirect=("REDIRECIONAMENTO", "REDIRECIONA", "REDIRECT"), disambiguation=("Desambiguação", "Desambig"),
    ),
    "nl": LanguageNames(
        file=("Bestand", "Afbeelding", "Media"), category=("Categorie",),
        redirect=("DOORVERWIJZING",), disambiguation=("Dp", "Dpintro", "Disambig"),
    ),
    "ru": LanguageNames(
        file=("Файл", "Изображение", "Медиа"), category=("Категория",),
        redirect=("ПЕРЕНАПРАВЛЕНИЕ", "ПЕРЕНАПР"), disambiguation=("Неоднозначность", "Многозначность", "Disambig"),
    ),
    "pl": LanguageNames(
        file=("Plik", "Grafika", "Media"), category=("Kategoria",),
        redirect=("PATRZ", "PRZEKIERUJ", "TAM"), disambiguation=("Ujednoznacznienie", "Disambig"),
    ),
    "sv": LanguageNames(
        file=("Fil", "Bild", "Media"), category=("Kategori",),
        redirect=("OMDIRIGERING",), disambiguation=("Förgrening", "Gren", "Efternamn-förgrening"),
    ),
    "ja": LanguageNames(
        file=("ファイル", "画像", "メディア"), category=("カテゴリ",),
        redirect=("転送", "リダイレクト"), disambiguation=("Aimai", "曖昧さ回避", "Disambig"),
    ),
    "zh": LanguageNames(
        file=("文件", "檔案", "档案", "图像", "圖像", "媒体", "媒體"), category=("分类", "分類"),
        redirect=("重定向",), disambiguation=("Disambig", "消歧义", "消歧義", "Dab"),
    ),
    "uk": LanguageNames(
        file=("Файл", "Зображення", "Медіа"), category=("Категорія",),
        redirect=("ПЕРЕНАПРАВЛЕННЯ", "ПЕРЕНАПР"), disambiguation=("Неоднозначність", "Disambig"),
    ),
    "ar": LanguageNames(
        file=("ملف", "صورة", "ميديا"), category=("تصنيف",),
        redirect=("تحويل",), disambiguation=("توضيح",),
    ),
    "fa": LanguageNames(
        file=("پرونده", "تصویر", "رسانه"), category=("رده",),
        redirect=("تغییر_مسیر", "تغییرمسیر"), disambiguation=("ابهام‌زدایی", "ابهام زدایی"),
    ),
    "vi": LanguageNames(
        file=("Tập tin", "Hình", "Phương tiện"), category=("Thể loại",),
        redirect=("ĐỔI",), disambiguation=("Trang định hướng", "Định hướng", "Disambig"),
    ),
    "ko": LanguageNames(
        file=("파일", "그림", "미디어"), category=("분류",),
        redirect=("넘겨주기",), disambiguation=("동음이의", "Disambig"),
    ),
    "ca": LanguageNames(
        file=("Fitxer", "Imatge", "Multimèdia"), category=("Categoria",),
        redirect=("REDIRECCIÓ",), disambiguation=("Desambiguació",),
    ),
    "cs": LanguageNames(
        file=("Soubor", "Obrázek", "Média"), category=("Kategorie",),
        redirect=("PŘESMĚRUJ",), disambiguation=("Rozcestník",),
    ),
    "fi": LanguageNames(
        file=("Tiedosto", "Kuva", "Media"), category=("Luokka",),
        redirect=("OHJAUS", "UUDELLEENOHJAUS"), disambiguation=("Täsmennyssivu", "Täsmennys"),
    ),
    "no": LanguageNames(
        file=("Fil", "Bilde", "Medium"), category=("Kategori",),
        redirect=("OMDIRIGERING",), disambiguation=("Peker", "Pekerside", "Flertydig"),
    ),
    "hu": LanguageNames(
        file=("Fájl", "Kép", "Média"), category=("Kategória",),
        redirect=("ÁTIRÁNYÍTÁS",), disambiguation=("Egyért",),
    ),
    "id": LanguageNames(
        file=("Berkas", "Gambar", "Media"), category=("Kategori",),
        redirect=("ALIH",), disambiguation=("Disambig", "Disambiguasi"),
    ),
    "tr": LanguageNames(
        file=("Dosya", "Resim", "Ortam"), category=("Kategori",),
        redirect=("YÖNLENDİRME", "YÖNLENDİR"), disambiguation=("Anlam ayrımı", "Anlam ayrım"),
    ),
    "he": LanguageNames(
        file=("קובץ", "תמונה", "מדיה"), category=("קטגוריה",),
        redirect=("הפניה",), disambiguation=("פירושונים",),
    ),
}


def namespace_key(name: str) -> str:
    """Normalise a namespace name for comparison: MediaWiki ignores case and treats _ as a space."""
    return " ".join(name.replace("_", " ").split()).casefold()


@dataclass(frozen=True)
class WikiNames:
    """One wiki's row group in the bundled namespace table."""

    language: str
    localized: dict[int, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def _namespace_table() -> tuple[dict[str, WikiNames], frozenset[str]]:
    """Read the bundled namespace table: names by dbname, and every language subdomain."""
    projects = ("wikipedia.org", "wiktionary.org", "wikivoyage.org", "wikibooks.org",
                "wikiquote.org", "wikisource.org", "wikinews.org", "wikiversity.org")
    not_languages = {"www", "beta", "test", "test2", "species", "meta", "commons", "incubator"}
    wikis: dict[str, WikiNames] = {}
    prefixes = set()

    table = resources.files("pipeline.resources").joinpath(NAMESPACE_TABLE)
    with table.open("rb") as compressed, gzip.open(compressed, "rt", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            wiki = wikis.setdefault(row["dbname"], WikiNames(language=row["language"]))
            if row["namespace_localized_name"]:
                wiki.localized[int(row["namespace"])] = row["namespace_localized_name"]

            subdomain, _, domain = row["hostname"].partition(".")
            if domain in projects and subdomain not in not_languages:
                prefixes.add(namespace_key(subdomain))

    return wikis, frozenset(prefixes)


def interlanguage_prefixes() -> frozenset[str]:
    """Return the language codes that Wikimedia projects use as interlanguage link prefixes.

    Read from the bundled namespace table of 841 Wikimedia wikis (2023-09):
    every language subdomain of a Wikipedia or sister project, such as
    "de", "simple" or "zh-min-nan".
    """
    return _namespace_table()[1]


def wiki_language(dbname: str) -> Optional[str]:
    """Return the language code of a wiki by its database name ("dewiki" -> "de"), or None if unknown."""
    wiki = _namespace_table()[0].get(dbname)
    return wiki.language if wiki else None


def languages_of(names: Mapping[int, str]) -> frozenset[str]:
    """Guess a wiki's languages from the localized File and Category names of its <siteinfo>.

    Only names that differ from the canonical English ones count, so an
    English siteinfo gives "en" alone, and Italian "Categoria" gives it, pt
    and ca (their aliases do not clash). Returns {"en"} when nothing matches.
    """
    canonical = {namespace_key(name) for name in (*CANONICAL_FILE_NAMES, *CANONICAL_CATEGORY_NAMES)}
    given = {namespace_key(names.get(namespace, "")) for namespace in (FILE_NAMESPACE, CATEGORY_NAMESPACE)}
    given -= canonical | {""}

    languages = {
        language for language, words in LOCALIZED_NAMES.items()
        if given & {namespace_key(name) for name in (*words.file, *words.category)}
    }
    return frozenset(languages or {"en"})


def _keys(names: Iterable[str]) -> frozenset[str]:
    return frozenset(namespace_key(name) for name in names if name)


@dataclass(frozen=True)
class Namespaces:
    """The link prefixes that the text policy drops, normalised with namespace_key.

    `languages` are the wiki's languages ("de"); an empty set means unknown,
    and the redirect and disambiguation checks then accept every language's
    words.
    """

    file: frozenset[str]
    category: frozenset[str]
    interlanguage: frozenset[str]
    languages: frozenset[str] = frozenset()

    @classmethod
    def from_site_info(cls, names: Mapping[int, str], language: Optional[str] = None) -> "Namespaces":
        """Build the prefixes from a dump's namespace table (id -> localized name).

        A siteinfo without namespaces still gets the canonical English names.
        The localized aliases of `language` are added; without `language`,
        those of every language whose File or Category name the siteinfo
        uses (languages_of).
        """
        if language:
            languages = frozenset({language})
        elif names:
            languages = languages_of(names)
        else:
            languages = frozenset()
        aliases = [LOCALIZED_NAMES[code] for code in languages if code in LOCALIZED_NAMES]

        file_names = [*CANONICAL_FILE_NAMES, names.get(FILE_NAMESPACE, ""), names.get(MEDIA_NAMESPACE, "")]
        category_names = [*CANONICAL_CATEGORY_NAMES, names.get(CATEGORY_NAMESPACE, "")]
        for words in aliases:
            file_names.extend(words.file)
            category_names.extend(words.category)

        # A local namespace such as "Wikipedia:" or "WP:" is never a language.
        local_names = _keys(names.values())
        return cls(
            file=_keys(file_names),
            category=_keys(category_names),
            interlanguage=interlanguage_prefixes() - local_names,
            languages=languages,
        )

    @classmethod
    def for_wiki(cls, dbname: str, siteinfo_names: Optional[Mapping[int, str]] = None) -> "Namespaces":
        """Build the prefixes of the wiki `dbname` ("dewiki"), from its <siteinfo> and the bundled table.

        The bundled table's localized names fill in what the siteinfo lacks,
        so a dump with an empty <siteinfo> still drops [[Datei:...]] on
        dewiki; the siteinfo's names win where both have one. An unknown
        dbname falls back to from_site_info.
        """
        siteinfo_names = dict(siteinfo_names or {})
        wiki = _namespace_table()[0].get(dbname)
        if wiki is None:
            return cls.from_site_info(siteinfo_names)

        names = {**wiki.localized, **{key: name for key, name in siteinfo_names.items() if name}}
        # Zh-yue and similar wikis write their language with a hyphen in the
        # table; the alias table uses the base code.
        language = wiki.language if wiki.language in LOCALIZED_NAMES else wiki.language.split("-")[0]
        return cls.from_site_info(names, language=language)

    @classmethod
    def english(cls) -> "Namespaces":
        """Return the prefixes of English Wikipedia without reading a dump."""
        return cls.from_site_info(
            {MEDIA_NAMESPACE: "Media", FILE_NAMESPACE: "File", CATEGORY_NAMESPACE: "Category"}, language="en",
        )


def redirect_keywords(languages: Iterable[str] = ()) -> tuple[str, ...]:
    """Return the #REDIRECT keywords (without "#") of `languages`; English always, every language when empty."""
    chosen = list(languages) or list(LOCALIZED_NAMES)
    words = {"REDIRECT"}
    for language in chosen:
        words.update(LOCALIZED_NAMES.get(language, LanguageNames()).redirect)
    return tuple(sorted(words))


def disambiguation_templates(languages: Iterable[str] = ()) -> tuple[str, ...]:
    """Return the disambiguation template names of `languages`; English always, every language when empty."""
    chosen = list(languages) or list(LOCALIZED_NAMES)
    names = set(LOCALIZED_NAMES["en"].disambiguation)
    for language in chosen:
        names.update(LOCALIZED_NAMES.get(language, LanguageNames()).disambiguation)
    return tuple(sorted(names))
