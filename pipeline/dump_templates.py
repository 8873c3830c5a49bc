"""Templates defined in the dump itself: collect the simple ones and substitute their parameters.

A pages-articles dump carries the Template namespace too. Templates whose
body is plain text with parameter references, such as a template that shows
`{{{title}}}`, can be expanded without MediaWiki: substitute the arguments
and convert the result like any wikitext. Templates that need parser
functions (`{{#if:...}}`), tables or Lua are not simple and are left to the
built-in registry or dropped.

Redirects between templates are followed, so {{Lien}} expands like
{{Lien web}} when the dump's Modèle:Lien page redirects there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Optional

TEMPLATE_NAMESPACE = 10
# Bodies longer than this are navigation boxes, infoboxes and the like, never inline prose.
MAX_SIMPLE_BODY = 1000
NOT_SIMPLE = re.compile(r"\{\{\s*#|\{\||<table|\{\{\{\{|<templatestyles|\{\{\s*(?:safesubst|subst|invoke)\s*:", re.IGNORECASE)
NOINCLUDE = re.compile(r"<noinclude\s*>.*?(?:</noinclude\s*>|$)", re.IGNORECASE | re.DOTALL)
ONLYINCLUDE = re.compile(r"<onlyinclude\s*>(.*?)</onlyinclude\s*>", re.IGNORECASE | re.DOTALL)
INCLUDEONLY_TAG = re.compile(r"</?includeonly\s*>", re.IGNORECASE)
COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
PARAMETER = re.compile(r"\{\{\{([^{}|]*)(?:\|([^{}]*))?\}\}\}")
MAX_REDIRECT_HOPS = 5


def template_key(name: str) -> str:
    """Normalise a template name as MediaWiki does for first-letter wikis: _ is a space, the first letter is upper case."""
    name = " ".join(name.replace("_", " ").split())
    return name[:1].upper() + name[1:]


def transcluded_body(wikitext: str) -> str:
    """Return the part of a template page that a transclusion shows."""
    wikitext = COMMENT.sub("", wikitext)
    only = ONLYINCLUDE.findall(wikitext)
    if only:
        return "".join(only)
    return INCLUDEONLY_TAG.sub("", NOINCLUDE.sub("", wikitext)).strip()


def is_simple(body: str) -> bool:
    """Return True when a template body can be expanded by parameter substitution alone."""
    return bool(body) and len(body) <= MAX_SIMPLE_BODY and not NOT_SIMPLE.search(body)


@dataclass
class DumpTemplates:
    """Simple template bodies and template redirects, keyed by template_key (without namespace)."""

    bodies: dict[str, str] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    pages: int = 0

    def add_page(self, title: str, wikitext: Optional[str], redirect: Optional[str]) -> None:
        """Record one Template-namespace page, given its title with or without the namespace prefix."""
        self.pages += 1
        key = template_key(title.split(":", 1)[1] if ":" in title else title)
        if redirect:
            self.redirects[key] = template_key(redirect.split(":", 1)[1] if ":" in redirect else redirect)
            return
        body = transcluded_body(wikitext or "")
        if is_simple(body):
            self.bodies[key] = body

    def to_dict(self) -> dict:
        return {"pages": self.pages, "bodies": self.bodies, "redirects": self.redirects}

    @classmethod
    def from_dict(cls, data: dict) -> "DumpTemplates":
        """Return the templates that to_dict() wrote."""
        return cls(bodies=dict(data["bodies"]), redirects=dict(data["redirects"]), pages=int(data["pages"]))

    def merge(self, other: "DumpTemplates") -> None:
        self.bodies.update(other.bodies)
        self.redirects.update(other.redirects)
        self.pages += other.pages

    def body(self, name: str) -> Optional[str]:
        """Return the body of template `name`, following redirects, or None when it is unknown or not simple."""
        key = template_key(name)
        for _ in range(MAX_REDIRECT_HOPS):
            if key in self.bodies:
                return self.bodies[key]
            if key not in self.redirects:
                return None
            key = self.redirects[key]
        return None


def substitute(body: str, arguments: Mapping[str, str]) -> str:
    """Replace {{{name}}} and {{{name|default}}} in `body` with the arguments or the defaults.

    A parameter without an argument or a default stays empty, which is what the
    page shows for an unset optional field.
    """
    def replace(match: re.Match) -> str:
        name = match.group(1).strip()
        if name in arguments:
            return arguments[name]
        return match.group(2) if match.group(2) is not None else ""

    # Defaults can themselves be parameters, such as {{{1|{{{title|}}}}}}: substitute inner ones first.
    for _ in range(5):
        substituted = PARAMETER.sub(replace, body)
        if substituted == body:
            break
        body = substituted
    return body
