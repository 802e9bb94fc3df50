"""Ingestion: the bundled corpus built with a cold cache against embedding its chunks once with bare
e5 (CPU time, the figure least disturbed by other load; target: the build within 1.5x), then
throughput on the shared PDFs: text-layer pages/s, OCR pages/s, chunks/s, against bare pypdf
text extraction measured in the same run.

Run: `make bench` or `.venv/bin/python bench/ingest.py [--repeat N] [--skip-corpus]`.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pypdf import PdfReader  # noqa: E402

from ingest.build import build  # noqa: E402
from ingest.chunking import chunk_document  # noqa: E402
from ingest.clean import clean_pages  # noqa: E402
from ingest.loaders import load  # noqa: E402
from ingest.metadata import extract_metadata  # noqa: E402
from ingest.ocr import OcrEngine  # noqa: E402
from kb.core.settings import Settings  # noqa: E402

SHARED = REPO.parent / "shared" / "corpus"
MAX_BYTES = 100 * 1024 * 1024


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bundled_corpus() -> None:
    """The full build of data/corpus, cold cache, against bare e5 over the same chunk texts."""
    from ingest.pipeline import process_file
    from kb.models.embeddings import E5Embeddings

    corpus = REPO / "data" / "corpus"
    texts = []
    for path in sorted(p for p in corpus.rglob("*") if p.is_file() and p.name != "catalogue.toml"):
        doc, _ = process_file(path, max_bytes=MAX_BYTES, ocr=None)
        texts += [c.text for c in doc.chunks]
    model = E5Embeddings()
    model.encode_passages(texts[:4])  # load the model outside the measured span
    cpu, wall = cpu_seconds(), time.perf_counter()
    for i in range(0, len(texts), 16):
        model.encode_passages(texts[i:i + 16])
    base_cpu, base_wall = cpu_seconds() - cpu, time.perf_counter() - wall
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings().replace(kb_dir=Path(tmp) / "kb")  # its own, empty embedding cache
        cpu, wall = cpu_seconds(), time.perf_counter()
        report = build([corpus], settings, progress=False)
        build_cpu, build_wall = cpu_seconds() - cpu, time.perf_counter() - wall
    print(f"bundled corpus: {len(report.results)} files, {len(texts)} chunks")
    print(f"{'baseline: bare e5 over the chunk texts':<44}{base_cpu:>9.1f} s CPU {base_wall:>8.1f} s wall")
    print(f"{'full build, cold cache':<44}{build_cpu:>9.1f} s CPU {build_wall:>8.1f} s wall   "
          f"ratio to baseline {build_cpu / base_cpu:.2f} (CPU), {build_wall / base_wall:.2f} (wall)")
    print()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="passes over the text-layer PDFs")
    parser.add_argument("--skip-corpus", action="store_true", help="skip the bundled-corpus build")
    args = parser.parse_args()
    if not args.skip_corpus:
        bundled_corpus()
    if not (SHARED / "pdf").is_dir():
        print(f"shared corpus not found at {SHARED}", file=sys.stderr)
        return 2
    pdfs = sorted((SHARED / "pdf").glob("*.pdf"))
    text_pdfs = [p for p in pdfs if "guangdong" not in p.name]
    ocr_pdf = next(p for p in pdfs if "guangdong" in p.name)

    def baseline():
        return sum(len([pg.extract_text() for pg in PdfReader(p).pages]) for _ in range(args.repeat) for p in text_pdfs)

    base_pages, base_s = timed(baseline)

    def loaded():
        return [load(p, max_bytes=MAX_BYTES) for _ in range(args.repeat) for p in text_pdfs]

    raws, load_s = timed(loaded)
    text_pages = sum(len(r.pages) for r in raws)

    engine = OcrEngine()
    ocr_raw, ocr_s = timed(lambda: load(ocr_pdf, max_bytes=MAX_BYTES, ocr=engine))
    ocr_pages = sum(p.ocr for p in ocr_raw.pages)

    docs = raws[: len(text_pdfs)] + [ocr_raw, load(REPO / "data/corpus/nbamr-2019-25-reply-to-proposal-130.txt", max_bytes=MAX_BYTES)]

    def process():
        n = 0
        for _ in range(args.repeat * 10):
            for raw in docs:
                clean = clean_pages([p.text for p in raw.pages])
                meta = extract_metadata(clean.text, Path(raw.path).name, raw.file_title)
                n += len(chunk_document("d", meta.title, clean))
        return n

    chunks, chunk_s = timed(process)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings().replace(kb_dir=Path(tmp) / "kb")
        report, build_s = timed(lambda: build([REPO / "data/corpus", SHARED / "pdf"], settings, progress=False))
        _, rebuild_s = timed(lambda: build([REPO / "data/corpus", SHARED / "pdf"], settings, progress=False))

    print(f"{'measure':<44}{'value':>12}")
    print(f"{'baseline: bare pypdf extraction, pages/s':<44}{base_pages / base_s:>12.1f}")
    print(f"{'text-layer pages/s (load + checks)':<44}{text_pages / load_s:>12.1f}   ratio to baseline {text_pages / load_s / (base_pages / base_s):.2f}")
    print(f"{'OCR pages/s (render + rapidocr)':<44}{ocr_pages / ocr_s:>12.2f}   ({ocr_s / max(ocr_pages, 1):.2f} s/page)")
    print(f"{'chunks/s (clean + metadata + chunk)':<44}{chunks / chunk_s:>12.0f}")
    print(f"{f'full build, {len(report.results)} files, s':<44}{build_s:>12.2f}   ({report.count('ok')} ok, {report.count('failed')} failed)")
    print(f"{'incremental rebuild, nothing changed, s':<44}{rebuild_s:>12.3f}   ratio to full build {rebuild_s / build_s:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
