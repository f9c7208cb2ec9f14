"""Every model module, imported so that ``Base.metadata`` knows every table (Alembic uses this)."""

from __future__ import annotations

from store import (
    models,  # noqa: F401
    models_audit,  # noqa: F401
    models_feeds,  # noqa: F401
    models_methodology,  # noqa: F401
    models_ops,  # noqa: F401
    models_publication,  # noqa: F401
)
from store.models import Base

metadata = Base.metadata
