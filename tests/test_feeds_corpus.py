"""Every file of a real-world feed corpus through parse_feed: a ParsedFeed or a FeedParseError.

Anything else (another exception, a hang past the per-file limit) fails the
test, naming the files. Files run in worker processes so a hung or
memory-hungry parse can be abandoned and killed; each worker also gets an
address-space limit. Folder: ``--feeds-corpus DIR``, else
``../shared/fixtures/feeds-corpus`` next to the repo; skipped when absent.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import resource
import time
import traceback
from pathlib import Path

import pytest

PER_FILE_TIMEOUT_S = 10.0
WORKER_MEMORY_BYTES = 2 * 1024**3
_SKIP_NAMES = ("README", "LICENSE", "MANIFEST")


def _corpus_dir(config: pytest.Config) -> Path:
    given = config.getoption("--feeds-corpus")
    if given:
        return Path(given)
    return Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "feeds-corpus"


def _corpus_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(_SKIP_NAMES) and not p.name.startswith(".")
    )


def _limit_memory() -> None:
    """Worker initializer: a runaway parse dies with MemoryError, not the CI box."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    except (ValueError, OSError):
        pass


def _parse_one(path: str) -> tuple[str, str]:
    """('parsed', n items) | ('rejected', message) | ('crash', traceback). Runs in a worker."""
    from bot.errors import FeedParseError
    from bot.sources.feeds import parse_feed

    try:
        feed = parse_feed(Path(path).read_bytes(), url="https://example.com/feed.xml")
    except FeedParseError as exc:
        return "rejected", str(exc)
    except BaseException:  # noqa: BLE001 - the point is to report anything else
        return "crash", traceback.format_exc(limit=6)
    return "parsed", str(len(feed.items))


def test_feeds_corpus(request: pytest.FixtureRequest) -> None:
    root = _corpus_dir(request.config)
    if not root.is_dir():
        pytest.skip(f"no feeds corpus at {root} (pass --feeds-corpus DIR)")
    files = _corpus_files(root)
    assert files, f"the corpus folder {root} has no files"

    counts = {"parsed": 0, "rejected": 0}
    failures: list[str] = []
    started = time.monotonic()
    ctx = multiprocessing.get_context("spawn")  # no fork of a threaded pytest process
    pool = ctx.Pool(processes=2, initializer=_limit_memory)
    try:
        pending = [(path, pool.apply_async(_parse_one, (str(path),))) for path in files]
        for path, job in pending:
            name = str(path.relative_to(root))
            try:
                outcome, detail = job.get(timeout=PER_FILE_TIMEOUT_S)
            except multiprocessing.TimeoutError:
                failures.append(f"{name}: no result within {PER_FILE_TIMEOUT_S:g}s")
                continue
            if outcome == "crash":
                failures.append(f"{name}: {detail.strip().splitlines()[-1]}")
            else:
                counts[outcome] += 1
    finally:
        pool.terminate()  # kills a worker stuck in a hung parse
        pool.join()

    elapsed = time.monotonic() - started
    summary = (
        f"feeds corpus {root}: {len(files)} files, {counts['parsed']} parsed, "
        f"{counts['rejected']} rejected (FeedParseError), {len(failures)} failures, {elapsed:.1f}s"
    )
    print("\n" + summary)
    request.node.user_properties.append(("feeds_corpus", summary))
    assert not failures, summary + "\n" + "\n".join(failures)
