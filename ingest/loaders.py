"""Read source files (PDF, DOCX, TXT, MD, HTML) into RawDocument records.

Every failure caused by the file itself surfaces as LoadError with a one-line reason,
so one bad file never stops an ingest run.
"""
from __future__ import annotations

import codecs
import re
import time
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ingest.records import Page, RawDocument
from kb.core.errors import LoadError
from kb.core.settings import IngestSettings

if TYPE_CHECKING:
    from ingest.ocr import OcrEngine



_INGEST = IngestSettings()  # the defaults live in the settings, with what each one means


@dataclass(frozen=True)
class Limits:
    """What one file may cost to load: the ingest settings of the same names."""

    max_pages: int = _INGEST.max_pages
    max_ocr_pages: int = _INGEST.max_ocr_pages
    max_docx_paragraphs: int = _INGEST.max_docx_paragraphs
    max_docx_unpacked_mb: float = _INGEST.max_docx_unpacked_mb
    max_file_seconds: float = _INGEST.max_file_seconds
    should_stop: Callable[[], bool] | None = None  # a cancel button: checked between pages

    @classmethod
    def from_settings(cls, ingest: IngestSettings, should_stop: Callable[[], bool] | None = None) -> Limits:
        names = [f.name for f in fields(cls) if f.name != "should_stop"]
        return cls(**{name: getattr(ingest, name) for name in names}, should_stop=should_stop)


SUPPORTED_SUFFIXES = {".pdf", ".docx", ".txt", ".md", ".html", ".htm"}

_MB = 1024 * 1024
_MIN_PAGE_CHARS = 10  # fewer non-whitespace chars than this: treat the page as image-only
_KINDS = {".pdf": "pdf", ".docx": "docx", ".txt": "txt", ".md": "md", ".html": "html", ".htm": "html"}


def _short(exc: BaseException, limit: int = 160) -> str:
    msg = " ".join(str(exc).split()) or "no details"
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


def _cause(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_short(exc)}"


