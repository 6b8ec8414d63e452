"""Fingerprints (a wing named in the plural: ``dagnb.fingerprint`` is the public function): what a value, a piece of code or a file is, as a digest.

Owns, by role:

* values: the hash and its framing (:mod:`.stream`), which handler writes a
  value, with builtin scalars and containers and the lazy library handlers
  (:mod:`.dispatch`), the fallback via pickle (:mod:`.pickled`), and the
  entry, depth, cycles and files (:mod:`.values`); numpy and pandas
  (:mod:`.arrays`), Arrow (:mod:`.arrow`), the PyData libraries' types
  (:mod:`.libraries`);
* code: a function's own code (:mod:`.own_code`), user code or library and
  library versions (:mod:`.modules`), what code references
  (:mod:`.references`), the part of a key each reference adds
  (:mod:`.walk`), files edited after their import (:mod:`.edited`), and the
  entry points (:mod:`.code`);
* what a global name stands for (:mod:`.scopes`) and what a task reads that
  its key cannot cover (:mod:`.untracked`, with its table of calls
  :mod:`.untracked_rules` and a function's syntax :mod:`.untracked_syntax`).

Arrows inside the wing point down, with no circle: :mod:`.stream` at the
bottom, then :mod:`.dispatch`, :mod:`.pickled` (which registers itself as
the handler of ``object``), :mod:`.values`; the library handlers and the
code modules build on them. A value can hold code or a library's type, so
values must reach upward: this module hands :mod:`.dispatch` the token of
code inside a value (:func:`.code.value_code_token`) and the library handler
table once, when the wing is first imported (any ``dagnb.fingerprints.*``
import runs it first).

Modules keep their names in fingerprints: one split out of ``values.py``,
``code.py`` or ``untracked.py`` is named as that module was before the
package had rooms (``dagnb._moved.SPLIT``), and ``values.py`` and ``code.py``
re-export what other rooms import from them.

May import: :mod:`dagnb.errors`, :mod:`dagnb.keyparts` and
:mod:`dagnb._moved`. Nothing else of dagnb: every other room fingerprints
through here. A new value type goes in this room.
"""

from dagnb.fingerprints import code as _code
from dagnb.fingerprints import dispatch as _dispatch
from dagnb.fingerprints import libraries as _libraries

_dispatch.connect(_code.value_code_token, _libraries.HANDLERS)
