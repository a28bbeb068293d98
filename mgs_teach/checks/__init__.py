"""Self-checks for the exercises.

Each check takes a student's answer, says whether it is right, gives a hint when it is
not, and returns ``True`` or ``False``. It never prints the solution. Checks live in one
file per chapter and are all available from here::

    from mgs_teach import checks
    checks.mse_update(my_function)
"""

from mgs_teach.checks import adversarial as _adversarial
from mgs_teach.checks import fast as _fast
from mgs_teach.checks import gd_step as _gd_step
from mgs_teach.checks import measuring as _measuring
from mgs_teach.checks import mnist as _mnist
from mgs_teach.checks import ntk as _ntk
from mgs_teach.checks import penalty as _penalty
from mgs_teach.checks import regression as _regression
from mgs_teach.checks import regularisation as _regularisation
from mgs_teach.checks.adversarial import *  # noqa: F403
from mgs_teach.checks.fast import *  # noqa: F403
from mgs_teach.checks.gd_step import *  # noqa: F403
from mgs_teach.checks.measuring import *  # noqa: F403
from mgs_teach.checks.mnist import *  # noqa: F403
from mgs_teach.checks.ntk import *  # noqa: F403
from mgs_teach.checks.penalty import *  # noqa: F403
from mgs_teach.checks.regression import *  # noqa: F403
from mgs_teach.checks.regularisation import *  # noqa: F403

_MODULES = (_adversarial, _fast, _gd_step, _measuring, _mnist, _ntk, _penalty, _regression,
            _regularisation)  # fmt: skip
__all__ = sorted(name for module in _MODULES for name in module.__all__)
