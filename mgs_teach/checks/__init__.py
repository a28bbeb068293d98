"""Self-checks for the exercises.

Each check takes a student's answer, says whether it is right, gives a hint when it is
not, and returns ``True`` or ``False``. It never prints the solution. Checks live in one
file per chapter and are all available from here::

    from mgs_teach import checks
    checks.mse_update(my_function)
"""

from mgs_teach.checks.fast import *  # noqa: F403
from mgs_teach.checks.gd_step import *  # noqa: F403
from mgs_teach.checks.measuring import *  # noqa: F403
from mgs_teach.checks.mnist import *  # noqa: F403
from mgs_teach.checks.penalty import *  # noqa: F403
from mgs_teach.checks.regularisation import *  # noqa: F403
