"""The cache: metadata by key, values by fingerprint, in memory and on disk.

Owns: the store protocol and the memory store (:mod:`.store`), the disk
store (:mod:`.disk`) over its metadata rows and its value files
(:mod:`.blobs`, :mod:`.valuecopy`), signing (:mod:`.trust`), the folder's
format and permissions (:mod:`.folder`), the batch writer (:mod:`.writer`),
the run history rows (:mod:`.runlog`) and upkeep (:mod:`.upkeep`).

May import: :mod:`dagnb.errors`. A new store goes in this room.
"""
