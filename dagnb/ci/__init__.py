"""The ``dagnb`` command: ``run``, ``check``, ``cache``, ``kernel install``, and the nbval plugin.

Owns: the command line (:mod:`.cli`), the static check and plan
(:mod:`.check` with :mod:`.check_cells` and :mod:`.findings`,
:mod:`.static_plan`), the headless runner (:mod:`.runner`)
and the pytest plugin (:mod:`.nbval_plugin`).

May import: anything in dagnb except :mod:`dagnb.widgets`. Nothing in the
engine imports it. A new CLI verb goes here.
"""
