"""Load on the HTTP API: concurrent clients asking questions of a real running app.

Builds a temporary KB from data/corpus, starts `python app.py` on a free loopback port (the
extractive answerer: no LLM), then POSTs /api/ask with the questions of
eval/testsets/sample.jsonl:

- baseline, measured in the same run: one client asking the same requests one after another;
- load: `--clients` clients (default 20) at once, `--questions` questions each (default 10).

Prints requests, errors, throughput and latency p50/p95/max (client-side, loopback HTTP
included) and the server's own answer() time. Target (extractive answerer): no errors,
p95 <= 1 s under load. Figures only, no assertions.

Run: `.venv/bin/python bench/load.py [--clients 20] [--questions 10]`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from eval.metrics import percentile  # noqa: E402
from eval.testset import load_testset  # noqa: E402

CORPUS = REPO / "data" / "corpus" / "nbamr-2019-25-reply-to-proposal-130.txt"  # the sample letter
TESTSET = REPO / "eval" / "testsets" / "sample.jsonl"


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    retrieve_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_server_s: float | None = None
    cpu_client_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + len(self.errors)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask_all(client: httpx.Client, url: str, questions: list[str], run: Run) -> None:
    for question in questions:
        start = time.perf_counter()
        try:
            response = client.post(url, json={"question": question})
            elapsed = (time.perf_counter() - start) * 1000
            body = response.json() if response.status_code == 200 else None
            if body is None or "answer" not in body:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        except Exception as exc:  # noqa: BLE001 - every failure counts as an error
            with run.lock:
                run.errors.append(f"{question}: {type(exc).__name__}: {exc}")
            continue
        with run.lock:
            run.latencies_ms.append(elapsed)
            timings = body.get("timings_ms") or {}
            run.server_ms.append(float(timings.get("total", 0.0)))
            run.retrieve_ms.append(float(timings.get("retrieve", 0.0)))


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def measure(url: str, workloads: list[list[str]], server_pid: int) -> Run:
    """One thread per workload (a client with its own connection), all started together."""
    run = Run()
    barrier = threading.Barrier(len(workloads) + 1)

    def client(questions: list[str]) -> None:
        with httpx.Client(timeout=60) as c:
            barrier.wait()
            ask_all(c, url, questions, run)

    threads = [threading.Thread(target=client, args=(w,)) for w in workloads]
    for t in threads:
        t.start()
    barrier.wait()
    start, server_cpu, client_cpu = time.perf_counter(), cpu_seconds(server_pid), time.process_time()
    for t in threads:
        t.join()
    run.wall_s = time.perf_counter() - start
    run.cpu_client_s = time.process_time() - client_cpu
    after = cpu_seconds(server_pid)
    run.cpu_server_s = after - server_cpu if after is not None and server_cpu is not None else None
    return run


def report(label: str, run: Run) -> None:
    lat, srv = run.latencies_ms, run.server_ms
    print(f"{label}")
    print(f"  requests {run.requests}, errors {len(run.errors)}, wall {run.wall_s:.2f} s, "
          f"throughput {len(lat) / run.wall_s:.1f} req/s")
    print(f"  latency  p50 {percentile(lat, 50):.1f} ms, p95 {percentile(lat, 95):.1f} ms, "
          f"max {max(lat, default=0.0):.1f} ms")
    print(f"  server answer() p50 {percentile(srv, 50):.1f} ms, p95 {percentile(srv, 95):.1f} ms "
          f"(of which retrieval p50 {percentile(run.retrieve_ms, 50):.1f} ms)")
    if run.cpu_server_s is not None and run.requests:
        print(f"  CPU per request: server {run.cpu_server_s / run.requests * 1000:.1f} ms, "
              f"load generator {run.cpu_client_s / run.requests * 1000:.1f} ms ({os.cpu_count()} cores)")
    for error in run.errors[:5]:
        print(f"  error: {error}")


def build_kb(kb_dir: Path, embed_cache: Path) -> None:
    from ingest.build import build
    from kb.core.settings import Settings

    settings = replace(Settings(), kb_dir=kb_dir, embed_cache=embed_cache)
    result = build([CORPUS], settings, progress=False)
    if result.failed:
        raise SystemExit(f"could not build the KB: {result.failed}")


def start_app(tmp: Path, port: int) -> subprocess.Popen:
    config = tmp / "ipkb.toml"
    config.write_text("", encoding="utf-8")  # ignore a local ipkb.toml (an LLM there would be benchmarked)
    env = {**os.environ, "IPKB_CONFIG": str(config), "IPKB_KB_DIR": str(tmp / "kb"),
           "IPKB_EMBED_CACHE": str(tmp / "embed-cache.sqlite"), "IPKB_HOST": "127.0.0.1", "IPKB_PORT": str(port),
           "IPKB_LLM_BASE_URL": "", "IPKB_LLM_MODEL": "", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(tmp / "app.log", "wb")
    return subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def wait_ready(base: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the app did not answer /api/health within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10, help="questions per client")
    args = parser.parse_args()

    questions = [q.question for q in load_testset(TESTSET)]
    n = len(questions)
    # Every request is a different text (the app remembers recent query vectors, as it should for a
    # hotline's repeated questions; here each one must pay for its own embedding).
    variants = [(a, b) for b in ("", "谢谢。", "麻烦了。") for a in ("", "请问", "您好，", "麻烦问一下，", "想咨询一下：")]
    counter = iter(range(10**9))

    def unique(count: int) -> list[str]:
        out = []
        for _ in range(count):
            k = next(counter)
            prefix, suffix = variants[(k // n) % len(variants)]
            out.append(f"{prefix}{questions[k % n]}{suffix}")
        return out

    workloads = [unique(args.questions) for _ in range(args.clients)]

    tmp = Path(tempfile.mkdtemp(prefix="ipkb-load-"))
    proc = None
    try:
        cached = REPO / ".kb" / "embed-cache.sqlite"  # a copy: warm embeddings, the original untouched
        if cached.is_file():
            shutil.copy(cached, tmp / "embed-cache.sqlite")
        t0 = time.perf_counter()
        build_kb(tmp / "kb", tmp / "embed-cache.sqlite")
        print(f"KB built from {CORPUS.relative_to(REPO)} in {time.perf_counter() - t0:.1f} s")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_app(tmp, port)
        print(f"app (python app.py, extractive answerer) ready at {base} in "
              f"{wait_ready(base, proc, tmp / 'app.log'):.1f} s")
        url = f"{base}/api/ask"

        measure(url, [unique(10)], proc.pid)  # warm-up: first calls load lazily-initialised parts
        total = args.clients * args.questions
        print(f"questions: {TESTSET.relative_to(REPO)} ({n}), {total} requests per phase\n")
        baseline = measure(url, [unique(total)], proc.pid)
        report("baseline: 1 client, sequential", baseline)
        loaded = measure(url, workloads, proc.pid)
        report(f"load: {args.clients} concurrent clients x {args.questions} questions", loaded)
        print(f"\nunder load: p50 {percentile(loaded.latencies_ms, 50) / max(percentile(baseline.latencies_ms, 50), 1e-9):.1f}x "
              f"the baseline, throughput {len(loaded.latencies_ms) / loaded.wall_s / max(len(baseline.latencies_ms) / baseline.wall_s, 1e-9):.2f}x; "
              f"target: 0 errors (got {len(loaded.errors)}), p95 <= 1000 ms (got {percentile(loaded.latencies_ms, 95):.0f} ms)")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
