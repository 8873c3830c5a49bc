"""Time this project's plain-text extraction against wikiextractor 3.1.0.

Both extractors run as child processes on the same multistream dump with the
same output options (JSON lines, 1 MB output files). They alternate (project,
wikiextractor, project, wikiextractor, ...) for every requested process count,
for --rounds rounds. Each run is measured from the outside:

- wall time: time.perf_counter around start and exit;
- CPU time: user + system time of the child and every process it waited for,
  as the change in resource.getrusage(RUSAGE_CHILDREN) across the run;
- peak memory: the maximum resident set size (RSS) of the largest process
  in the child's tree, which is the ru_maxrss that os.wait4 returns. Sampled
  from /proc every --sample-interval seconds: the peak RSS of the main
  process, of the largest other process (a worker), and of all processes
  in the tree together.

The report gives medians over rounds, MB of dump XML (10^6 bytes of
uncompressed XML) per second and per CPU-second, the ratio of each project
figure to wikiextractor's (median of the ratios of runs in the same round, so
slow phases of a shared machine cancel out), and parallel scaling
efficiency (speedup over one process, divided by the number of processes).
It writes docs/benchmarks.md unless --report says otherwise.

This project runs as `python -m pipeline.extract` when that command exists
in the project's virtualenv. Older commits lack it: there --project-mode
stand-in runs pipeline.extract.iter_articles in a child process that writes
the same JSON layout, with one process only, so multi-process runs are left
out. The code comes from the working tree or, with --project-commit, from
that commit's pipeline/, exported into the work folder with `git archive`,
so edits made during a benchmark do not change the code it measures.

Typical use, after building the dump with scripts/make_benchmark_dump.py and
installing wikiextractor into its own virtualenv:

    python3 -m venv bench/venv-wikiextractor
    bench/venv-wikiextractor/bin/pip install wikiextractor==3.1.0
    .venv/bin/python scripts/benchmark_extraction.py --rounds 3

Nothing here uses the network.
"""

from __future__ import annotations

import argparse
import bz2
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

log = logging.getLogger("benchmark_extraction")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DUMP = REPO / "bench" / "dump" / "enwikicopies-20160501-pages-articles-multistream.xml.bz2"
DEFAULT_WORK_DIR = REPO / "bench" / "runs"
DEFAULT_PROJECT_PYTHON = REPO / ".venv" / "bin" / "python"
DEFAULT_WIKIEXTRACTOR_PYTHON = REPO / "bench" / "venv-wikiextractor" / "bin" / "python"
DEFAULT_REPORT = REPO / "docs" / "benchmarks.md"
DEFAULT_SITE_BASE = "https://en.wikipedia.org/wiki/Main_Page"

PROJECT = "this project"
WIKIEXTRACTOR = "wikiextractor"

# Runs pipeline.extract.iter_articles in a child process and writes
# wikiextractor's layout (DIR/AA/wiki_00, JSON lines), so that the stand-in
# is measured from the outside like the real command. argv: dump, folder, bytes per file.
STAND_IN_CODE = """
import json, sys
from pathlib import Path
from pipeline.extract import ExtractionStats, iter_articles
dump, folder, limit = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
number, size, output = 0, 0, None
def next_file():
    global number, output
    if output:
        output.close()
    path = folder / (chr(65 + number // 2600) + chr(65 + number // 100 % 26)) / ("wiki_%02d" % (number % 100))
    path.parent.mkdir(parents=True, exist_ok=True)
    number += 1
    return open(path, "w", encoding="utf-8")
output = next_file()
for article in iter_articles([dump], ExtractionStats(), sys.argv[4]):
    line = json.dumps({"id": str(article.page_id), "revid": str(article.revision_id), "url": article.url,
                       "title": article.title, "text": article.text}, ensure_ascii=False) + "\\n"
    if size and size + len(line.encode()) > limit:
        output, size = next_file(), 0
    output.write(line)
    size += len(line.encode())
output.close()
"""


class BenchmarkError(RuntimeError):
    """A tool is missing or a run failed; the message names the tool and the cause."""


