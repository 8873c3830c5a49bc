"""Render the common prose templates from their parameters, without template definitions.

A dump's articles call thousands of templates, and most render nothing a
reader would call prose (infoboxes, citations, navigation boxes). A few
dozen carry the article's words: a measurement in {{convert}}, a native name
in {{lang-hy}}, a date in {{birth date}}, a paragraph in {{quote}}. This
module renders those from their parameters, the way the page shows them,
and everything else is dropped.

The registry is a table: each entry maps one template and its aliases
(redirects on the wiki), or a family of names given as a pattern, to a small
render function. To support another template, write a function that takes a
TemplateCall and returns text, and add one line to TEMPLATES or FAMILIES.
A render function returns "" to drop the call (the pronunciation templates
do this on purpose).

Template names are compared the way MediaWiki compares page titles: the
first letter without regard to case, "_" read as a space, runs of spaces
collapsed, and a leading "Template:" or "subst:" ignored (normalize_name).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Callable, Optional

# Dropped markup leaves this mark in the text so that the tidy-up can remove
# the space or the brackets it leaves behind. XML 1.0 cannot carry U+0001,
# so it never occurs in dump text. (U+0000 cannot serve: mwparserfromhell's
# tokenizer stops at it.)
REMOVED = "\x01"

YES = frozenset({"y", "yes", "on", "true", "1"})
MONTHS = ("January", "February", "March", "April", "May", "June", "July",
          "August", "September", "October", "November", "December")
PREFIXES = re.compile(r"^(?:(?:safe)?subst:|msgnw:|template:)\s*", re.IGNORECASE)


def normalize_name(name: str) -> str:
    """Return a template name as MediaWiki resolves it: "cvt", "Cvt " and "template:Cvt" give "Cvt"."""
    name = " ".join(name.replace("_", " ").split())
    while True:
        shorter = PREFIXES.sub("", name)
        if shorter == name:
            break
        name = shorter
    return name[:1].upper() + name[1:]


def is_blank(value: str) -> bool:
    """Tell whether a rendered value has no visible text (only spaces and removal marks)."""
    return not value.replace(REMOVED, "").strip()


@dataclass(frozen=True)
class TemplateCall:
    """One template call with its parameters already rendered as plain text.

    `positional` contains parameters 1, 2, ... (an explicit "2=" counts as
    positional); a gap is "". `named` contains the others by their exact name.
    Values are stripped of surrounding whitespace and may contain REMOVED
    marks where nested markup was dropped.
    """

    name: str
    positional: tuple[str, ...] = ()
    named: dict[str, str] = field(default_factory=dict)

    def get(self, index: Optional[int] = None, *names: str) -> str:
        """Return the first non-blank of the named parameters `names`, then of positional `index`, or ""."""
        for name in names:
            value = self.named.get(name, "")
            if not is_blank(value):
                return value
        if index is not None and 0 < index <= len(self.positional) and not is_blank(self.positional[index - 1]):
            return self.positional[index - 1]
        return ""

    def flag(self, *names: str) -> bool:
        """Tell whether any of the named parameters is set to yes, y, on or true."""
        return any(self.named.get(name, "").replace(REMOVED, "").strip().lower() in YES for name in names)


Renderer = Callable[[TemplateCall], str]


def _plain(value: str) -> str:
    """Return a rendered value without removal marks, for parsing numbers and dates."""
    return value.replace(REMOVED, "").strip()


# --- Simple templates ------------------------------------------------------


def drop(call: TemplateCall) -> str:
    """Render nothing: pronunciation guides and similar, which read as noise in running text."""
    return ""


def first_parameter(call: TemplateCall) -> str:
    """Render the first parameter as it is ({{nowrap|text}} -> "text")."""
    return call.get(1)


def last_parameter(call: TemplateCall) -> str:
    """Render the last non-blank positional parameter ({{transl|ja|hepburn|Tōkyō}} -> "Tōkyō")."""
    for value in reversed(call.positional):
        if not is_blank(value):
            return value
    return ""


def labelled(call: TemplateCall) -> str:
    """Render a visible label: the lt= or label= text, else the first parameter ({{ill|Target|de|Ziel}})."""
    return call.get(None, "lt", "label", "display") or call.get(1)


def joined_parameters(call: TemplateCall) -> str:
    """Render the positional parameters run together ({{chem2|H|2|O}} -> "H2O")."""
    return "".join(_plain(value) for value in call.positional)


def angle_brackets(call: TemplateCall) -> str:
    """Render {{angbr|x}} as "⟨x⟩", the notation for graphemes and bra-kets."""
    return f"\u27e8{call.get(1)}\u27e9"


def marker(call: TemplateCall) -> str:
    """Render a Wikivoyage listing's name ({{marker|name=[[Paris]]|lat=...}} -> "Paris")."""
    return call.get(None, "name")


def sortname(call: TemplateCall) -> str:
    """Render {{sortname|First|Last|...}} as "First Last"."""
    return " ".join(part for part in (call.get(1), call.get(2)) if part)


def sic(call: TemplateCall) -> str:
    """Render {{sic|word}} as "word [sic]", {{sic}} as "[sic]", and with hide=y the word alone."""
    word = " ".join(value for value in call.positional if not is_blank(value))
    if call.flag("hide"):
        return word
    return f"{word} [sic]" if word else "[sic]"


