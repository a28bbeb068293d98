"""``python -m mgs_teach.lab``: the lab's command line (:mod:`mgs_teach.lab.cli`)."""

from mgs_teach.lab.cli import main

raise SystemExit(main())