@dataclasses.dataclass(frozen=True)
class Extractor:
    """One extraction command line: which tool, how it is started, how many processes it can use."""

    name: str
    python: Path
    mode: str  # "cli", "stand-in" or "wikiextractor"
    cwd: Path = REPO  # `python -m` and `python -c` import the `pipeline` package from here first

    def supports(self, processes: int) -> bool:
        return self.mode != "stand-in" or processes == 1

    def command(self, dump: Path, output: Path, processes: int, bytes_per_file: str) -> list[str]:
        if self.mode == "wikiextractor":
            return [str(self.python), "-m", "wikiextractor.WikiExtractor", str(dump), "--no-templates", "--json",
                    "-o", str(output), "-b", bytes_per_file, "--processes", str(processes), "-q"]
        if self.mode == "cli":
            return [str(self.python), "-m", "pipeline.extract", str(dump), "-o", str(output), "--json",
                    "-b", bytes_per_file, "--processes", str(processes), "-q"]
        return [str(self.python), "-c", STAND_IN_CODE, str(dump), str(output),
                str(parse_size(bytes_per_file)), DEFAULT_SITE_BASE]

    def describe(self) -> str:
        if self.mode == "stand-in":
            return "pipeline.extract.iter_articles in one child process (stand-in: no CLI yet)"
        command = self.command(Path("DUMP"), Path("OUT"), 0, "1M")
        command[0] = display_path(Path(command[0]))
        return shlex.join(command).replace("--processes 0", "--processes N")


@dataclasses.dataclass
class Run:
    """The cost and output size of one run of one extractor."""

    tool: str
    processes: int
    round: int
    wall_s: float
    cpu_s: float
    max_rss_kib: int
    main_rss_kib: int
    worker_rss_kib: int
    tree_rss_kib: int
    processes_seen: int
    articles: int
    characters: int


def display_path(path: Path) -> str:
    """Return `path` relative to the repository when it lies inside it, for commands a reader can paste."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def parse_size(text: str) -> int:
    """Return the bytes of a wikiextractor-style size such as 500K, 1M or 2G."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    try:
        if text and text[-1] in units:
            return int(text[:-1]) * units[text[-1]]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size like 500K, 1M or 1048576: {text!r}") from None


