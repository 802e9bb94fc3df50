"""Every way a file can fail to ingest is told in Chinese in the 知识库 tab (web/reasons.py)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from web.reasons import _REASONS, failure_reason_zh

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("reason, chinese", [
    ("empty file (0 bytes)", "空文件（0 字节）"),
    ("file too large: 31.5 MB exceeds the 30.0 MB limit (set IPKB_MAX_FILE_MB to raise it)", "文件过大：31.5 MB，超过上限 30.0 MB"),
    ("not a readable PDF: PdfStreamError: Stream has ended unexpectedly", "PDF 文件已损坏或不是 PDF，无法读取"),
    ("DOCX too large unpacked: over the 100 MB limit", "DOCX 解压后过大"),
    ("no text found: none of the 2 PDF pages has a text layer and OCR read nothing",
     "未找到文字：2 页 PDF 都没有文字层，OCR 也未识别出文字"),
    ("too many pages: 900 PDF pages exceed the limit of 500 (max_pages)", "页数过多：900 页，超过上限 500 页"),
    ("memory limit exceeded: reading the PDF needs more than 3072 MB (max_parse_memory_mb)",
     "内存超限：读取此 PDF 需要超过 3072 MB"),
    ("encrypted PDF: remove the password and ingest again (previous version kept)",
     "PDF 已加密：请去掉密码后重新上传（已保留旧版本）"),
    ("something nobody foresaw", "无法处理（something nobody foresaw）"),
])
def test_failure_reasons_in_chinese(reason, chinese):
    assert failure_reason_zh(reason) == chinese


def test_every_reason_the_ingest_library_gives_has_its_chinese():
    """Each LoadError message's fixed start, read from the source, is matched by a Chinese entry."""
    starts = set()
    for path in (ROOT / "ingest").glob("*.py"):
        for match in re.finditer(r'LoadError\(\s*f?"([a-zA-Z][a-zA-Z ()0-9]+)', path.read_text(encoding="utf-8")):
            starts.add(match[1].rstrip())
    assert len(starts) > 15
    literals = [re.split(r"[\\(\[.*+?]", pattern.pattern.lstrip("^"))[0] for pattern, _ in _REASONS]
    untranslated = [s for s in starts if not any(s.startswith(lit) or lit.startswith(s) for lit in literals)]
    assert untranslated == []
