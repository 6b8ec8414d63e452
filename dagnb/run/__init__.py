"""Running task bodies: the executor's ready queue and the backends under it.

Owns: the executor (:mod:`.executor`), the backends and their pool
(:mod:`.backends`, :mod:`.dask_backend`), the body run in a worker process
(:mod:`.worker`), one body for blocking and awaited paths (:mod:`.aio`),
map slices (:mod:`.mapping`), ``--when`` (:mod:`.condition`), costs
(:mod:`.costs`), ``--save`` (:mod:`.save`) and captured prints
(:mod:`.capture`).

May import: :mod:`dagnb.errors`, :mod:`dagnb.events`, :mod:`dagnb.plan` and
:mod:`dagnb.fingerprints`. A worker process imports only this room and
:mod:`dagnb.fingerprints`. A new backend goes in this room.
"""