def project_cli_available(python: Path, cwd: Path) -> bool:
    """Return whether `python -m pipeline.extract --help`, run in `cwd`, prints a usage with --processes."""
    try:
        result = subprocess.run([str(python), "-m", "pipeline.extract", "--help"], cwd=cwd,
                                capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and "--processes" in result.stdout


def project_extractor(python: Path, mode: str, cwd: Path = REPO) -> Extractor:
    """Return how to run this project from `cwd`: its CLI, or the in-process stand-in (mode auto picks)."""
    if not python.is_file():
        raise BenchmarkError(f"the project's Python {python} does not exist: run `make venv` first")
    if mode == "auto":
        mode = "cli" if project_cli_available(python, cwd) else "stand-in"
    elif mode == "cli" and not project_cli_available(python, cwd):
        raise BenchmarkError(f"`{python} -m pipeline.extract --help` in {cwd} does not show a CLI with --processes")
    log.info("This project runs as %s from %s", "`python -m pipeline.extract`" if mode == "cli" else "the iter_articles stand-in",
             display_path(cwd))
    return Extractor(PROJECT, python, mode, cwd)


def git(*arguments: str) -> bytes:
    """Run git in the repository and return its standard output; raise BenchmarkError if it fails."""
    try:
        result = subprocess.run(["git", "-C", str(REPO), *arguments], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BenchmarkError(f"git {' '.join(arguments)} failed: {error}") from error
    if result.returncode != 0:
        raise BenchmarkError(f"git {' '.join(arguments)} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def export_commit(commit: str, work: Path) -> tuple[Path, str]:
    """Export pipeline/ of `commit` into a folder under `work` and return that folder and the full commit id.

    Only reads the repository (`git archive`): the working tree, the index
    and the branches stay as they are. An existing export is reused.
    """
    full = git("rev-parse", "--verify", f"{commit}^{{commit}}").decode().strip()
    target = work / f"project-{full[:12]}"
    if not (target / "pipeline" / "extract.py").is_file():
        partial = work / f".project-{full[:12]}.partial"
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        archive = git("archive", "--format=tar", full, "pipeline")
        unpacked = subprocess.run(["tar", "-x", "-C", str(partial)], input=archive, capture_output=True)
        if unpacked.returncode != 0:
            raise BenchmarkError(f"unpacking pipeline/ of {full[:12]} failed: {unpacked.stderr.decode(errors='replace')}")
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    log.info("This project's code is pipeline/ of commit %s, exported to %s", full[:12], display_path(target))
    return target, full


def project_revision(commit: Optional[str]) -> str:
    """Describe which code of this project ran: an exported commit, or HEAD and whether pipeline/ had edits."""
    if commit:
        return f"commit {commit[:12]}"
    try:
        head = git("rev-parse", "--short=12", "HEAD").decode().strip()
        edited = bool(git("status", "--porcelain", "--", "pipeline").strip())
    except BenchmarkError:
        return "working tree (not a git checkout)"
    return f"working tree at {head}" + (", with uncommitted changes in pipeline/" if edited else "")


def wikiextractor_extractor(python: Path) -> Extractor:
    """Return how to run wikiextractor, after checking that its virtualenv can import it."""
    if not python.is_file():
        raise BenchmarkError(
            f"no Python at {python}: create a virtualenv with `python3 -m venv bench/venv-wikiextractor && "
            "bench/venv-wikiextractor/bin/pip install wikiextractor==3.1.0`, or pass --wikiextractor-python")
    if package_version(python, "wikiextractor") is None:
        raise BenchmarkError(f"{python} cannot find the wikiextractor package: `{python.parent}/pip install wikiextractor==3.1.0`")
    return Extractor(WIKIEXTRACTOR, python, "wikiextractor")


def package_version(python: Path, package: str) -> Optional[str]:
    """Return the installed version of `package` in the environment of `python`, or None."""
    code = f"import importlib.metadata as m\ntry: print(m.version({package!r}))\nexcept m.PackageNotFoundError: pass"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    return result.stdout.strip() or None


def python_version(python: Path) -> str:
    result = subprocess.run([str(python), "-c", "import platform; print(platform.python_version())"],
                            capture_output=True, text=True, timeout=60)
    return result.stdout.strip() or "unknown"


def xml_bytes(dump: Path) -> int:
    """Return the size of the dump's uncompressed XML (every bzip2 stream), reading it once."""
    total = 0
    with bz2.open(dump, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            total += len(block)
    return total


def iter_documents(folder: Path) -> Iterator[dict]:
    """Yield the JSON documents of an extraction folder laid out as DIR/AA/wiki_00, in file order."""
    for path in sorted(folder.glob("*/wiki_*")):
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise BenchmarkError(f"{path}, line {number}: not JSON ({error}); was --json passed?") from error


def process_table() -> dict[int, tuple[int, int]]:
    """Return {pid: (parent pid, RSS in KiB)} for every process visible in /proc."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                # The command name in parentheses may contain spaces; the fields after it are fixed.
                fields = stat.read().rsplit(b")", 1)[1].split()
            table[int(entry.name)] = (int(fields[1]), int(fields[21]) * resource.getpagesize() // 1024)
        except (OSError, IndexError, ValueError):
            continue  # the process exited while we read it
    return table


class TreeSampler(threading.Thread):
    """Samples the RSS of a process and all its descendants until stopped."""

    def __init__(self, root: int, interval: float):
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.stopped = threading.Event()
        self.peak_by_pid: dict[int, int] = {}
        self.peak_total = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            table = process_table()
            children: dict[int, list[int]] = {}
            for pid, (parent, _) in table.items():
                children.setdefault(parent, []).append(pid)
            tree, pending = [], [self.root]
            while pending:
                pid = pending.pop()
                if pid in table:
                    tree.append(pid)
                    pending.extend(children.get(pid, []))
            total = 0
            for pid in tree:
                rss = table[pid][1]
                total += rss
                self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), rss)
            self.peak_total = max(self.peak_total, total)
            self.stopped.wait(self.interval)


def measure(extractor: Extractor, dump: Path, output: Path, processes: int, bytes_per_file: str,
            log_file: Path, timeout: float, sample_interval: float, round_number: int) -> Run:
    """Run one extraction into an empty `output` folder and return its cost and output size."""
    if output.exists():
        shutil.rmtree(output)
    if extractor.mode == "wikiextractor":
        # wikiextractor creates the output folder itself; the stand-in and the CLI get it ready-made.
        output.parent.mkdir(parents=True, exist_ok=True)
    else:
        output.mkdir(parents=True)
    command = extractor.command(dump, output, processes, bytes_per_file)

    with open(log_file, "wb") as messages:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        # A session of its own lets a timeout kill the workers too.
        child = subprocess.Popen(command, cwd=extractor.cwd, stdin=subprocess.DEVNULL, stdout=messages,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        sampler = TreeSampler(child.pid, sample_interval)
        sampler.start()
        timer = threading.Timer(timeout, os.killpg, (child.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM): take the child's whole session down rather than orphan it.
            os.killpg(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
            raise
        finally:
            timer.cancel()
            sampler.stopped.set()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)

    if child.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace")[-2000:]
        reason = f"was killed after the {timeout:.0f} s timeout" if child.returncode == -signal.SIGKILL else f"exited with {child.returncode}"
        raise BenchmarkError(f"{extractor.name} ({processes} processes) {reason}.\nCommand: {shlex.join(command)}\nLast output:\n{tail}")

    articles = characters = 0
    for document in iter_documents(output):
        articles += 1
        characters += len(document.get("text", ""))
    peaks = dict(sampler.peak_by_pid)
    main_rss = peaks.pop(child.pid, 0)
    return Run(
        tool=extractor.name,
        processes=processes,
        round=round_number,
        wall_s=wall,
        cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        max_rss_kib=usage.ru_maxrss,
        main_rss_kib=main_rss,
        worker_rss_kib=max(peaks.values(), default=0),
        tree_rss_kib=sampler.peak_total,
        processes_seen=1 + len(peaks),
        articles=articles,
        characters=characters,
    )


def check_outputs(runs: Sequence[Run]) -> list[str]:
    """Return warnings about runs whose output differs from other runs of the same tool or the other tool.

    Raises BenchmarkError when one tool's runs disagree with each other, since
    then at least one run did not do the whole job.
    """
    warnings = []
    by_tool: dict[str, set[tuple[int, int]]] = {}
    for run in runs:
        by_tool.setdefault(run.tool, set()).add((run.articles, run.characters))
    for tool, outputs in by_tool.items():
        if len(outputs) > 1:
            raise BenchmarkError(
                f"{tool} wrote different outputs in different runs (articles, characters): {sorted(outputs)}. "
                "If its code changed during the benchmark, pin it with --project-commit.")
    articles = {tool: next(iter(outputs))[0] for tool, outputs in by_tool.items()}
    if len(set(articles.values())) > 1:
        warnings.append("The tools wrote different numbers of articles: "
                        + ", ".join(f"{tool} {count}" for tool, count in articles.items()))
    return warnings


def machine_description(project: Extractor, wikiextractor: Extractor) -> list[tuple[str, str]]:
    """Return (label, value) rows describing the machine and the software measured."""
    model = "unknown"
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
                break
    except OSError:
        pass
    project_packages = ", ".join(
        f"{package} {package_version(project.python, package) or 'not installed'}"
        for package in ("wikichar", "mwxml", "mwparserfromhell"))
    return [
        ("CPUs available (nproc)", str(len(os.sched_getaffinity(0)))),
        ("CPU model", model),
        ("Memory", memory),
        ("Operating system", f"{platform.system()} {platform.release()}"),
        ("This project", f"Python {python_version(project.python)}; {project_packages}"),
        ("wikiextractor", f"Python {python_version(wikiextractor.python)}; wikiextractor {package_version(wikiextractor.python, 'wikiextractor')}"),
    ]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def summarize(runs: Sequence[Run], megabytes: float, process_counts: Sequence[int]) -> dict:
    """Return medians per (tool, processes), paired ratios per process count and scaling per tool."""
    groups: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.tool, run.processes), []).append(run)

    rows = {}
    for (tool, processes), group in groups.items():
        wall = median([run.wall_s for run in group])
        cpu = median([run.cpu_s for run in group])
        rows[(tool, processes)] = {
            "runs": len(group),
            "wall": wall,
            "wall_min": min(run.wall_s for run in group),
            "wall_max": max(run.wall_s for run in group),
            "cpu": cpu,
            "mb_per_s": megabytes / wall,
            "mb_per_s_per_process": megabytes / wall / processes,
            "mb_per_cpu_s": megabytes / cpu,
            "max_rss": median([run.max_rss_kib for run in group]) / 1024,
            "main_rss": median([run.main_rss_kib for run in group]) / 1024,
            "worker_rss": median([run.worker_rss_kib for run in group]) / 1024,
            "tree_rss": median([run.tree_rss_kib for run in group]) / 1024,
            "processes_seen": max(run.processes_seen for run in group),
        }

    # Runs of the same round ran back to back, so their ratio is less exposed
    # to the machine's slow and fast phases than a ratio of two medians.
    ratios = {}
    for processes in process_counts:
        project = {run.round: run for run in groups.get((PROJECT, processes), [])}
        other = {run.round: run for run in groups.get((WIKIEXTRACTOR, processes), [])}
        rounds = sorted(project.keys() & other.keys())
        if rounds:
            ratios[processes] = {
                "wall": median([project[r].wall_s / other[r].wall_s for r in rounds]),
                "cpu": median([project[r].cpu_s / other[r].cpu_s for r in rounds]),
                "max_rss": median([project[r].max_rss_kib / other[r].max_rss_kib for r in rounds]),
                "tree_rss": median([project[r].tree_rss_kib / max(other[r].tree_rss_kib, 1) for r in rounds]),
                "rounds": len(rounds),
            }

    scaling = {}
    for tool in (PROJECT, WIKIEXTRACTOR):
        if (tool, 1) not in rows:
            continue
        for processes in process_counts:
            if processes > 1 and (tool, processes) in rows:
                speedup = rows[(tool, 1)]["wall"] / rows[(tool, processes)]["wall"]
                scaling[(tool, processes)] = {"speedup": speedup, "efficiency": speedup / processes}
    return {"rows": rows, "ratios": ratios, "scaling": scaling}


def summary_lines(summary: dict) -> list[str]:
    """Return a few Markdown bullets that state the main ratios of `summary` in words."""
    rows, ratios, scaling = summary["rows"], summary["ratios"], summary["scaling"]
    lines = ["## In short", ""]
    for processes, ratio in sorted(ratios.items()):
        lines.append(
            f"- With `--processes {processes}`, this project takes {ratio['wall']:.2f}x the wall time and "
            f"{ratio['cpu']:.2f}x the CPU time of wikiextractor, and its largest process peaks at "
            f"{ratio['max_rss']:.2f}x wikiextractor's (medians of same-round ratios).")
    for (tool, processes), row in sorted(scaling.items()):
        lines.append(f"- {tool[0].upper() + tool[1:]} runs {row['speedup']:.2f}x faster with {processes} processes than with 1 "
                     f"({row['efficiency']:.0%} scaling efficiency).")
    for tool in (PROJECT, WIKIEXTRACTOR):
        per_cpu = [row["mb_per_cpu_s"] for (name, _), row in rows.items() if name == tool]
        if per_cpu:
            lines.append(f"- {tool[0].upper() + tool[1:]} converts {min(per_cpu):.1f} to {max(per_cpu):.1f} MB of XML per CPU-second.")
    return lines + [""]


def write_report(path: Path, summary: dict, context: dict) -> None:
    """Write the Markdown page with the method, the machine and the tables of `summary`."""
    rows, ratios, scaling = summary["rows"], summary["ratios"], summary["scaling"]
    lines = [
        "# Extraction benchmark: this project against wikiextractor",
        "",
        "Written by `scripts/benchmark_extraction.py`; rerun it to refresh this page.",
        "The machine is shared and noisy, so this page quotes medians and ratios.",
        "Single runs vary by more than the differences that matter here.",
        "",
        "## What was measured",
        "",
        f"- Dump: `{context['dump_name']}`, {context['xml_mb']:.1f} MB of XML ({context['compressed_mb']:.1f} MB as bzip2),",
        f"  {context['pages']} pages in multistream layout with its index, 100 pages per stream. It is built from the",
        "  206 bundled pages of `mirror/enwiki/20160501` by repetition (`scripts/make_benchmark_dump.py`): every page,",
        "  redirects included, once per copy, with the title suffix ` (copy N)` and fresh page and revision ids.",
        "  The text is therefore the bundled pages several times over. MB means 10^6 bytes of uncompressed XML,",
        "  the same input for both tools, so a tool that writes fewer articles gets no credit for it in MB/s.",
        f"- This project: {context['project_description']}.",
        f"- wikiextractor: `{context['wikiextractor_description']}` (no template expansion, like this project).",
        f"- Both write JSON lines in 1 MB files (`-b {context['bytes_per_file']}`).",
        f"- {context['rounds']} rounds. In each round every process count runs this project, then wikiextractor,",
        "  so the tools alternate. The dump is read once before the first run so that it is in the page cache.",
        "- Wall time: from start to exit of the child. CPU time: user + system time of the child and every process",
        "  it waited for (`getrusage(RUSAGE_CHILDREN)` before and after).",
        "- Memory: \"largest process\" is the kernel's maximum RSS of the largest single process in the run's tree",
        f"  (`ru_maxrss` from `wait4`). The other memory columns are sampled from /proc every {context['sample_interval']} s:",
        "  the main process, the largest other process (a worker), and the sum over all processes at the same moment.",
        "- Ratios compare this project with wikiextractor in the same round and then take the median over rounds.",
        "  Below 1 means this project needs less (time or memory); above 1, more.",
        "- Scaling efficiency: (median wall time with 1 process) / (N x median wall time with N processes).",
        "- `processes` is the value of `--processes`; the last column counts the processes seen in the run's tree.",
        "  wikiextractor runs a reader, N extraction workers and a writer, so even with `--processes 1` it can",
        "  keep more than one core busy (CPU time above wall time). MB per CPU-s is the fair per-core comparison.",
        "",
    ]
    lines += summary_lines(summary)
    if context["stand_in"]:
        lines += [
            "**Stand-in.** This project ran as `pipeline.extract.iter_articles` in one child process that writes",
            "the same JSON layout (`--project-mode stand-in`, for code without `python -m pipeline.extract`). It has",
            "no parallel mode, so the multi-process rows and this project's scaling are missing.",
            "",
        ]

    lines += [
        "## Results",
        "",
        "Medians over rounds; the wall range is the fastest and slowest run.",
        "",
        "| tool | processes | runs | wall s (median) | wall s (range) | CPU s (median) | MB/s | MB/s per process | MB per CPU-s | largest process MiB | main process MiB | largest worker MiB | all processes MiB | processes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (tool, processes), row in sorted(rows.items(), key=lambda item: (item[0][1], item[0][0] != PROJECT)):
        worker = f"{row['worker_rss']:.0f}" if row["processes_seen"] > 1 else "-"
        lines.append(
            f"| {tool} | {processes} | {row['runs']} | {row['wall']:.2f} | {row['wall_min']:.2f}-{row['wall_max']:.2f} "
            f"| {row['cpu']:.2f} | {row['mb_per_s']:.2f} | {row['mb_per_s_per_process']:.2f} | {row['mb_per_cpu_s']:.2f} "
            f"| {row['max_rss']:.0f} | {row['main_rss']:.0f} | {worker} | {row['tree_rss']:.0f} | {row['processes_seen']} |")

    lines += [
        "",
        "### This project relative to wikiextractor",
        "",
        "| processes | rounds | wall time | CPU time | largest process RSS | all processes RSS | throughput (MB/s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for processes, ratio in sorted(ratios.items()):
        lines.append(
            f"| {processes} | {ratio['rounds']} | {ratio['wall']:.2f}x | {ratio['cpu']:.2f}x | {ratio['max_rss']:.2f}x "
            f"| {ratio['tree_rss']:.2f}x | {1 / ratio['wall']:.2f}x |")

    lines += [
        "",
        "### Parallel scaling",
        "",
        "| tool | processes | speedup over 1 process | efficiency |",
        "| --- | ---: | ---: | ---: |",
    ]
    for (tool, processes), row in sorted(scaling.items(), key=lambda item: (item[0][1], item[0][0] != PROJECT)):
        lines.append(f"| {tool} | {processes} | {row['speedup']:.2f}x | {row['efficiency']:.0%} |")
    if not scaling:
        lines.append("| (no multi-process runs) | | | |")

    lines += ["", "### Output", "", "| tool | articles per run | characters of text per run |", "| --- | ---: | ---: |"]
    for tool, (articles, characters) in context["outputs"].items():
        lines.append(f"| {tool} | {articles} | {characters:,} |")
    lines += [""]
    lines += [f"- {warning}" for warning in context["warnings"]]
    if context["warnings"]:
        lines.append("")

    lines += [
        "The tools keep different parts of an article, so their output sizes differ; [residues.md](residues.md)",
        "measures what each keeps and drops.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
    ]
    lines += [f"| {label} | {value} |" for label, value in context["machine"]]
    lines += [
        f"| Date (UTC) | {context['date']} |",
        f"| Load average before / after (1, 5, 15 min) | {context['load_before']} / {context['load_after']} |",
        "",
        "## Command",
        "",
        "```bash",
        "python3 -m venv bench/venv-wikiextractor && bench/venv-wikiextractor/bin/pip install wikiextractor==3.1.0",
        ".venv/bin/python scripts/make_benchmark_dump.py",
        context["command"],
        "```",
        "",
        "Each run's own messages are kept in the work folder (`bench/runs/` by default) as `*.log`, with the",
        "raw measurements of every run in `runs.json`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dump", type=Path, default=DEFAULT_DUMP, help="multistream dump to extract (default: the dump make_benchmark_dump.py writes)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tool per process count (default: 3)")
    parser.add_argument("--processes", type=str, default=None, help="comma-separated process counts (default: 1 and every available CPU)")
    parser.add_argument("--bytes", dest="bytes_per_file", type=str, default="1M", help="output bytes per file, passed as -b (default: 1M)")
    parser.add_argument("--project-python", type=Path, default=DEFAULT_PROJECT_PYTHON, help="the project's Python (default: .venv/bin/python)")
    parser.add_argument("--project-mode", choices=("auto", "cli", "stand-in"), default="auto",
                        help="run `python -m pipeline.extract` (cli), iter_articles in a child (stand-in), or cli when it exists (auto, the default)")
    parser.add_argument("--project-commit", help="run pipeline/ of this commit (exported with git archive) instead of the working tree")
    parser.add_argument("--wikiextractor-python", type=Path, default=DEFAULT_WIKIEXTRACTOR_PYTHON, help="Python of a virtualenv with wikiextractor 3.1.0 (default: bench/venv-wikiextractor/bin/python)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="scratch folder for outputs and logs (default: bench/runs)")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="Markdown file to write (default: docs/benchmarks.md)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a run is killed (default: 900)")
    parser.add_argument("--sample-interval", type=float, default=0.05, help="seconds between RSS samples of the process tree (default: 0.05)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # SIGTERM becomes SystemExit so that a running extraction is killed with its workers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    cpus = len(os.sched_getaffinity(0))
    try:
        process_counts = sorted({int(part) for part in arguments.processes.split(",")}) if arguments.processes else sorted({1, cpus})
    except ValueError:
        parser.error(f"--processes must be comma-separated integers, got {arguments.processes!r}")
    if not process_counts or process_counts[0] < 1:
        parser.error("--processes must list counts of at least 1")
    if arguments.rounds < 1:
        parser.error("--rounds must be at least 1")
    parse_size(arguments.bytes_per_file)
    dump = arguments.dump.resolve()
    if not dump.is_file():
        parser.error(f"dump not found: {dump}; build it with `.venv/bin/python scripts/make_benchmark_dump.py`")
    index = dump.with_name(dump.name.replace(".xml.bz2", "-index.txt.bz2"))
    if not index.is_file():
        log.warning("No multistream index beside the dump (%s); this project's CLI may not run in parallel", index.name)

    work = arguments.work_dir.resolve()
    try:
        root, commit = export_commit(arguments.project_commit, work) if arguments.project_commit else (REPO, None)
        project = project_extractor(arguments.project_python.absolute(), arguments.project_mode, root)
        wikiextractor = wikiextractor_extractor(arguments.wikiextractor_python.absolute())

        log.info("Reading %s once to measure its XML and put it in the page cache", dump.name)
        size = xml_bytes(dump)
        megabytes = size / 1e6
        pages = sum(1 for _ in bz2.open(index)) if index.is_file() else 0
        log.info("%.1f MB of XML, %d pages; %d rounds with %s processes", megabytes, pages, arguments.rounds,
                 " and ".join(map(str, process_counts)))

        work.mkdir(parents=True, exist_ok=True)
        load_before = load_average()
        runs: list[Run] = []
        for round_number in range(1, arguments.rounds + 1):
            for processes in process_counts:
                for extractor in (project, wikiextractor):
                    if not extractor.supports(processes):
                        continue
                    label = f"{'project' if extractor is project else 'wikiextractor'}-p{processes}"
                    run = measure(extractor, dump, work / label, processes, arguments.bytes_per_file,
                                  work / f"{label}-round{round_number}.log", arguments.timeout,
                                  arguments.sample_interval, round_number)
                    runs.append(run)
                    log.info("Round %d/%d, %s, %d processes: %.2f s wall, %.2f s CPU, largest process %.0f MiB, %d articles",
                             round_number, arguments.rounds, run.tool, processes, run.wall_s, run.cpu_s,
                             run.max_rss_kib / 1024, run.articles)
        load_after = load_average()
        warnings = check_outputs(runs)
    except BenchmarkError as error:
        log.error("%s", error)
        return 1
    for warning in warnings:
        log.warning("%s", warning)

    (work / "runs.json").write_text(json.dumps([dataclasses.asdict(run) for run in runs], indent=1) + "\n", encoding="utf-8")
    summary = summarize(runs, megabytes, process_counts)
    outputs = {}
    for run in runs:
        outputs.setdefault(run.tool, (run.articles, run.characters))
    try:
        executable = os.path.relpath(sys.executable, Path.cwd())
    except ValueError:
        executable = sys.executable
    context = {
        "dump_name": dump.name,
        "xml_mb": megabytes,
        "compressed_mb": dump.stat().st_size / 1e6,
        "pages": pages,
        "project_description": (("`" + project.describe() + "`") if project.mode == "cli" else project.describe())
        + f", {project_revision(commit)}",
        "wikiextractor_description": wikiextractor.describe(),
        "bytes_per_file": arguments.bytes_per_file,
        "rounds": arguments.rounds,
        "sample_interval": arguments.sample_interval,
        "stand_in": project.mode == "stand-in",
        "outputs": outputs,
        "warnings": warnings,
        "machine": machine_description(project, wikiextractor),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "load_before": load_before,
        "load_after": load_after,
        "command": shlex.join([executable, *sys.argv]),
    }
    arguments.report.parent.mkdir(parents=True, exist_ok=True)
    write_report(arguments.report, summary, context)
    log.info("Wrote %s", arguments.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
