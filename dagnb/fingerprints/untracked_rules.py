"""Which calls read what a task's key cannot cover: the table, and how a call is judged against it.

Four kinds (see :mod:`.untracked`): a process-wide random generator, the
clock, the environment, and a file opened or read by a plain path. Each is a
dotted name (``numpy.random.rand``, ``time.time``, ``os.getenv``,
``pandas.read_csv``) as :class:`.untracked.Scope` resolves it.

Invariants:

* A seeded generator (``np.random.default_rng(seed)``,
  ``random.Random(seed)``) is deterministic; the same call with no seed, or
  with ``None``, is not. A seed call (:data:`_SEEDS`) makes its generator's
  family deterministic for the whole task.
* A call that reads the clock only when given no time (``time.strftime(fmt)``)
  counts only then; ``pd.Timestamp("now")`` counts by its literal word.
* An ``open`` counts only when its mode is a literal that reads; what is not
  written as a literal is not judged (no false alarm on purpose).
* The words of a finding (:data:`_WHAT`) are the words of the message the user reads.

Imports nothing of dagnb.
"""

from __future__ import annotations

import ast
from typing import Any

# ------------------------------------------------------------------------ the table

# Functions that draw from a process-wide generator; a seed call (right) makes them deterministic.
_GLOBAL_GENERATORS: dict[str, frozenset[str] | None] = {
    "random": frozenset(
        {
            "random",
            "randint",
            "randrange",
            "randbytes",
            "getrandbits",
            "choice",
            "choices",
            "shuffle",
            "sample",
            "uniform",
            "triangular",
            "gauss",
            "normalvariate",
            "lognormvariate",
            "expovariate",
            "vonmisesvariate",
            "gammavariate",
            "betavariate",
            "paretovariate",
            "weibullvariate",
            "binomialvariate",
        }
    ),
    "numpy.random": None,  # every function, but the generator classes and the state calls below
    "torch": frozenset(
        {
            "rand",
            "randn",
            "randint",
            "randperm",
            "rand_like",
            "randn_like",
            "randint_like",
            "normal",
            "bernoulli",
            "multinomial",
            "poisson",
        }
    ),
}
_SEEDS = {
    "random.seed": "random",
    "numpy.random.seed": "numpy.random",
    "torch.manual_seed": "torch",
    "torch.random.manual_seed": "torch",
}
_NUMPY_NOT_DRAWS = frozenset(
    {"Generator", "BitGenerator", "seed", "get_state", "set_state", "get_bit_generator", "set_bit_generator"}
)
# Generators that are deterministic when given a seed, and draw from the OS without one.
_SEEDABLE = frozenset(
    {
        "random.Random",
        "numpy.random.default_rng",
        "numpy.random.RandomState",
        "numpy.random.SeedSequence",
        "numpy.random.PCG64",
        "numpy.random.PCG64DXSM",
        "numpy.random.MT19937",
        "numpy.random.Philox",
        "numpy.random.SFC64",
    }
)
_NEVER_SEEDED = frozenset({"random.SystemRandom", "os.urandom", "os.getrandom", "uuid.uuid1", "uuid.uuid4"})

_CLOCK = frozenset(
    {
        "time.time",
        "time.time_ns",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "pandas.Timestamp.now",
        "pandas.Timestamp.today",
        "pandas.Timestamp.utcnow",
    }
)
_CLOCK_WITHOUT_TIME = {
    "time.localtime": 0,
    "time.gmtime": 0,
    "time.ctime": 0,
    "time.asctime": 0,
    "time.strftime": 1,
}  # the current time when given at most this many arguments
_CLOCK_BY_WORD = frozenset({"pandas.Timestamp", "pandas.to_datetime", "numpy.datetime64"})  # ("now"), ("today")

_ENVIRON = frozenset({"os.environ", "os.environb"})
_ENVIRON_CALLS = frozenset({"os.getenv", "os.getenvb"})
_ENVIRON_WRITES = frozenset({"update", "clear", "__setitem__", "__delitem__"})

