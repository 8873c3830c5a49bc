"""The prose template registry: each template's rendering from its parameters, as data tables."""

from __future__ import annotations

import pytest

from pipeline.templates import (
    TemplateCall,
    language_name,
    normalize_name,
    parse_number,
    render,
    renders_text,
)


def call(name, *positional, **named):
    return TemplateCall(name, tuple(positional), named)


CONVERT = [
    # (parameters, named, expected)
    (("1300", "mi", "km"), {}, "1300 mi (2100 km)"),
    (("1,300", "mi", "km"), {}, "1,300 mi (2,100 km)"),
    (("5", "km"), {}, "5 km (3.1 mi)"),
    (("100", "m", "ft"), {}, "100 m (330 ft)"),
    (("6", "ft", "m"), {}, "6 ft (1.8 m)"),
    (("12.5", "km", "mi"), {}, "12.5 km (7.8 mi)"),
    (("1300", "mi", "km", "0"), {}, "1300 mi (2092 km)"),
    (("1300", "mi", "km"), {"sigfig": "3"}, "1300 mi (2090 km)"),
    (("2", "-", "3", "m"), {}, "2–3 m (6.6–9.8 ft)"),
    (("10", "to", "20", "km"), {}, "10 to 20 km (6.2 to 12 mi)"),
    (("10", "x", "20", "m"), {}, "10 × 20 m (33 × 66 ft)"),
    (("5", "ft", "10", "in", "cm"), {}, "5 ft 10 in (178 cm)"),
    (("1.83", "m", "ft in"), {}, "1.83 m (6 ft 0 in)"),
    (("100", "C"), {}, "100 °C (212 °F)"),
    (("-40", "C", "F"), {}, "-40 °C (-40 °F)"),
    (("98.6", "F", "C"), {}, "98.6 °F (37.0 °C)"),
    (("1/2", "in", "mm"), {}, "1/2 in (13 mm)"),
    (("3+1/2", "in", "mm"), {}, "3 1/2 in (89 mm)"),
    (("1300", "mi", "km"), {"abbr": "off"}, "1300 miles (2100 kilometres)"),
    (("1300", "mi", "km"), {"abbr": "on"}, "1300 mi (2100 km)"),
    (("1", "mi"), {"abbr": "off"}, "1 mile (1.6 kilometres)"),
    (("3", "ft"), {"abbr": "off", "sp": "us"}, "3 feet (0.91 meters)"),
    (("10", "km"), {"adj": "on"}, "10-kilometre (6.2 mi)"),
    (("20", "mi", "km"), {"disp": "or"}, "20 mi or 32 km"),
    (("20", "mi", "km"), {"disp": "flip"}, "32 km (20 mi)"),
    (("20", "mi", "km"), {"disp": "out"}, "32 km"),
    (("250", "km2"), {}, "250 km² (97 sq mi)"),
    (("100", "acre", "ha"), {}, "100 acres (40 ha)"),
    (("60", "mph"), {}, "60 mph (97 km/h)"),
    (("200", "hp", "kW"), {}, "200 hp (150 kW)"),
    (("1", "m", "km mi"), {}, "1 m (0.0010 km; 0.00062 mi)"),
    (("10", "furlong"), {}, "10 furlong"),
    (("10", "km", "kg"), {}, "10 km"),
    (("about", "km"), {}, "about km"),
]


@pytest.mark.parametrize("positional, named, expected", CONVERT, ids=[" ".join(case[0]) + str(case[1]) for case in CONVERT])
def test_convert(positional, named, expected):
    assert render(call("convert", *positional, **named)) == expected


