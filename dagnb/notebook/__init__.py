"""IPython glue: ``%%task`` and ``%dag``, the page that follows the session, the kernelspec.

Owns: the magics (:mod:`.magics` registers :mod:`.dagmagics` on the shell;
the ``%%task`` cell in :mod:`.task_cell`, the ``%dag`` subcommands by group in
the ``dag_*`` modules; what they share in :mod:`.running`, :mod:`.failures`,
:mod:`.outputs` and :mod:`.displays`), status lines and views kept true after
each cell (:mod:`.follow`, :mod:`.status_lines`), which notebook the kernel
runs (:mod:`.kernel_notebook`) and the "Python 3 (dagnb)" kernel
(:mod:`.kernelspec`).

May import: anything in dagnb. Nothing outside this room and
:mod:`dagnb.widgets` imports it (``load_ipython_extension`` aside). A new
``%dag`` subcommand goes here; its logic goes in the engine.
"""
