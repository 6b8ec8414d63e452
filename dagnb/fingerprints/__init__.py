"""Fingerprints (a wing named in the plural: ``dagnb.fingerprint`` is the public function): what a value, a piece of code or a file is, as a digest.

Owns: value streams (:mod:`.values`), numpy and pandas (:mod:`.arrays`), the
PyData libraries' types (:mod:`.libraries`), code with its helpers, globals
and local modules (:mod:`.code`), what a global name stands for
(:mod:`.scopes`) and what a task reads that its key cannot cover
(:mod:`.untracked`).

Arrows inside the wing: :mod:`.values` at the bottom; :mod:`.arrow`,
:mod:`.arrays`, :mod:`.libraries` and :mod:`.code` build on it. A value can
hold code or a library's type, so values must reach upward: this module hands
it :func:`.code.value_code_token` and the library handler table once, when
the wing is first imported (any ``dagnb.fingerprints.*`` import runs it first).

May import: :mod:`dagnb.errors`. Nothing else of dagnb: every other room
fingerprints through here. A new value type goes in this room.
"""

from dagnb.fingerprints import code as _code
from dagnb.fingerprints import dispatch as _dispatch
from dagnb.fingerprints import libraries as _libraries

_dispatch.connect(_code.value_code_token, _libraries.HANDLERS)
