"""petcad: computer-aided diagnosis of lesions on 18F-FDG PET/CT."""

from petcad.errors import InputError
from petcad.study import Cohort, Lesion, Study, Volume

__version__ = "0.1.0"

__all__ = ["Cohort", "InputError", "Lesion", "Study", "Volume", "__version__"]
