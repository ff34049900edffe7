"""Safe XML parsing for annotation files (EAF, ETF, ECV).

Annotation files come from anywhere, so the parser refuses document type declarations and
entity declarations outright (no external entities, no "billion laughs" expansion): only the
five predefined XML entities and character references are expanded. The check is done twice:
a scan of the raw bytes for ``<!DOCTYPE`` / ``<!ENTITY`` (in UTF-8 and UTF-16), and expat
handlers that raise if the parser meets a DTD or entity anyway. Malformed XML becomes an
:class:`~musicperf.errors.AnnotationError` naming the file, line and column.

Imports only the standard library.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.parsers import expat
from pathlib import Path

from musicperf.errors import AnnotationError

#: Largest annotation file read, in bytes; ELAN documents are rarely above a few tens of MB.
MAX_XML_BYTES = 512 * 1024 * 1024

_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")


class _Forbidden(Exception):
    """Raised from inside expat callbacks; turned into AnnotationError by :func:`parse_xml`."""


def _contains_forbidden(data: bytes) -> str | None:
    upper = data.upper()
    for marker in _FORBIDDEN:
        for encoded in (marker, marker.decode().encode("utf-16-le"), marker.decode().encode("utf-16-be")):
            if encoded in upper:
                return marker.decode()
    return None


def _refuse(kind: str):
    def handler(*_args):
        raise _Forbidden(kind)

    return handler


def parse_xml_bytes(data: bytes, *, name: str | Path) -> ET.Element:
    """Parse ``data`` safely and return the root element.

    Parameters
    ----------
    data : bytes
        The whole document. A byte-order mark (UTF-8 or UTF-16) is allowed.
    name : str or Path
        File name used in error messages.

    Raises
    ------
    AnnotationError
        On a DTD or entity declaration, an XML encoding that cannot be read (unknown name,
        multi-byte codec expat cannot use, bytes that do not decode), or when the document is
        not well-formed.
    """
    marker = _contains_forbidden(data)
    if marker is not None:
        raise AnnotationError(
            f"'{name}' contains a {marker} declaration; DTDs and entities are refused for safety"
        )
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = _refuse("DOCTYPE")
    parser.EntityDeclHandler = _refuse("ENTITY")
    parser.ExternalEntityRefHandler = _refuse("external entity")
    try:
        parser.Parse(data, True)
        return builder.close()
    except _Forbidden as exc:
        raise AnnotationError(
            f"'{name}' contains a {exc} declaration; DTDs and entities are refused for safety"
        ) from None
    except expat.ExpatError as exc:
        raise AnnotationError(
            f"'{name}' is not well-formed XML: line {exc.lineno}, column {exc.offset + 1}: "
            f"{expat.ErrorString(exc.code)}"
        ) from None
    except AssertionError:  # TreeBuilder: the document ended with elements still open
        raise AnnotationError(f"'{name}' is not well-formed XML: it ends before its elements are closed") from None
    except (LookupError, ValueError, UnicodeError) as exc:
        # expat hands encodings it does not know itself to Python's codecs: an unknown name is a
        # LookupError, a multi-byte codec a ValueError, undecodable bytes a UnicodeError
        declared = _ENCODING.search(data[:200])
        encoding = declared.group(1).decode("ascii", "replace") if declared else "?"
        raise AnnotationError(
            f"'{name}' declares the XML encoding {encoding!r}, which cannot be read ({exc}); "
            "save it as UTF-8"
        ) from None


def parse_xml(path: str | Path) -> ET.Element:
    """Read ``path`` and parse it with :func:`parse_xml_bytes`.

    Raises
    ------
    AnnotationError
        When the file is missing, unreadable, too large or not well-formed safe XML.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_XML_BYTES:
            raise AnnotationError(f"'{path}' is {size} bytes, larger than the {MAX_XML_BYTES}-byte limit")
        data = path.read_bytes()
    except FileNotFoundError:
        raise AnnotationError(f"'{path}' does not exist") from None
    except IsADirectoryError:
        raise AnnotationError(f"'{path}' is a directory, not an annotation file") from None
    except OSError as exc:
        raise AnnotationError(f"'{path}' cannot be read: {exc.strerror}") from None
    if not data.strip():
        raise AnnotationError(f"'{path}' is empty")
    return parse_xml_bytes(data, name=path)