def fraction(call: TemplateCall) -> str:
    """Render {{frac|3|1|2}} as "3 1/2", {{frac|1|2}} as "1/2" and {{frac|4}} as "1/4"."""
    parts = [_plain(value) for value in call.positional if not is_blank(value)]
    if len(parts) >= 3:
        return f"{parts[0]} {parts[1]}/{parts[2]}"
    if len(parts) == 2:
        return f"{parts[0]}/{parts[1]}"
    return f"1/{parts[0]}" if parts else ""


def horizontal_list(call: TemplateCall) -> str:
    """Render {{hlist|a|b}} as "a · b"."""
    return " · ".join(value for value in call.positional if not is_blank(value))


def vertical_list(call: TemplateCall) -> str:
    """Render {{ubl|a|b}} with one item per line."""
    return "\n" + "\n".join(value for value in call.positional if not is_blank(value)) + "\n"


def value_with_unit(call: TemplateCall) -> str:
    """Render {{val|1.5|0.2|e=3|u=m}} as "1.5 ± 0.2 × 10^3 m"."""
    text = _plain(call.get(1))
    uncertainty = call.get(2)
    if uncertainty:
        text += f" ± {_plain(uncertainty)}"
    exponent = call.get(None, "e")
    if exponent:
        text += f" × 10^{_plain(exponent)}"
    unit = call.get(None, "u", "ul")
    if unit:
        text += f" {unit}"
    return text


def prefixed(prefix: str) -> Renderer:
    """Return a renderer that writes `prefix` before the first parameter ({{US$|100}} -> "US$100")."""
    return lambda call: f"{prefix}{call.get(1)}" if call.get(1) else ""


def abbreviation(word: str) -> Renderer:
    """Return a renderer for {{circa|1900}} -> "c. 1900" and similar, joining a second parameter with "–"."""
    def render(call: TemplateCall) -> str:
        years = "–".join(value for value in (call.get(1), call.get(2)) if value)
        return f"{word} {years}" if years else word
    return render


# --- Quotations ------------------------------------------------------------


def quotation(text_index: Optional[int], author_index: Optional[int], source_index: Optional[int]) -> Renderer:
    """Return a renderer for a block quotation whose positional parameters sit at the given places.

    The quotation becomes its own paragraph; an author or source follows on
    its own line after "— ".
    """
    def render(call: TemplateCall) -> str:
        text = call.get(text_index, "text", "quote", "1")
        author = call.get(author_index, "author", "sign", "2")
        source = call.get(source_index, "source", "title", "3")
        if not text:
            return ""
        attribution = ", ".join(part for part in (author, source) if part)
        return f"\n{text}\n" + (f"— {attribution}\n" if attribution else "")
    return render


# --- Languages -------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def language_names() -> dict[str, str]:
    """Read the bundled table of language codes and English names (resources/language_names.tsv)."""
    names = {}
    table = resources.files("pipeline.resources").joinpath("language_names.tsv")
    for line in table.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            code, name = line.split("\t")
            names[code.strip().lower()] = name.strip()
    return names


def language_name(code: str) -> str:
    """Return the English name of a language code, trying "sr-latn" then "sr"; "" if unknown."""
    code = code.strip().lower()
    names = language_names()
    while code:
        if code in names:
            return names[code]
        code = code.rpartition("-")[0]
    return ""


def _labelled_text(code: str, call: TemplateCall, text: str) -> str:
    """Write "<Language>: text", plus a romanization and literal translation when given."""
    if not text:
        return ""
    name = language_name(code)
    rendered = f"{name}: {text}" if name else text
    romanized = call.get(None, "tr", "translit")
    if romanized:
        rendered += f", romanized: {romanized}"
    literal = call.get(None, "lit")
    if literal:
        rendered += f", lit. '{literal}'"
    return rendered


def lang(call: TemplateCall) -> str:
    """Render {{lang|fr|texte}} as the text alone, as the page shows it."""
    return call.get(2, "text")


def lang_labelled(call: TemplateCall) -> str:
    """Render {{lang-hy|Էվա}} as "Armenian: Էվա" (the code is in the name)."""
    code = call.name.split("-", 1)[1]
    return _labelled_text(code, call, call.get(1, "text"))


def langx(call: TemplateCall) -> str:
    """Render {{langx|hy|Էվա}} as "Armenian: Էվա"."""
    return _labelled_text(_plain(call.get(1, "code")), call, call.get(2, "text"))


def chinese(call: TemplateCall) -> str:
    """Render {{zh|t=中國|s=中国|p=Zhōngguó}} as "traditional Chinese: 中國; simplified Chinese: 中国; pinyin: Zhōngguó"."""
    labels = (("c", "Chinese"), ("t", "traditional Chinese"), ("s", "simplified Chinese"),
              ("p", "pinyin"), ("j", "Jyutping"), ("w", "Wade–Giles"))
    parts = [f"{label}: {call.get(None, key)}" for key, label in labels if call.get(None, key)]
    return "; ".join(parts)


def nihongo(call: TemplateCall) -> str:
    """Render {{nihongo|English|漢字|romaji}} as "English (漢字, romaji)".

    Without an English name the Japanese text leads: {{nihongo||漢字|kanji}}
    gives "漢字 (kanji)". Parameters 4 and 5 (extra notes) join the bracket.
    The lead=yes label of the newer template is not shown.
    """
    english, japanese, romaji = call.get(1), call.get(2), call.get(3)
    extras = [call.get(4, "extra"), call.get(5, "extra2")]
    inside = [part for part in (japanese, romaji, *extras) if part]
    if not english:
        if not inside:
            return ""
        english, inside = inside[0], inside[1:]
    return f"{english} ({', '.join(inside)})" if inside else english


