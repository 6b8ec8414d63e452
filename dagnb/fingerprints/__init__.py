"""Fingerprints (a wing named in the plural: ``dagnb.fingerprint`` is the public function): what a value, a piece of code or a file is, as a digest.

Owns: value streams (:mod:`.values`), numpy and pandas (:mod:`.arrays`), the
PyData libraries' types (:mod:`.libraries`), code with its helpers, globals
and local modules (:mod:`.code`), what a global name stands for
(:mod:`.scopes`) and what a task reads that its key cannot cover
(:mod:`.untracked`).

May import: :mod:`dagnb.errors`. Nothing else of dagnb: every other room
fingerprints through here. A new value type goes in this room.
"""
