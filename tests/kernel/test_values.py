"""Values that stay true, in a real ipykernel driven by jupyter_client, each scenario followed by a restart.

A restart is a new kernel over the same ``DAGNB_CACHE_DIR``, running the same
cells again. Executions are counted in a log file the task bodies append to
(``note``), never from dagnb's own report; Ctrl-C is the notebook's stop
button (``interrupt_kernel``: SIGINT to the kernel).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kernel.live_kernel import LiveKernel

pytestmark = pytest.mark.kernel

SETUP = (
    "%load_ext dagnb\nimport os, time, warnings\nwarnings.simplefilter('always')\nLOG = {log!r}\nHOLD = {hold!r}\n"
    "def note(text):\n    with open(LOG, 'a') as fh:\n        fh.write(text + '\\n')\n"
)


@pytest.fixture()
def kernels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], LiveKernel]]:
    """Start kernels one after the other (each one a restart of the last) over one cache."""
    monkeypatch.setenv("DAGNB_CACHE_DIR", str(tmp_path / "cache"))
    started: list[LiveKernel] = []

    def start() -> LiveKernel:
        if started:
            started[-1].shutdown()
        kernel = LiveKernel(tmp_path, dict(os.environ))
        started.append(kernel)
        kernel.text(SETUP.format(log=str(tmp_path / "log.txt"), hold=str(tmp_path / "hold")))
        return kernel

    yield start
    if started:
        started[-1].shutdown()


def notes(tmp_path: Path) -> list[str]:
    path = tmp_path / "log.txt"
    return path.read_text().split() if path.exists() else []


def wait_for(tmp_path: Path, text: str) -> None:
    deadline = time.monotonic() + 60
    while text not in notes(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.01)


# ------------------------------------------------------------------ item 1: in-place changes

RAW = "%%task\ndef raw():\n    note('raw')\n    return [3, 1, 2]\n"
FIRST = "%%task\ndef first(raw):\n    note('first')\n    raw.sort()\n    return raw[0]\n"
LISTED = "%%task\ndef listed(raw):\n    note('listed')\n    return list(raw)\n"


def test_in_place_changes_by_a_task_and_by_a_cell_never_reach_the_cache(kernels: Callable[[], LiveKernel],
                                                                         tmp_path: Path) -> None:
    kernel = kernels()
    assert kernel.text(RAW).strip() == "raw: ran (new)"
    text = kernel.text(FIRST)
    assert "ValueChangedWarning: The value of task `raw` was changed in place after it was computed, by task " \
           "`first`. As soon as that task finished, dagnb reloaded it from the cache" in text
    assert kernel.text("print(raw, first)").strip() == "[3, 1, 2] 1"
    kernel.text("raw.append(99)")  # a user's ordinary cell
    text = kernel.text(LISTED)
    assert "The value of task `raw` was changed in place after it was computed, by code outside its task (a " \
           "cell). Before task `listed` read it, dagnb reloaded it from the cache" in text
    assert kernel.text("print(listed, raw)").strip() == "[3, 1, 2] [3, 1, 2]"
    assert notes(tmp_path) == ["raw", "first", "listed"]

    kernel = kernels()  # restart: the cached values are those of the unchanged input
    for cell in (RAW, FIRST, LISTED):
        assert kernel.text(cell).strip().endswith("cached")
    assert kernel.text("print(raw, first, listed)").strip() == "[3, 1, 2] 1 [3, 1, 2]"
    assert notes(tmp_path) == ["raw", "first", "listed"], "nothing ran after the restart"
    assert kernel.text("%dag config --no-verify-inputs").strip() == "verify inputs: off"
    assert kernel.text("%dag config").strip() == "check mutation: off\nverify inputs: off\nfollow: on"


# ------------------------------------------------------------------ item 2: interrupts a task swallows

TRAIN = (
    "%%task --no-run\ndef train():\n    note('train')\n    try:\n        while os.path.exists(HOLD):\n"
    "            time.sleep(0.01)\n    except KeyboardInterrupt:\n        return 'partial'\n    return 'complete'\n"
)
SCORE = "%%task --no-run\ndef score(train):\n    note('score')\n    return train.upper()\n"
INTERRUPTED = (
    "TaskInterrupted: Task `train` was interrupted: it caught the KeyboardInterrupt and returned early, so its "
    "value may be partial. The value is bound for you to look at, but not cached; its status is `interrupted`, "
    "tasks after it did not start, and the next run runs `train` again. Finished and kept: `train` (interrupted: "
    "its value is partial, in memory only). Cancelled: `score` (not started). Run `%dag run` again to resume: "
    "only the 2 unfinished tasks run, the others are kept."
)


def test_a_task_that_catches_ctrl_c_is_interrupted_never_cached_and_reruns(kernels: Callable[[], LiveKernel],
                                                                          tmp_path: Path) -> None:
    kernel = kernels()
    kernel.text(TRAIN)
    kernel.text(SCORE)
    (tmp_path / "hold").touch()
    msg_id = kernel.start("%dag run")
    wait_for(tmp_path, "train")
    kernel.interrupt()  # the stop button
    cell = kernel.collect(msg_id)
    assert cell.status == "error" and [m.content["ename"] for m in cell.errors] == ["TaskInterrupted"]
    assert [m.content["traceback"] for m in cell.errors] == [[INTERRUPTED]]
    shown = kernel.text("import dagnb\nprint(train, dagnb.current().statuses, dagnb.current().last_run.summary())")
    assert shown.strip() == "partial {'train': 'interrupted', 'score': 'skipped'} run: 0 ran, 0 cached, " \
                            "1 interrupted, 1 skipped"
    assert kernel.text("%dag plan").splitlines()[1].split() == ["train", "run", "(interrupted", "last", "time)"]
    assert notes(tmp_path) == ["train"]

    (tmp_path / "hold").unlink()
    kernel = kernels()  # restart: the partial value was never cached, so `train` runs again
    kernel.text(TRAIN)
    kernel.text(SCORE)
    assert kernel.text("%dag run").splitlines()[:3] == ["run: 2 ran, 0 cached", "  train: ran (new)",
                                                      "  score: ran (new)"]
    assert kernel.text("print(score)").strip() == "COMPLETE"
    assert notes(tmp_path) == ["train", "train", "score"]


# ------------------------------------------------------------------ item 4: --save copies equal the value

def saving(value: int) -> str:
    return f"%%task --save \"out/{{name}}.json\"\ndef first():\n    note('first')\n    return {{'v': {value}}}\n"


def test_save_copies_equal_the_value_whatever_the_notebook_names(kernels: Callable[[], LiveKernel],
                                                                 tmp_path: Path) -> None:
    import json

    kernel = kernels()
    kernel.text("name = 'oops'")  # IPython would put this into `{name}` of a magic line
    kernel.text(saving(1))
    kernel.text("%%task --save \"out/{name}.json\"\ndef second():\n    return [1, 2]\n")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["first.json", "second.json"]
    cell = kernel.run("%%task --save out/first.json\ndef third():\n    return 3\n")
    assert cell.status == "error"
    assert [m.content["traceback"] for m in cell.errors] == [[
        "SavePathTaken: Task `third` saves to `out/first.json`, which task `first` also writes: each run would "
        "overwrite the other's file. Give one of them another `--save` path (`{name}` in it stands for the "
        "task's name)."
    ]]
    kernel.text(saving(2))
    assert json.loads((out / "first.json").read_text()) == {"v": 2}

    kernel = kernels()  # restart with the first version: a cache hit, and the copy is the value again
    assert kernel.text(saving(1)).strip() == "first: cached"
    assert json.loads((out / "first.json").read_text()) == {"v": 1}
    assert notes(tmp_path) == ["first", "first"]


# ------------------------------------------------------------------ items 5 and 7: bookkeeping never crashes

BOOKKEEPING = [
    "import multiprocessing, dagnb\nos.makedirs('data/inner', exist_ok=True)\n"
    "open('data/inner/a.txt', 'w').write('a')\nDATA = dagnb.file('data')",
    "%%task\ndef sibling():\n    note('sibling')\n    return [1, 2]\n",
    "%%task\ndef queue():\n    note('queue')\n    return multiprocessing.Queue()\n",
    "%%task\ndef files(folder=DATA):\n    note('files')\n    return sorted(os.listdir(folder))\n",
    "%%task\ndef numbers():\n    note('numbers')\n    return iter([1, 2, 3])\n",
    "%%task\ndef first(numbers):\n    note('first')\n    return sum(numbers)\n",
]
SECOND = "%%task\ndef second(numbers):\n    note('second')\n    return max(numbers)\n"


def test_values_that_break_pickling_sizing_or_reading_never_crash_a_run(kernels: Callable[[], LiveKernel],
                                                                         tmp_path: Path) -> None:
    kernel = kernels()
    texts = [kernel.text(cell) for cell in BOOKKEEPING]
    assert "UnpicklableOutputWarning: The value of task `queue` cannot be pickled (RuntimeError: Queue objects " \
           "should only be shared between processes through inheritance); it is kept in memory only and " \
           "recomputed after a restart." in texts[2]
    assert "dagnb" not in texts[2].split("UnpicklableOutputWarning")[0], "the warning points at the cell"
    assert texts[3].strip() == "files: ran (new)"
    cell = kernel.run(SECOND)
    assert cell.status == "error" and [m.content["ename"] for m in cell.errors] == ["TaskFailed"]
    [error] = [m.content for m in cell.errors]
    assert error["traceback"][-1] == (
        "TaskFailed: Task `second` did not run: its input `numbers` is an iterator (a generator, a `map`) that "
        "task `first` already read, so it is used up and `second` would see nothing. Make task `numbers` return "
        "a list (`return list(...)`), so that every task reading it gets all of it."
    )
    assert kernel.text("print(sibling, first, type(queue).__name__)").strip() == "[1, 2] 6 Queue"
    assert notes(tmp_path) == ["sibling", "queue", "files", "numbers", "first"]

    kernel = kernels()  # restart: what could be pickled loads; the queue is computed again
    texts = [kernel.text(cell) for cell in BOOKKEEPING]
    assert [t.strip().splitlines()[-1] for t in texts[1:]] == [
        "sibling: cached", "queue: ran (not in cache)", "files: cached", "numbers: cached", "first: cached"]
    assert notes(tmp_path)[5:] == ["queue"]
