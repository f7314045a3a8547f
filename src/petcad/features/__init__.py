"""Lesion features: delineation, the 13 diagnostic features, and IBSI texture features (MIRP).

Modules: :mod:`petcad.features.delineation`, :mod:`petcad.features.diagnostic`,
:mod:`petcad.features.ibsi` (optional, needs ``mirp``).
"""