def _non_ws(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


# ---------------------------------------------------------------- text decoding

_BOMS = [  # UTF-32 first: its LE BOM starts with the UTF-16 LE BOM
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode file bytes to text; return (text, encoding name). Raises LoadError."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return _normalise_newlines(data.decode(name)), name
            except UnicodeDecodeError as exc:
                raise LoadError(f"undecodable text: {name} byte-order mark but invalid data ({exc.reason})") from exc
    # NUL bytes mean UTF-16/32 without BOM or binary: only charset_normalizer can tell
    if b"\x00" not in data:
        for name in ("utf-8", "gb18030"):  # gb18030 is a superset of GBK and GB2312
            try:
                return _normalise_newlines(data.decode(name)), name
            except UnicodeDecodeError:
                pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError("undecodable text: not UTF-8, GB18030 or any encoding charset-normalizer recognises")
    text = str(best)
    if "\x00" in text:
        raise LoadError("undecodable text: looks like binary data (NUL bytes)")
    return _normalise_newlines(text), best.encoding


# ---------------------------------------------------------------- loaders per kind


_MD_COMMENT = re.compile(r"<!--.*?-->", re.S)
_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")


def markdown_text(text: str) -> tuple[str, str | None]:
    """Markdown as the plain text a reader sees, and its first level-1 heading (the title).

    Heading marks (#), emphasis marks and HTML comments go: LawRefBook's law files put
    `<!-- INFO END -->` after their header of dates, and "## 第一章 总则" is a chapter, not
    "## …" text. Everything else stays, line for line."""
    titles: list[str] = []  # the level-1 headings before any other text: "中华人民共和国民法典" + "物权编"
    lines = []
    body_started = False
    for line in _MD_COMMENT.sub("", text).split("\n"):
        m = _MD_HEADING.match(line)
        if m:
            line = m.group(2)
            if len(m.group(1)) == 1 and line and not body_started:
                titles.append(line)
        elif line.strip():
            body_started = True
        lines.append(_MD_EMPHASIS.sub(r"\2", line))
    return "\n".join(lines), "".join(titles) or None


_INFO_END = "<!-- INFO END -->"


def markdown_header(text: str) -> str | None:
    """A LawRefBook file's header: the lines before `<!-- INFO END -->` after its "# " title lines
    (dates of 通过, 公布, 修订, 修正, 施行), which the profile and the metadata read; None without one."""
    if _INFO_END not in text:
        return None
    head = text.split(_INFO_END, 1)[0]
    return "\n".join(x for x in head.split("\n") if not _MD_HEADING.match(x))


def _load_text(path: Path, kind: str) -> RawDocument:
    text, encoding = decode_text(path.read_bytes())
    title = header = None
    if kind == "md":
        header = markdown_header(text)
        text, title = markdown_text(text)
    return RawDocument(path=str(path), kind=kind, pages=[Page(1, text)], encoding=encoding, file_title=title,
                       header=header)


_DOCX_ELEMENT = re.compile(rb"<w:(?:p|tr|tc)[ />]")


def _check_docx(path: Path, limits: Limits) -> None:
    """Before parsing: the zip's unpacked size (as declared, then as read) and its count of paragraphs,
    table rows and cells, streamed from document.xml in blocks: bounded memory whatever the file."""
    max_bytes = int(limits.max_docx_unpacked_mb * _MB)
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
            if declared > max_bytes:
                raise LoadError(f"DOCX too large unpacked: {declared / _MB:.0f} MB exceeds the "
                                f"{limits.max_docx_unpacked_mb:g} MB limit (max_docx_unpacked_mb)")
            try:
                member = archive.open("word/document.xml")
            except KeyError:
                return  # python-docx names the problem
            count, read, tail = 0, 0, b""
            with member:
                while block := member.read(1 << 16):
                    read += len(block)
                    if read > max_bytes:
                        raise LoadError(f"DOCX too large unpacked: over the {limits.max_docx_unpacked_mb:g} MB limit")
                    data = tail + block
                    count += len(_DOCX_ELEMENT.findall(data)) - len(_DOCX_ELEMENT.findall(tail))
                    tail = data[-8:]
                    if count > limits.max_docx_paragraphs:
                        raise LoadError(f"DOCX has too many elements: over {limits.max_docx_paragraphs} paragraphs, "
                                        "table rows and cells (max_docx_paragraphs)")
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as exc:
        raise LoadError(f"not a readable DOCX: {_cause(exc)}") from exc


def _load_docx(path: Path, limits: Limits) -> RawDocument:
    import docx
    from docx.oxml.ns import qn
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    _check_docx(path, limits)
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # zip errors, missing parts, bad XML
        raise LoadError(f"not a readable DOCX: {_cause(exc)}") from exc

    lines: list[str] = []
    # walk the body XML so paragraphs and tables keep their relative order
    for child in document.element.body.iterchildren():
        if child.tag == qn("w:p"):
            lines.append(Paragraph(child, document).text)
        elif child.tag == qn("w:tbl"):
            for row in Table(child, document).rows:
                cells, seen = [], set()
                for cell in row.cells:
                    if id(cell._tc) in seen:  # a merged cell is returned once per grid column
                        continue
                    seen.add(id(cell._tc))
                    cells.append(" ".join(cell.text.split("\n")).strip())
                lines.append(" ".join(c for c in cells if c))
    title = (document.core_properties.title or "").strip() or None
    return RawDocument(path=str(path), kind="docx", pages=[Page(1, "\n".join(lines))], file_title=title)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "caption", "dd", "div", "dl", "dt", "figcaption",
    "figure", "form", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "main", "ol", "p", "pre",
    "section", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul",
}
_DROP_TAGS = ["script", "style", "nav", "header", "footer", "noscript", "template", "head"]


def _decode_html(data: bytes) -> tuple[str, str]:
    if any(data.startswith(bom) for bom, _ in _BOMS):
        return decode_text(data)  # a byte-order mark outranks any declaration
    match = _META_CHARSET.search(data[:4096])
    if match:
        declared = match.group(1).decode("ascii").lower()
        # GBK/GB2312 pages often contain GB18030-only characters; the superset reads them all
        name = "gb18030" if declared in {"gbk", "gb2312", "gb18030", "x-gbk", "cp936"} else declared
        try:
            return _normalise_newlines(data.decode(name)), codecs.lookup(name).name
        except (LookupError, UnicodeDecodeError):
            pass  # wrong or unknown declaration: detect instead
    return decode_text(data)


def _load_html(path: Path) -> RawDocument:
    from bs4 import BeautifulSoup, Comment, NavigableString

    html, encoding = _decode_html(path.read_bytes())
    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    # collapse source-formatting whitespace like a browser does, except inside <pre>
    for s in soup.find_all(string=True):
        if type(s) is NavigableString and s.find_parent("pre") is None:
            s.replace_with(re.sub(r"\s+", " ", str(s)))
    # line breaks only at block boundaries, so inline tags (<a>, <b>) don't split sentences
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = [line.strip() for line in soup.get_text().split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return RawDocument(
        path=str(path), kind="html", pages=[Page(1, text)], encoding=encoding, file_title=title or None
    )


def _load_pdf(
    path: Path, ocr: OcrEngine | None, on_page: Callable[[int, int], None] | None, limits: Limits
) -> RawDocument:
    from pypdf import PdfReader

    try:
        reader = PdfReader(str(path))
        encrypted = reader.is_encrypted
    except Exception as exc:
        raise LoadError(f"not a readable PDF: {_cause(exc)}") from exc
    if encrypted:
        try:
            opened = bool(reader.decrypt(""))  # many PDFs only carry an owner password
        except Exception:  # e.g. AES without the optional crypto dependency
            opened = False
        if not opened:
            raise LoadError("encrypted PDF: remove the password and ingest again")
    try:
        total = len(reader.pages)
    except Exception as exc:
        raise LoadError(f"not a readable PDF: {_cause(exc)}") from exc
    if total == 0:
        raise LoadError("not a readable PDF: no pages")
    if total > limits.max_pages:
        raise LoadError(f"too many pages: {total} PDF pages exceed the limit of {limits.max_pages} (max_pages)")
    started, ocr_done = time.monotonic(), 0

    title = None
    try:
        title = ((reader.metadata.title if reader.metadata else None) or "").strip() or None
    except Exception:
        pass  # broken metadata is no reason to drop the text

    pages: list[Page] = []
    for index in range(total):
        if limits.should_stop is not None and limits.should_stop():
            raise LoadError("cancelled")
        if time.monotonic() - started > limits.max_file_seconds:
            raise LoadError(f"time budget exceeded: stopped at page {index + 1} of {total} after "
                            f"{limits.max_file_seconds:g} s (max_file_seconds)")
        try:
            text = reader.pages[index].extract_text() or ""
        except Exception:
            text = ""  # a broken content stream: OCR may still read the page
        page = Page(index + 1, _normalise_newlines(text))
        if ocr is not None and _non_ws(text) < _MIN_PAGE_CHARS:
            ocr_done += 1  # counted whether OCR reads anything or not: a blank page costs as much
            if ocr_done > limits.max_ocr_pages:
                raise LoadError(f"too many pages to OCR: more than {limits.max_ocr_pages} pages without a text "
                                "layer (max_ocr_pages)")
            try:
                ocr_text = ocr.read_pdf_page(path, index)
            except Exception as exc:
                raise LoadError(f"OCR failed on page {index + 1}: {_cause(exc)}") from exc
            if _non_ws(ocr_text) > _non_ws(text):
                page = Page(index + 1, ocr_text, ocr=True)
        pages.append(page)
        if on_page is not None:
            on_page(index + 1, total)

    if not any(p.text.strip() for p in pages):
        if ocr is None:
            raise LoadError(f"no text found: none of the {total} PDF pages has a text layer and OCR is not available")
        raise LoadError(f"no text found: none of the {total} PDF pages has a text layer and OCR read nothing")
    return RawDocument(path=str(path), kind="pdf", pages=pages, file_title=title)


# ---------------------------------------------------------------- entry point


def load(
    path: Path,
    *,
    max_bytes: int,
    ocr: OcrEngine | None = None,
    on_page: Callable[[int, int], None] | None = None,
    limits: Limits | None = None,
) -> RawDocument:
    """Load one file into a RawDocument. Raises LoadError (only) for files that can't be used."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = f"'{suffix}'" if suffix else "(no extension)"
        raise LoadError(f"unsupported file type {shown} (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})")
    try:
        size = path.stat().st_size  # checked before reading anything: huge files fail fast
    except OSError as exc:
        raise LoadError(f"cannot read file: {_cause(exc)}") from exc
    if not path.is_file():
        raise LoadError("not a regular file")
    if size == 0:
        raise LoadError("empty file (0 bytes)")
    if size > max_bytes:
        raise LoadError(
            f"file too large: {size / _MB:.1f} MB exceeds the {max_bytes / _MB:.1f} MB limit"
            " (set IPKB_MAX_FILE_MB to raise it)"
        )

    kind = _KINDS[suffix]
    limits = limits or Limits()
    try:
        if kind == "pdf":
            doc = _load_pdf(path, ocr, on_page, limits)
        elif kind == "docx":
            doc = _load_docx(path, limits)
        elif kind == "html":
            doc = _load_html(path)
        else:
            doc = _load_text(path, kind)
    except LoadError:
        raise
    except Exception as exc:  # parser bugs on odd files must not abort the whole ingest
        raise LoadError(f"{kind} loader failed: {_cause(exc)}") from exc

    if kind != "pdf" and not doc.text.strip():
        raise LoadError("no text found: the file contains only whitespace" if kind in ("txt", "md")
                        else f"no text found in the {kind.upper()} file")
    return doc
