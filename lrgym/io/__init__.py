"""The ground floor: what crosses lrgym's edge, and nothing of lrgym above it.

* :mod:`~lrgym.io._atomic`: atomic file writes (a reader never sees half a file).
* :mod:`~lrgym.io.file_checks`: reading the files lrgym trusts (regular, size-capped,
  strict JSON).
* :mod:`~lrgym.io.manifest`: SHA-256 manifests of a folder's files.
* :mod:`~lrgym.io.validate`: checks of the settings users pass in, with errors that name
  the setting and the fix.
* :mod:`~lrgym.io.shipped`: where the artifacts that ship with lrgym live, and how they
  are found.
"""
