"""Checking the installed stock provider against the version range an operator module was written for.

The operator modules override stock internals, so they refuse to import with an untested provider.
``packaging.specifiers`` costs ~10 ms to import and nothing else on a DAG parse needs it: a release
version against ``>=``/``<`` clauses is compared with ``packaging.version`` (already loaded by Airflow);
anything else (other operators, pre-, post-, dev- or local versions) goes to ``SpecifierSet``.
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version


def version_in(found: str, spec: str) -> bool:
    """Whether version ``found`` satisfies ``spec`` (``">=10.25.0,<10.26"``), as ``SpecifierSet`` says."""
    try:
        version = Version(found)
        simple = not (version.is_prerelease or version.is_postrelease or version.local)
        lower: list[Version] = []
        upper: list[Version] = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            if part.startswith(">=") and "*" not in part:
                lower.append(Version(part[2:].strip()))
            elif part.startswith("<") and part[1:2] not in ("=", "") and "*" not in part:
                upper.append(Version(part[1:].strip()))
            else:
                simple = False
    except InvalidVersion:
        simple = False
    if not simple:
        from packaging.specifiers import SpecifierSet

        return found in SpecifierSet(spec)
    return all(version >= bound for bound in lower) and all(version < bound for bound in upper)
