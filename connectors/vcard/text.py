"""The vCard text format: lines (unfolded, decoded), BEGIN/END blocks, properties and values.

Parsed line by line rather than with vobject: real exports carry quoted-printable soft line breaks
(vCard 2.1), folds inside multi-byte characters and stray garbage lines, and one such quirk must
cost one line or one card, not the file.
"""

from __future__ import annotations

import base64
import quopri
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

# Reports bad input at a line of the file being read.
Warn = Callable[[int, str], None]

# --- lines -----------------------------------------------------------------------------------

_LINE_END = re.compile(rb"\r\n|\r|\n")
_UTF8_BOM = b"\xef\xbb\xbf"
_CARD_MARKER = re.compile(rb"^\s*(BEGIN|END)\s*:\s*VCARD\s*$", re.IGNORECASE)


@dataclass
class _Line:
    number: int  # where it starts in the file, 1-based
    chunks: list[bytes] = field(default_factory=list)

    def quoted_printable_continues(self) -> bool:
        """A vCard 2.1 quoted-printable value ending in "=" goes on at the next line's start."""
        header = self.chunks[0].split(b":", 1)[0].upper()
        return b"QUOTED-PRINTABLE" in header and self.chunks[-1].endswith(b"=")


def _unfolded_lines(raw: bytes) -> list[_Line]:
    """Join folded lines, on bytes: exporters fold at 75 octets, even inside a UTF-8 character."""
    lines: list[_Line] = []
    for number, physical in enumerate(_LINE_END.split(raw), start=1):
        # A soft break first: the next line is value, even when it starts with a space.
        if lines and lines[-1].quoted_printable_continues() and not _CARD_MARKER.match(physical):
            lines[-1].chunks[-1] = lines[-1].chunks[-1][:-1]
            lines[-1].chunks.append(physical)
        elif lines and physical[:1] in (b" ", b"\t"):
            lines[-1].chunks.append(physical[1:])
        else:
            lines.append(_Line(number, [physical]))
    return lines


def decoded_lines(raw: bytes) -> list[tuple[int, str]]:
    """Logical lines and where they start; a file that is not UTF-8 is read as Windows-1252."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raw = raw.decode("utf-16", errors="replace").encode("utf-8")
    lines = _unfolded_lines(raw.removeprefix(_UTF8_BOM))
    # Decoded after unfolding: a fold inside a UTF-8 character is no reason to read it as 1252.
    text = _charset_decode(b"\n".join(b"".join(line.chunks) for line in lines), None)
    return list(zip((line.number for line in lines), text.split("\n"), strict=True))


# --- blocks ----------------------------------------------------------------------------------


@dataclass
class Block:
    """The lines of one BEGIN:VCARD..END:VCARD, and where it stands in its file."""

    line: int  # of BEGIN:VCARD
    position: int  # 1-based count of BEGIN:VCARD in the file
    lines: list[tuple[int, str]] = field(default_factory=list)


def _marker(text: str) -> str | None:
    # A BOM mid-file is what `cat *.vcf > all.vcf` leaves of files saved on Windows.
    compact = "".join(text.replace("\ufeff", "").split()).upper()
    return compact[:-6] if compact in ("BEGIN:VCARD", "END:VCARD") else None


def blocks(lines: list[tuple[int, str]], warn: Warn) -> Iterator[Block]:
    """Complete cards only; a card without END, and text outside cards, are reported."""
    block: Block | None = None
    positions = 0
    stray = False
    for number, text in lines:
        marker = _marker(text)
        if marker == "BEGIN":
            if block is not None:
                warn(block.line, "card has no END:VCARD before the next BEGIN:VCARD; skipped")
            positions += 1
            block, stray = Block(number, positions), False
        elif marker == "END" and block is not None:
            yield block
            block = None
        elif block is not None:
            block.lines.append((number, text))
        elif text.strip() and not stray:
            warn(number, "text outside BEGIN:VCARD..END:VCARD; ignored")
            stray = True
    if block is not None:
        warn(block.line, "card has no END:VCARD; skipped")


# --- properties ------------------------------------------------------------------------------

_PROPERTY = re.compile(
    r"""(?:[\w-]+\.)?(?P<name>[\w-]+)
        (?P<params>(?:;[^:;"]*(?:"[^"]*"[^:;"]*)*)*)
        :(?P<value>.*)""",
    re.VERBOSE | re.DOTALL,
)
_PARAM = re.compile(r';(?P<key>[^=;]*)(?:=(?P<values>(?:"[^"]*"|[^;"])*))?')
_PARAM_VALUE = re.compile(r'"([^"]*)"|([^,]+)')
# vCard 2.1 allows a parameter's value without its name: TEL;CELL;PREF, NOTE;QUOTED-PRINTABLE.
_BARE_ENCODINGS = {"QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT"}


@dataclass(frozen=True)
class Property:
    name: str  # upper case, group ("item1.") dropped
    params: dict[str, list[str]]  # upper-case keys, values as written
    value: str  # still transfer-encoded and escaped
    line: int

    def param(self, key: str) -> list[str]:
        return self.params.get(key, [])


def _params(text: str) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for match in _PARAM.finditer(text):
        key, values = match["key"].strip().upper(), match["values"]
        if values is None:
            key, values = ("ENCODING" if key in _BARE_ENCODINGS else "TYPE"), key
        found = [quoted or plain.strip() for quoted, plain in _PARAM_VALUE.findall(values)]
        params.setdefault(key, []).extend(found)
    return params


def _property(number: int, text: str) -> Property | None:
    match = _PROPERTY.fullmatch(text.rstrip())
    if match is None:
        return None
    return Property(match["name"].upper(), _params(match["params"]), match["value"], number)


def properties(block: Block, warn: Warn) -> list[Property]:
    found: list[Property] = []
    bad: list[int] = []
    for number, text in block.lines:
        if not text.strip():
            continue
        parsed = _property(number, text)
        if parsed is None:
            bad.append(number)
        else:
            found.append(parsed)
    if bad:
        warn(bad[0], f"{len(bad)} line(s) in this card are not vCard properties; ignored")
    return found


# --- values ----------------------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _charset_decode(data: bytes, charset: str | None) -> str:
    for encoding in filter(None, (charset, "utf-8", "cp1252")):
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def transfer_decoded(prop: Property) -> Property:
    """The property with ENCODING=QUOTED-PRINTABLE / BASE64 undone, in its CHARSET.

    Raises ValueError when a BASE64 value is not base64.
    """
    encoding = next(iter(prop.param("ENCODING")), "").upper()
    charset = next(iter(prop.param("CHARSET")), None)
    if encoding == "QUOTED-PRINTABLE":
        data = quopri.decodestring(prop.value.encode("utf-8"))
    elif encoding in ("B", "BASE64"):
        data = base64.b64decode("".join(prop.value.split()), validate=True)
    else:
        return prop
    return replace(prop, value=_charset_decode(data, charset))


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda match: "\n" if match[1] in "nN" else match[1], text)


def components(value: str, separator: str) -> list[str]:
    """Split on `separator` where no backslash escapes it, and undo the backslash escapes."""
    parts: list[str] = []
    current: list[str] = []
    characters = iter(value)
    for character in characters:
        if character == "\\":
            current.append(character + next(characters, ""))
        elif character == separator:
            parts.append(_unescape("".join(current)))
            current = []
        else:
            current.append(character)
    parts.append(_unescape("".join(current)))
    return parts


def text_of(prop: Property) -> str:
    return _unescape(prop.value).strip()
