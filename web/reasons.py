"""Why a file could not be ingested, in Chinese for the 知识库 tab. The ingest library words its reasons in
English for the command line and logs (ingest/loaders.py, ingest/sandbox.py, ingest/build.py); each
known kind of reason has its Chinese here, with the figures it gives, and anything else keeps its words
after a Chinese lead."""
from __future__ import annotations

import re

# (pattern over the English reason, Chinese with {0}, {1}… from the pattern's groups); first match wins
_REASONS: list[tuple[re.Pattern[str], str]] = [(re.compile(p, re.S), zh) for p, zh in [
    (r"^empty file \(0 bytes\)", "空文件（0 字节）"),
    (r"^file too large: ([\d.]+) MB exceeds the ([\d.]+) MB limit", "文件过大：{0} MB，超过上限 {1} MB"),
    (r"^unsupported file type (\S+)", "不支持的文件类型 {0}"),
    (r"^not a regular file", "不是普通文件"),
    (r"^file not found", "文件不存在"),
    (r"^cannot read file: (.*)", "无法读取文件（{0}）"),
    (r"^undecodable text: .*binary", "无法识别文字编码：像是二进制文件"),
    (r"^undecodable text", "无法识别文字编码"),
    (r"^no text found: none of the (\d+) PDF pages has a text layer and OCR is not available",
     "未找到文字：{0} 页 PDF 都没有文字层，且未启用 OCR"),
    (r"^no text found: none of the (\d+) PDF pages has a text layer and OCR read nothing",
     "未找到文字：{0} 页 PDF 都没有文字层，OCR 也未识别出文字"),
    (r"^no text found", "未找到文字：文件内容为空"),
    (r"^encrypted PDF", "PDF 已加密：请去掉密码后重新上传"),
    (r"^not a readable PDF", "PDF 文件已损坏或不是 PDF，无法读取"),
    (r"^not a readable DOCX", "DOCX 文件已损坏或不是 DOCX，无法读取"),
    (r"^too many pages: (\d+) PDF pages exceed the limit of (\d+)", "页数过多：{0} 页，超过上限 {1} 页"),
    (r"^too many pages to OCR: more than (\d+)", "需要 OCR 的页数过多：超过 {0} 页没有文字层"),
    (r"^OCR failed on page (\d+)", "第 {0} 页 OCR 失败"),
    (r"^DOCX too large unpacked", "DOCX 解压后过大"),
    (r"^DOCX has too many elements: over (\d+)", "DOCX 段落、表格过多：超过 {0} 个"),
    (r"^time budget exceeded", "处理超时：超过单个文件的时间上限"),
    (r"^memory limit exceeded: reading the PDF needs more than (\d+) MB", "内存超限：读取此 PDF 需要超过 {0} MB"),
    (r"^the PDF reader stopped", "读取 PDF 的进程异常退出：文件需要的内存过多或已损坏"),
    (r"^cancelled", "已取消"),
    (r"^internal error while processing", "处理时出现内部错误"),
]]


def failure_reason_zh(reason: str) -> str:
    """The Chinese of an ingest failure reason; "(previous version kept)" becomes its Chinese too."""
    kept = reason.endswith(" (previous version kept)")
    reason = reason.removesuffix(" (previous version kept)")
    for pattern, zh in _REASONS:
        match = pattern.search(reason)
        if match:
            text = zh.format(*match.groups())
            break
    else:
        text = f"无法处理（{reason}）"
    return text + ("（已保留旧版本）" if kept else "")
