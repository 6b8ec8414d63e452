"""The cache: metadata by key, values by fingerprint, in memory and on disk.

Owns: the store protocol, run history included, and the memory store
(:mod:`.store`); the stored records and their codecs (:mod:`.records`);
what the cache commands report (:mod:`.results`); the disk store
(:mod:`.disk`), a thin composition of its metadata store (:mod:`.metadata`:
signed SQLite rows, small values in their rows) and its values
(:mod:`.values` over the blob files of :mod:`.blobs` and :mod:`.valuecopy`);
the secret and signing (:mod:`.trust`); the folder (:mod:`.folder`) and its
format (:mod:`.format`); the batch writer (:mod:`.writer`); heads and hit
counts per scope (:mod:`.heads`), the run history rows (:mod:`.runlog`) and
upkeep (:mod:`.upkeep`).

May import: :mod:`dagnb.errors` and :mod:`dagnb.scope` (leaves that import
nothing of dagnb). A new store goes in this room.
"""