def nihongo_romaji_first(call: TemplateCall) -> str:
    """Render {{nihongo3|English|漢字|romaji}} as "romaji (漢字, English)"."""
    english, japanese, romaji = call.get(1), call.get(2), call.get(3)
    lead = romaji or japanese or english
    inside = [part for part in (japanese, english) if part and part != lead]
    return f"{lead} ({', '.join(inside)})" if inside else lead


# --- Dates -----------------------------------------------------------------


@dataclass(frozen=True)
class PartialDate:
    """A date of which only the year, or the year and month, may be known."""

    year: int
    month: Optional[int] = None
    day: Optional[int] = None


ISO_DATE = re.compile(r"^(-?\d{1,4})-(\d{1,2})(?:-(\d{1,2}))?$")


def _month(value: str) -> Optional[int]:
    value = _plain(value)
    if value.isdigit():
        number = int(value)
        return number if 1 <= number <= 12 else None
    for number, name in enumerate(MONTHS, start=1):
        if value and name.lower().startswith(value.lower()) and len(value) >= 3:
            return number
    return None


def parse_date(year: str, month: str = "", day: str = "") -> Optional[PartialDate]:
    """Read a date from template parameters; None where the year is not a number or the day is impossible."""
    match = ISO_DATE.match(_plain(year))
    if match and not month:
        year, month, day = match.group(1), match.group(2), match.group(3) or ""

    year_text = _plain(year)
    if not re.fullmatch(r"-?\d{1,4}", year_text):
        return None
    month_number = _month(month) if _plain(month) else None
    if _plain(month) and month_number is None:
        return None
    day_number = int(_plain(day)) if _plain(day).isdigit() and month_number else None

    if day_number is not None:
        try:
            dt.date(max(int(year_text), 1), month_number, day_number)
        except ValueError:
            return None
    return PartialDate(int(year_text), month_number, day_number)


def format_date(date: PartialDate, day_first: bool) -> str:
    """Write a date as "16 September 1874" (day first) or "September 16, 1874"."""
    if date.month is None:
        return str(date.year)
    month = MONTHS[date.month - 1]
    if date.day is None:
        return f"{month} {date.year}"
    return f"{date.day} {month} {date.year}" if day_first else f"{month} {date.day}, {date.year}"


def _day_first(call: TemplateCall) -> bool:
    # English Wikipedia's date templates write the month first unless df=y.
    return call.flag("df") and not call.flag("mf")


def _age(born: PartialDate, died: PartialDate) -> str:
    """Return the age at death in whole years, or a range such as "47–48" where a month or day is missing."""
    years = died.year - born.year
    if None in (born.month, born.day, died.month, died.day):
        return f"{years - 1}–{years}"
    if (died.month, died.day) < (born.month, born.day):
        years -= 1
    return str(years)


def single_date(first: int = 1) -> Renderer:
    """Return a renderer for {{birth date|1874|9|16}} and kin, reading the date from parameter `first` on.

    An unreadable date is shown as its parameters, joined by spaces.
    """
    def render(call: TemplateCall) -> str:
        date = parse_date(call.get(first), call.get(first + 1), call.get(first + 2))
        if date is None:
            return " ".join(value for value in call.positional[first - 1:first + 2] if not is_blank(value))
        return format_date(date, _day_first(call))
    return render


def death_date_and_age(call: TemplateCall) -> str:
    """Render {{death date and age|1922|11|22|1874|9|16}} as "November 22, 1922 (aged 48)"."""
    died = parse_date(call.get(1), call.get(2), call.get(3))
    born = parse_date(call.get(4), call.get(5), call.get(6))
    if died is None:
        return single_date()(call)
    text = format_date(died, _day_first(call))
    return f"{text} (aged {_age(born, died)})" if born else text


def death_year_and_age(call: TemplateCall) -> str:
    """Render {{death year and age|1922|1874}} as "1922 (aged 47–48)"."""
    died, born = parse_date(call.get(1)), parse_date(call.get(2))
    if died is None:
        return call.get(1)
    return f"{died.year} (aged {_age(born, died)})" if born else str(died.year)


def as_of(call: TemplateCall) -> str:
    """Render {{as of|2020|5}} as "As of May 2020", in lower case with lc=y; alt= replaces the text."""
    alternative = call.get(None, "alt")
    if alternative:
        return alternative
    date = parse_date(call.get(1), call.get(2), call.get(3))
    when = format_date(date, _day_first(call)) if date else call.get(1)
    words = "as of" if call.flag("lc") else "As of"
    return f"{words} {when}" if when else ""


