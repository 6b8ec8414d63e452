"""Library handlers come from one table (``HANDLERS`` in ``dagnb/fingerprints/libraries.py``), with no count:
a row is all a new library needs, and each row registers once its module is loaded, whenever that is."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys, types
    from dagnb.fingerprints import libraries, values

    calls = []

    def library(name):
        module = types.ModuleType(name)
        module.Thing = type("Thing", (), {"__module__": name})
        return module

    def register(name):
        def into(registry):
            calls.append(name)
            registry.register(sys.modules[name].Thing)(lambda v, h: h.update(name.encode()))
        return into

    for name in ("first_lib", "second_lib", "third_lib"):
        libraries.HANDLERS[name] = register(name)

    sys.modules["first_lib"] = library("first_lib")
    a = values.fingerprint(sys.modules["first_lib"].Thing())
    sys.modules["second_lib"] = library("second_lib")  # loaded later: still registered
    b = values.fingerprint(sys.modules["second_lib"].Thing())
    values.fingerprint(sys.modules["first_lib"].Thing())
    print(calls, a != b, "numpy" in sys.modules)
""")


def test_each_row_of_the_table_registers_once_after_its_module_loads_with_no_count():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[0] == "['first_lib', 'second_lib'] True False"
