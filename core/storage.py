"""Static files storage for production (DEBUG off)."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):  # type: ignore[misc]
    """WhiteNoise's hashed, compressed storage, leaving source-map comments in scripts alone.

    Vendored libraries are copied as released (static/vendor/README.md) and name source
    maps that are not shipped (leaflet.js names leaflet.js.map); rewriting those comments
    made collectstatic fail, so a production deployment could not start.
    """

    patterns = tuple(
        (glob, rules)
        for glob, rules in CompressedManifestStaticFilesStorage.patterns
        if glob != "*.js"
    )