# --- Units -----------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """A unit that {{convert}} knows: how it is written and its size in its dimension's base unit.

    A value v in this unit is v * factor + offset base units (SI: metre,
    square metre, cubic metre, kilogram, metre per second, kelvin, watt,
    joule, pascal, per square metre). Only temperatures have an offset.
    """

    symbol: str
    singular: str
    plural: str
    dimension: str
    factor: float
    offset: float = 0.0


def _unit(symbol: str, singular: str, dimension: str, factor: float, plural: str = "", offset: float = 0.0) -> Unit:
    return Unit(symbol, singular, plural or singular + "s", dimension, factor, offset)


# Unit codes as {{convert}} writes them, with English Wikipedia's symbols and
# British spellings (sp=us gives meter and liter).
UNITS: dict[str, Unit] = {
    "m": _unit("m", "metre", "length", 1.0),
    "km": _unit("km", "kilometre", "length", 1e3),
    "cm": _unit("cm", "centimetre", "length", 1e-2),
    "mm": _unit("mm", "millimetre", "length", 1e-3),
    "um": _unit("μm", "micrometre", "length", 1e-6),
    "nm": _unit("nm", "nanometre", "length", 1e-9),
    "mi": _unit("mi", "mile", "length", 1609.344),
    "ft": _unit("ft", "foot", "length", 0.3048, plural="feet"),
    "in": _unit("in", "inch", "length", 0.0254, plural="inches"),
    "yd": _unit("yd", "yard", "length", 0.9144),
    "nmi": _unit("nmi", "nautical mile", "length", 1852.0),
    "ly": _unit("ly", "light-year", "length", 9.4607304725808e15),
    "AU": _unit("AU", "astronomical unit", "length", 1.495978707e11),
    "m2": _unit("m²", "square metre", "area", 1.0),
    "km2": _unit("km²", "square kilometre", "area", 1e6),
    "cm2": _unit("cm²", "square centimetre", "area", 1e-4),
    "ha": _unit("ha", "hectare", "area", 1e4),
    "sqmi": _unit("sq mi", "square mile", "area", 2589988.110336),
    "sqft": _unit("sq ft", "square foot", "area", 0.09290304, plural="square feet"),
    "sqyd": _unit("sq yd", "square yard", "area", 0.83612736),
    "sqin": _unit("sq in", "square inch", "area", 0.00064516, plural="square inches"),
    "acre": _unit("acres", "acre", "area", 4046.8564224),
    "m3": _unit("m³", "cubic metre", "volume", 1.0),
    "km3": _unit("km³", "cubic kilometre", "volume", 1e9),
    "L": _unit("L", "litre", "volume", 1e-3),
    "mL": _unit("mL", "millilitre", "volume", 1e-6),
    "cuft": _unit("cu ft", "cubic foot", "volume", 0.028316846592, plural="cubic feet"),
    "cuyd": _unit("cu yd", "cubic yard", "volume", 0.764554857984),
    "USgal": _unit("US gal", "US gallon", "volume", 0.003785411784),
    "impgal": _unit("imp gal", "imperial gallon", "volume", 0.00454609),
    "oilbbl": _unit("bbl", "barrel", "volume", 0.158987294928),
    "kg": _unit("kg", "kilogram", "mass", 1.0),
    "g": _unit("g", "gram", "mass", 1e-3),
    "mg": _unit("mg", "milligram", "mass", 1e-6),
    "t": _unit("t", "tonne", "mass", 1e3),
    "lb": _unit("lb", "pound", "mass", 0.45359237),
    "oz": _unit("oz", "ounce", "mass", 0.028349523125),
    "st": _unit("st", "stone", "mass", 6.35029318, plural="stone"),
    "ST": _unit("short tons", "short ton", "mass", 907.18474),
    "LT": _unit("long tons", "long ton", "mass", 1016.0469088),
    "km/h": _unit("km/h", "kilometre per hour", "speed", 1 / 3.6, plural="kilometres per hour"),
    "m/s": _unit("m/s", "metre per second", "speed", 1.0, plural="metres per second"),
    "mph": _unit("mph", "mile per hour", "speed", 0.44704, plural="miles per hour"),
    "kn": _unit("kn", "knot", "speed", 1852 / 3600),
    "ft/s": _unit("ft/s", "foot per second", "speed", 0.3048, plural="feet per second"),
    "C": _unit("°C", "degree Celsius", "temperature", 1.0, plural="degrees Celsius", offset=273.15),
    "F": _unit("°F", "degree Fahrenheit", "temperature", 5 / 9, plural="degrees Fahrenheit", offset=459.67 * 5 / 9),
    "K": _unit("K", "kelvin", "temperature", 1.0),
    "W": _unit("W", "watt", "power", 1.0),
    "kW": _unit("kW", "kilowatt", "power", 1e3),
    "MW": _unit("MW", "megawatt", "power", 1e6),
    "GW": _unit("GW", "gigawatt", "power", 1e9),
    "hp": _unit("hp", "horsepower", "power", 745.69987158227, plural="horsepower"),
    "PS": _unit("PS", "metric horsepower", "power", 735.49875, plural="metric horsepower"),
    "J": _unit("J", "joule", "energy", 1.0),
    "kJ": _unit("kJ", "kilojoule", "energy", 1e3),
    "MJ": _unit("MJ", "megajoule", "energy", 1e6),
    "kWh": _unit("kWh", "kilowatt-hour", "energy", 3.6e6),
    "kcal": _unit("kcal", "kilocalorie", "energy", 4184.0),
    "Pa": _unit("Pa", "pascal", "pressure", 1.0),
    "kPa": _unit("kPa", "kilopascal", "pressure", 1e3),
    "MPa": _unit("MPa", "megapascal", "pressure", 1e6),
    "bar": _unit("bar", "bar", "pressure", 1e5),
    "psi": _unit("psi", "pound per square inch", "pressure", 6894.757293168, plural="pounds per square inch"),
    "atm": _unit("atm", "standard atmosphere", "pressure", 101325.0),
    "/km2": _unit("/km²", "per square kilometre", "density", 1e-6, plural="per square kilometre"),
    "/sqmi": _unit("/sq mi", "per square mile", "density", 1 / 2589988.110336, plural="per square mile"),
}

# Other spellings of the codes above that articles use.
UNIT_ALIASES = {
    "metre": "m", "meter": "m", "metres": "m", "meters": "m", "kilometre": "km", "kilometer": "km",
    "kilometres": "km", "kilometers": "km", "mile": "mi", "miles": "mi", "foot": "ft", "feet": "ft",
    "inch": "in", "inches": "in", "yard": "yd", "yards": "yd", "μm": "um", "µm": "um",
    "km²": "km2", "sqkm": "km2", "m²": "m2", "sq mi": "sqmi", "sq ft": "sqft", "acres": "acre",
    "hectare": "ha", "hectares": "ha", "l": "L", "ml": "mL", "m³": "m3", "cuft": "cuft",
    "kph": "km/h", "kmh": "km/h", "knot": "kn", "knots": "kn", "°C": "C", "degC": "C", "°F": "F",
    "degF": "F", "bhp": "hp", "kg/m3": "kg/m3", "lbs": "lb", "tonne": "t", "tonnes": "t",
    "shortton": "ST", "longton": "LT", "km2/sqmi": "km2", "PD/km2": "/km2", "PD/sqmi": "/sqmi",
}

# The unit a value converts to when the call names none, as English Wikipedia's template does.
DEFAULT_OUTPUT = {
    "m": "ft", "km": "mi", "cm": "in", "mm": "in", "um": "in", "nm": "in", "mi": "km", "ft": "m",
    "in": "mm", "yd": "m", "nmi": "km", "ly": "km", "AU": "km", "m2": "sqft", "km2": "sqmi",
    "cm2": "sqin", "ha": "acre", "sqmi": "km2", "sqft": "m2", "sqyd": "m2", "sqin": "cm2",
    "acre": "ha", "m3": "cuft", "km3": "cuft", "L": "USgal", "mL": "USgal", "cuft": "m3", "cuyd": "m3",
    "USgal": "L", "impgal": "L", "oilbbl": "m3", "kg": "lb", "g": "oz", "mg": "oz", "t": "LT",
    "lb": "kg", "oz": "g", "st": "kg", "ST": "t", "LT": "t", "km/h": "mph", "m/s": "ft/s",
    "mph": "km/h", "kn": "km/h", "ft/s": "m/s", "C": "F", "F": "C", "K": "C", "W": "hp",
    "kW": "hp", "MW": "hp", "GW": "hp", "hp": "kW", "PS": "kW", "J": "kcal", "kJ": "kcal",
    "MJ": "kWh", "kWh": "MJ", "kcal": "kJ", "Pa": "psi", "kPa": "psi", "MPa": "psi", "bar": "psi",
    "psi": "kPa", "atm": "kPa", "/km2": "/sqmi", "/sqmi": "/km2",
}

# Output codes that show one value in two units, largest first: 1.83 m -> 6 ft 0 in.
COMPOUND_OUTPUTS = {"ft in": ("ft", "in"), "st lb": ("st", "lb"), "lb oz": ("lb", "oz"), "mi yd": ("mi", "yd")}

# How the words between the numbers of a range are shown: {{convert|2|-|3|m}} -> "2–3 m".
RANGE_WORDS = {
    "-": "–", "–": "–", "to": " to ", "to(-)": " to ", "and": " and ", "and(-)": " and ", "or": " or ",
    "x": " × ", "×": " × ", "by": " by ", "+/-": " ± ", "±": " ± ", ",": ", ",
}

NUMBER = re.compile(r"^[-−+]?(?:\d{1,3}(?:,\d{3})+|\d*)(?:\.\d+)?(?:e-?\d+)?$")
FRACTION = re.compile(r"^(?:(?P<whole>[-−]?\d+)\+)?(?P<numerator>\d+)/(?P<denominator>\d+)$")


@dataclass(frozen=True)
class Number:
    """A number as written in a {{convert}} call, with how precisely it is written."""

    written: str
    value: float
    decimals: int
    grouped: bool


def parse_number(text: str) -> Optional[Number]:
    """Read a {{convert}} number: "1,300", "2.54", "-40", "3+1/2" or "1/2"; None if it is not one.

    `decimals` is the number of decimal places. For an integer with two or
    more trailing zeros it is minus their count ("1300" gives -2, "60" gives
    0), the precision the writer implied.
    """
    text = _plain(text)
    fraction_match = FRACTION.match(text)
    if fraction_match:
        whole = fraction_match.group("whole") or "0"
        sign = -1 if whole.startswith(("-", "−")) else 1
        denominator = int(fraction_match.group("denominator"))
        if denominator == 0:
            return None
        value = abs(int(whole.replace("−", "-"))) + int(fraction_match.group("numerator")) / denominator
        return Number(text.replace("+", " "), sign * value, 0, False)

    if not text or not NUMBER.match(text) or not any(character.isdigit() for character in text):
        return None
    digits = text.replace(",", "").replace("−", "-").lstrip("+")
    try:
        value = float(digits)
    except ValueError:
        return None
    mantissa = digits.lower().split("e")[0].lstrip("-")
    if "." in mantissa:
        decimals = len(mantissa.split(".")[1])
    else:
        # Two or more trailing zeros mark a rounded number (1300); a single one
        # (60, 250) is more often exact.
        stripped = mantissa.rstrip("0")
        zeros = len(mantissa) - len(stripped) if stripped else 0
        decimals = -zeros if zeros >= 2 else 0
    return Number(text, value, decimals, "," in text)


def _unit_code(text: str) -> Optional[str]:
    text = _plain(text)
    if text in UNITS:
        return text
    return UNIT_ALIASES.get(text) if UNIT_ALIASES.get(text) in UNITS else None


def _round(value: float, decimals: int) -> Decimal:
    """Round half away from zero to `decimals` places (negative: to tens, hundreds, ...)."""
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _format(value: Decimal, decimals: int, grouped: bool) -> str:
    text = f"{value:,.{max(decimals, 0)}f}" if grouped else f"{value:.{max(decimals, 0)}f}"
    return "0" if text in ("-0", "-0.0") or value == 0 and decimals <= 0 else text


def _output_decimals(number: Number, ratio: float, temperature: bool, compound: bool) -> int:
    """Choose the decimal places of a converted value (the rounding rule in docs/text-policy.md).

    The output keeps the input's precision, shifted by the order of
    magnitude of the conversion ratio: 1300 mi (precision hundreds) gives
    2100 km. Temperatures and the last part of a compound input ("5 ft
    10 in") count integers as exact to the unit.
    """
    decimals = number.decimals
    if temperature or compound:
        decimals = max(decimals, 0)
    return decimals - round(math.log10(ratio)) if ratio > 0 else decimals


def _at_least_two_figures(value: float, decimals: int) -> int:
    """Widen `decimals` so that a non-zero value keeps at least two significant figures (5 km -> 3.1 mi)."""
    if value == 0:
        return decimals
    magnitude = math.floor(math.log10(abs(value)))
    return max(decimals, 1 - magnitude)


def _convert_value(number: Number, source: Unit, target: Unit, *, decimals: Optional[int],
                   figures: Optional[int], compound: bool) -> tuple[float, int]:
    """Convert one number and choose its decimal places; returns (value, decimals)."""
    base = number.value * source.factor + source.offset
    value = (base - target.offset) / target.factor
    if figures is not None and value != 0:
        return value, figures - 1 - math.floor(math.log10(abs(value)))
    if decimals is not None:
        return value, decimals
    chosen = _output_decimals(number, source.factor / target.factor, source.dimension == "temperature", compound)
    rounded = float(_round(value, chosen))
    if rounded == 0 or math.floor(math.log10(abs(rounded))) + 1 + chosen < 2:
        chosen = _at_least_two_figures(value, chosen)
    return value, chosen


def _unit_text(unit: Unit, code: str, plural: bool, names: bool, us_spelling: bool) -> str:
    if not names:
        return unit.symbol
    text = unit.plural if plural else unit.singular
    return text.replace("metre", "meter").replace("litre", "liter") if us_spelling else text


@dataclass(frozen=True)
class ConvertInput:
    """The parsed input side of a {{convert}} call."""

    parts: list[tuple[list[Number], list[str], str]]
    rest: list[str]


def _parse_convert_input(arguments: list[str]) -> Optional[ConvertInput]:
    """Split convert's positional parameters into input parts (numbers, range words, unit) and the rest."""
    first = parse_number(arguments[0]) if arguments else None
    if first is None:
        return None
    numbers, joiners, index = [first], [], 1
    while index + 1 < len(arguments) and arguments[index] in RANGE_WORDS and parse_number(arguments[index + 1]):
        joiners.append(arguments[index])
        numbers.append(parse_number(arguments[index + 1]))
        index += 2
    if index >= len(arguments):
        return None
    parts = [(numbers, joiners, arguments[index])]
    index += 1

    # A compound input such as 5 ft 10 in: more number-and-unit pairs of the same dimension.
    first_unit = _unit_code(parts[0][2])
    while (not joiners and first_unit and index + 1 < len(arguments) and parse_number(arguments[index])
           and _unit_code(arguments[index + 1])
           and UNITS[_unit_code(arguments[index + 1])].dimension == UNITS[first_unit].dimension):
        parts.append(([parse_number(arguments[index])], [], arguments[index + 1]))
        index += 2
    return ConvertInput(parts, arguments[index:])


def convert(call: TemplateCall) -> str:
    """Render {{convert|1300|mi|km}} as "1300 mi (2100 km)".

    The input is shown as written (numbers keep their digit grouping, units
    their symbols), the output rounded by the rule in _output_decimals, or
    to the precision given as the parameter after the output unit, or to
    sigfig= significant figures. Ranges ({{convert|2|-|3|m}} -> "2–3 m
    (6.6–9.8 ft)"), compound inputs (5 ft 10 in), a default output unit,
    several output units ("ft in", "km mi"), abbr=off (unit names),
    adj=on ("10-kilometre"), sp=us and disp=or, flip, out, number, comma
    and sqbr are supported. An unknown unit shows the input alone.
    """
    arguments = [_plain(value) for value in call.positional]
    parsed = _parse_convert_input(arguments)
    if parsed is None:
        return " ".join(value for value in arguments if value)

    names = _plain(call.named.get("abbr", "")).lower() == "off"
    adjective = call.flag("adj")
    us_spelling = _plain(call.named.get("sp", "")).lower() == "us"
    display = _plain(call.named.get("disp", "") or ("flip" if call.named.get("order") == "flip" else "")).lower()

    # The input side, as written.
    shown_parts = []
    for numbers, joiners, unit_written in parsed.parts:
        code = _unit_code(unit_written)
        text = numbers[0].written
        for joiner, number in zip(joiners, numbers[1:]):
            text += RANGE_WORDS[joiner] + number.written
        if code is None:
            shown_parts.append(f"{text} {unit_written}")
        elif adjective:
            shown_parts.append(f"{text}-{_unit_text(UNITS[code], code, False, True, us_spelling)}")
        else:
            plural = len(numbers) > 1 or numbers[0].value != 1
            shown_parts.append(f"{text} {_unit_text(UNITS[code], code, plural, names, us_spelling)}")
    shown_input = " ".join(shown_parts)

    # The output side: every output unit, converted.
    first_numbers, joiners, first_unit = parsed.parts[0]
    source_code = _unit_code(first_unit)
    if source_code is None:
        return shown_input
    rest = parsed.rest
    output = rest[0] if rest and not parse_number(rest[0]) and rest[0] else DEFAULT_OUTPUT.get(source_code, "")
    precision = rest[1] if len(rest) > 1 and re.fullmatch(r"-?\d+", rest[1]) else None
    figures = _plain(call.named.get("sigfig", ""))
    figures = int(figures) if figures.isdigit() and int(figures) > 0 else None

    source = UNITS[source_code]
    compound = len(parsed.parts) > 1
    if compound:
        # Express the whole compound in its smallest unit and convert that.
        last_numbers, _, last_unit = parsed.parts[-1]
        smallest = UNITS[_unit_code(last_unit)]
        total = sum(part[0][0].value * UNITS[_unit_code(part[2])].factor for part in parsed.parts) / smallest.factor
        first_numbers = [Number(last_numbers[0].written, total, last_numbers[0].decimals, False)]
        source = smallest

    outputs = _convert_outputs(output, first_numbers, joiners, source, names, us_spelling,
                               decimals=int(precision) if precision is not None else None,
                               figures=figures, compound=compound)
    if not outputs:
        return shown_input
    shown_output = "; ".join(outputs)

    if display in ("or",):
        return f"{shown_input} or {shown_output}"
    if display in ("flip",):
        return f"{shown_output} ({shown_input})"
    if display in ("out", "output only"):
        return shown_output
    if display in ("number", "output number only"):
        return shown_output.rsplit(" ", 1)[0] if " " in shown_output else shown_output
    if display == "comma":
        return f"{shown_input}, {shown_output}"
    if display == "sqbr":
        return f"{shown_input} [{shown_output}]"
    return f"{shown_input} ({shown_output})"


def _convert_outputs(output: str, numbers: list[Number], joiners: list[str], source: Unit, names: bool,
                     us_spelling: bool, *, decimals: Optional[int], figures: Optional[int], compound: bool) -> list[str]:
    """Convert the input numbers into each output unit named in `output`; [] if none can be converted."""
    if output in COMPOUND_OUTPUTS:
        larger, smaller = (UNITS[code] for code in COMPOUND_OUTPUTS[output])
        if larger.dimension != source.dimension:
            return []
        shown = []
        for number in numbers:
            total = round(number.value * source.factor / smaller.factor)
            whole, remainder = divmod(total, round(larger.factor / smaller.factor))
            shown.append(f"{whole} {_unit_text(larger, '', whole != 1, names, us_spelling)} "
                         f"{remainder} {_unit_text(smaller, '', remainder != 1, names, us_spelling)}")
        return [RANGE_WORDS["-"].join(shown) if len(shown) > 1 else shown[0]]

    results = []
    for code in (output.split() if output not in UNITS and _unit_code(output) is None else [output]):
        target_code = _unit_code(code)
        if target_code is None or UNITS[target_code].dimension != source.dimension:
            continue
        target = UNITS[target_code]
        texts, last_value = [], 0.0
        for number in numbers:
            value, places = _convert_value(number, source, target, decimals=decimals, figures=figures, compound=compound)
            texts.append(_format(_round(value, places), places, number.grouped))
            last_value = float(_round(value, places))
        text = texts[0]
        for joiner, number_text in zip(joiners, texts[1:]):
            text += RANGE_WORDS[joiner] + number_text
        plural = len(texts) > 1 or last_value != 1
        results.append(f"{text} {_unit_text(target, target_code, plural, names, us_spelling)}")
    return results


# --- Registry --------------------------------------------------------------

# One entry per template: its name and aliases (the wiki's redirects to it),
# and the function that renders it.
TEMPLATES: list[tuple[tuple[str, ...], Renderer]] = [
    (("Convert", "Cvt", "Convert/2", "Cvtt"), convert),
    (("Lang", "Lang2", "Script"), lang),
    (("Langx", "Lang-x"), langx),
    (("Transl", "Transliteration", "Translit"), last_parameter),
    (("Zh", "Chinese"), chinese),
    (("Nihongo", "Nihongo2", "Nihongo foot", "Nihongo krt"), nihongo),
    (("Nihongo3",), nihongo_romaji_first),
    (("Nowrap", "Nobr", "Nobreak", "Small", "Smaller", "Big", "Larger", "Midsize", "Nobold", "Noitalic",
      "Not a typo", "Proper name", "As written", "Math", "Mvar", "Tmath", "Abbr", "Tooltip", "Abbrlink",
      "Flag", "Flagcountry", "Flagu", "Angle bracket", "Code", "Var", "Keypress", "Em", "Strong", "Serif",
      "Sans-serif", "Lang-rtl", "Resize", "Text"), first_parameter),
    (("Ill", "Interlanguage link", "Interlanguage link multi", "Link-interwiki"), labelled),
    (("Sortname",), sortname),
    (("Sic",), sic),
    (("Frac", "Fraction", "Sfrac"), fraction),
    (("Hlist", "Flatlist"), horizontal_list),
    (("Ubl", "Unbulleted list", "Plainlist", "Plain list", "Bulleted list", "Ordered list"), vertical_list),
    (("Val",), value_with_unit),
    (("Quote", "Blockquote", "Quotation", "Bquote", "Quote frame"), quotation(1, 2, 3)),
    (("Cquote", "Centered pull quote", "Quote box", "Rquote", "Poem quote"), quotation(1, None, None)),
    (("Birth date", "Dob", "Birth-date", "Birth date and age", "Bda", "Birth date and age2",
      "Death date", "Death-date", "Start date", "End date", "Start date and age", "End date and age",
      "Film date", "Release date"), single_date()),
    (("Death date and age", "Dda"), death_date_and_age),
    (("Birth year and age", "Birth year"), lambda call: _plain(call.get(1))),
    (("Death year and age",), death_year_and_age),
    (("As of", "Asof"), as_of),
    (("Circa", "C."), abbreviation("c.")),
    (("Floruit", "Fl."), abbreviation("fl.")),
    (("Reign", "R."), abbreviation("r.")),
    (("Ndash", "En dash", "Snd", "Spaced ndash", "Spaced en dash", "Mdash", "Em dash", "Spaced mdash",
      "Nbsp", "Thinsp", "Spaces", "Shy", "Zwsp"), lambda call: DASHES[call.name]),
    (("US$",), prefixed("US$")),
    (("Vr", "Angle bracket-free", "Grapheme", "Phoneme"), first_parameter),
    (("Angbr", "Angle brackets"), angle_brackets),
    (("Chem", "Chem2", "Chemf"), joined_parameters),
    (("Marker", "Listing", "See", "Do", "Buy", "Eat", "Drink", "Sleep", "Go"), marker),
    (("IPA", "IPAc-en", "IPA-all", "IPAc", "Respell", "Pronunciation", "Pron", "Pron-en", "Audio", "IPA audio link",
      "Audio-IPA", "Audio-nohelp", "Lang-IPA", "IPAblink", "IPAslink"), drop),
]

DASHES = {
    "Ndash": "–", "En dash": "–", "Snd": " – ", "Spaced ndash": " – ", "Spaced en dash": " – ",
    "Mdash": "—", "Em dash": "—", "Spaced mdash": " — ", "Nbsp": " ", "Thinsp": " ", "Spaces": " ",
    "Shy": "", "Zwsp": "",
}

# Families of templates named by a pattern: {{lang-hy}}, {{IPA-de}}, {{USS|...}}.
FAMILIES: list[tuple[re.Pattern, Renderer]] = [
    (re.compile(r"Lang-[a-z]{2,3}(?:-[A-Za-z0-9]+)*"), lang_labelled),
    (re.compile(r"IPAc?-[A-Za-z-]+|Audio-[a-z]{2,3}"), drop),
    (re.compile(r"(?:HMS|USS|HMAS|HMCS|HMNZS|USNS|USCGC|HNLMS|SS|RMS|MV|SMS|INS|ARA|HMIS|HMT)"),
     lambda call: " ".join(part for part in (call.name, call.get(1)) if part)
     + (f" ({call.get(2)})" if call.get(2) else "")),
    (re.compile(r"Ship"),
     lambda call: " ".join(part for part in (call.get(1), call.get(2)) if part)
     + (f" ({call.get(3)})" if call.get(3) else "")),
]


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, Renderer]:
    registry = {}
    for names, renderer in TEMPLATES:
        for name in names:
            registry[normalize_name(name)] = renderer
    return registry


@functools.lru_cache(maxsize=4096)
def renderer_for(name: str) -> Optional[Renderer]:
    """Return the render function of a template by its name as written, or None for an unknown template."""
    name = normalize_name(name)
    renderer = _registry().get(name)
    if renderer is not None:
        return renderer
    for pattern, family_renderer in FAMILIES:
        if pattern.fullmatch(name):
            return family_renderer
    return None


def renders_text(name: str) -> bool:
    """Tell whether a template, by its name as written, can render visible text (it is in the registry and not dropped)."""
    renderer = renderer_for(name)
    return renderer is not None and renderer is not drop


def render(call: TemplateCall) -> str:
    """Render a template call; "" for an unknown template or one that renders nothing.

    Render functions show what they can of malformed parameters. A call
    that still raises makes the extractor count its page as failed.
    """
    renderer = renderer_for(call.name)
    if renderer is None:
        return ""
    return renderer(TemplateCall(normalize_name(call.name), call.positional, call.named))
