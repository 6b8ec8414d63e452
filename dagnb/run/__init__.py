"""Running task bodies: the executor's ready queue and the backends under it.

Owns: the executor (:mod:`.executor`; the state of one run in :mod:`.state`, how it
waits for its tasks in :mod:`.waiters`), the per-run :class:`~.taskrunner.TaskRunner`
the executor calls back (:mod:`.taskrunner`, committing outcomes in
:mod:`.commit`), one task-body runner for every path (:mod:`.body`), the
backends and their pool (:mod:`.backends`, :mod:`.dask_backend`), the body
run in a worker process (:mod:`.worker`), one run loop for blocking and
awaited runs (:mod:`.aio`),
map slices (:mod:`.mapping`; a map task's elements looked up in the cache
and split per worker in :mod:`.map_work`), ``--when`` (:mod:`.condition`), costs
(:mod:`.costs`), ``--save`` (:mod:`.save`) and captured prints
(:mod:`.capture`).

May import: :mod:`dagnb.errors`, :mod:`dagnb.events`, :mod:`dagnb.plan` and
:mod:`dagnb.fingerprints`; the task runner, its commit and its map work also the cache
(:mod:`dagnb.cache`), since a run writes it. A worker process imports only this room,
:mod:`dagnb.fingerprints`, :mod:`dagnb.errors` and :mod:`dagnb.events` (for the
:class:`~dagnb.events.Costs` record an outcome carries). A new backend goes in this room.
"""