TEMPLATES = [
    # (template call, expected)
    (call("lang-hy", "Էվա Օրինակ"), "Armenian: Էվա Օրինակ"),
    (call("chem2", "H", "2", "O"), "H2O"),
    (call("chem", "Na", "+"), "Na+"),
    (call("angbr", "a"), "\u27e8a\u27e9"),
    (call("vr", "b"), "b"),
    (TemplateCall("marker", (), {"type": "city", "name": "London", "lat": "51.5"}), "London"),
    (call("Lang-de", "Haus", lit="house"), "German: Haus, lit. 'house'"),
    (call("lang", "fr", "maison"), "maison"),
    (call("langx", "ja", "家"), "Japanese: 家"),
    (call("transl", "ja", "hepburn", "Tōkyō"), "Tōkyō"),
    (call("zh", c="中国", p="Zhōngguó"), "Chinese: 中国; pinyin: Zhōngguó"),
    (call("nihongo", "Example League", "例リーグ", "Rei Rīgu", lead="yes"), "Example League (例リーグ, Rei Rīgu)"),
    (call("nihongo", "Tokyo"), "Tokyo"),
    (call("nihongo foot", "Tokyo", "東京", "Tōkyō"), "Tokyo (東京, Tōkyō)"),
    (call("nowrap", "5 km"), "5 km"),
    (call("sortname", "Ada", "Lovelace", "Ada Lovelace"), "Ada Lovelace"),
    (call("quote", "Words."), "\nWords.\n"),
    (call("quote", "Words.", "Author", "Book"), "\nWords.\n— Author, Book\n"),
    (call("quote", quote="Words.", author="Author"), "\nWords.\n— Author\n"),
    (call("quote"), ""),
    (call("birth date", "1874", "9", "16"), "September 16, 1874"),
    (call("birth date", "1874", "9", "16", df="y"), "16 September 1874"),
    (call("birth date", "1874", "9", "16", df="y", mf="y"), "September 16, 1874"),
    (call("Birth date", "1874", "September", "16", df="yes"), "16 September 1874"),
    (call("birth date", "1874", "2", "30"), "1874 2 30"),
    (call("death date", "1922"), "1922"),
    (call("death date and age", "1922", "11", "22", "1874", "9", "16"), "November 22, 1922 (aged 48)"),
    (call("death date and age", "1922", "9", "15", "1874", "9", "16"), "September 15, 1922 (aged 47)"),
    (call("death date and age", "1922", "", "", "1874"), "1922 (aged 47–48)"),
    (call("death year and age", "1922", "1874"), "1922 (aged 47–48)"),
    (call("birth year and age", "1990"), "1990"),
    (call("start date", "1993", "2", "24", df="y"), "24 February 1993"),
    (call("end date", "1993-02-24"), "February 24, 1993"),
    (call("as of", "2020"), "As of 2020"),
    (call("as of", "2020", "5", "3", lc="y", df="y"), "as of 3 May 2020"),
    (call("circa", "1900"), "c. 1900"),
    (call("reign", "1200", "1250"), "r. 1200–1250"),
    (call("frac", "3", "1", "2"), "3 1/2"),
    (call("sic", "teh"), "teh [sic]"),
    (call("sic", "teh", hide="y"), "teh"),
    (call("val", "1.5", "0.2", e="3", u="m"), "1.5 ± 0.2 × 10^3 m"),
    (call("hlist", "a", "b", "c"), "a · b · c"),
    (call("US$", "100"), "US$100"),
    (call("HMS", "Victory", "1765"), "HMS Victory (1765)"),
    (call("ship", "USS", "Enterprise", "CV-6"), "USS Enterprise (CV-6)"),
    (call("IPAc-en", "ˈ", "æ", "n"), ""),
    (call("IPA-de", "ˈhaʊs"), ""),
    (call("respell", "AN"), ""),
    (call("Infobox person", "x"), ""),
]


@pytest.mark.parametrize("template, expected", TEMPLATES, ids=[f"{case[0].name}-{index}" for index, case in enumerate(TEMPLATES)])
def test_template(template, expected):
    assert render(template) == expected


@pytest.mark.parametrize("written, expected", [
    ("convert", "Convert"),
    ("Convert", "Convert"),
    ("  birth_date  and   age ", "Birth date and age"),
    ("Template:Cvt", "Cvt"),
    ("subst:nowrap", "Nowrap"),
    ("safesubst:Template:lang-fr", "Lang-fr"),
    ("IPAc-en", "IPAc-en"),
])
def test_normalize_name(written, expected):
    assert normalize_name(written) == expected


@pytest.mark.parametrize("name, expected", [
    ("convert", True), ("cvt", True), ("Birth_date", True), ("lang-hy", True), ("Lang-zh-hans", True),
    ("quote", True), ("cquote", True), ("nihongo", True),
    ("IPAc-en", False), ("IPA-fr", False), ("respell", False), ("cite web", False), ("Infobox person", False),
    ("cONVERT", False),
])
def test_renders_text(name, expected):
    assert renders_text(name) is expected


@pytest.mark.parametrize("code, expected", [
    ("hy", "Armenian"), ("HY", "Armenian"), ("sr-Latn", "Serbian"), ("zh-hans", "Simplified Chinese"),
    ("grc", "Ancient Greek"), ("qqq", ""),
])
def test_language_name(code, expected):
    assert language_name(code) == expected


@pytest.mark.parametrize("written, value, decimals", [
    ("1300", 1300.0, -2), ("1,300", 1300.0, -2), ("2.54", 2.54, 2), ("0", 0.0, 0), ("-40", -40.0, 0), ("-400", -400.0, -2),
    ("3+1/2", 3.5, 0), ("1/4", 0.25, 0), ("7", 7.0, 0),
])
def test_parse_number(written, value, decimals):
    number = parse_number(written)
    assert number is not None
    assert number.value == pytest.approx(value)
    assert number.decimals == decimals


@pytest.mark.parametrize("written", ["", "about", "1/0", "12abc", "--3"])
def test_parse_number_rejects(written):
    assert parse_number(written) is None