_OPENERS = frozenset({"builtins.open", "io.open"})
_READERS = frozenset(
    {
        "numpy.load",
        "numpy.loadtxt",
        "numpy.genfromtxt",
        "numpy.fromfile",
        "joblib.load",
        "torch.load",
        "xarray.open_dataset",
        "xarray.open_dataarray",
        "xarray.open_mfdataset",
        "xarray.open_zarr",
        "xarray.load_dataset",
        "xarray.load_dataarray",
        "pyarrow.parquet.read_table",
        "pyarrow.csv.read_csv",
        "pyarrow.feather.read_table",
        "pyarrow.feather.read_feather",
    }
)
_READER_PREFIXES = ("pandas.read_", "polars.read_", "polars.scan_")
_NOT_FILE_READERS = ("pandas.read_sql", "pandas.read_gbq", "pandas.read_clipboard", "polars.read_database")
_PATH_KEYWORDS = frozenset(
    {
        "file",
        "path",
        "fname",
        "filename",
        "filepath_or_buffer",
        "path_or_buf",
        "io",
        "source",
        "filename_or_obj",
        "store",
        "f",
    }
)
_PATH_CLASSES = frozenset({"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "pathlib.WindowsPath"})
_PATH_BUILDERS = _PATH_CLASSES | {"os.path.join", "os.path.expanduser", "os.path.abspath", "os.fspath", "builtins.str"}

_WHAT = {
    "global": "the global random generator",
    "unseeded": "a random generator without a seed",
    "never": "a random source that takes no seed",
    "clock": "the clock",
    "environment": "the environment",
    "file": "a file that is not a `dagnb.file` input",
}
_CODE_WIDTH = 40


def _rule(dotted: str, call: ast.Call) -> tuple[str, str, str | None] | None:
    """``(kind, what, family)`` when calling ``dotted`` like ``call`` reads something untracked."""
    module, _, name = dotted.rpartition(".")
    draws = _GLOBAL_GENERATORS.get(module, frozenset())
    if (name in draws) if draws is not None else (name not in _NUMPY_NOT_DRAWS and dotted not in _SEEDABLE):
        return "random", _WHAT["global"], module
    if dotted in _SEEDABLE and not _seeded(call):
        return "random", _WHAT["unseeded"], None
    if dotted in _NEVER_SEEDED or module == "secrets":
        return "random", _WHAT["never"], None
    if dotted in _CLOCK or len(call.args) + len(call.keywords) <= _CLOCK_WITHOUT_TIME.get(dotted, -1):
        return "clock", _WHAT["clock"], None
    if dotted in _CLOCK_BY_WORD and call.args and _literal(call.args[0]) in ("now", "today"):
        return "clock", _WHAT["clock"], None
    if dotted in _ENVIRON_CALLS:
        return "environment", _WHAT["environment"], None
    return None


def _seeded(call: ast.Call) -> bool:
    given = [*call.args, *(k.value for k in call.keywords if k.arg in ("seed", "x", "entropy", "a"))]
    return bool(given) and not (isinstance(given[0], ast.Constant) and given[0].value is None)


def _reads_file(dotted: str) -> bool:
    if dotted in _OPENERS or dotted in _READERS:
        return True
    return dotted.startswith(_READER_PREFIXES) and not dotted.startswith(_NOT_FILE_READERS)


def _literal(node: ast.AST | None) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    if len(text) <= _CODE_WIDTH or not isinstance(node, ast.Call):
        return text if len(text) <= _CODE_WIDTH else text[: _CODE_WIDTH - 3] + "..."
    return ast.unparse(node.func) + "(...)"


def _mode(call: ast.Call, position: int) -> Any:
    """The ``mode`` argument of an ``open`` call: ``"r"`` when absent, ``None`` when not a literal."""
    for keyword in call.keywords:
        if keyword.arg == "mode":
            return _literal(keyword.value)
    if len(call.args) > position:
        return _literal(call.args[position])
    return "r"


def _reads(mode: Any) -> bool:
    return isinstance(mode, str) and "r" in mode


def _path_argument(call: ast.Call) -> ast.AST | None:
    if call.args:
        return None if isinstance(call.args[0], ast.Starred) else call.args[0]
    return next((k.value for k in call.keywords if k.arg in _PATH_KEYWORDS), None)
