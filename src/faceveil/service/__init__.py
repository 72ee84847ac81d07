"""The self-hosted web app and REST API (``faceveil serve``).

Layout: :mod:`settings` (typed configuration from the environment), :mod:`app` (the app factory),
:mod:`routers` (one module per resource), :mod:`jobs` (the SQLite job store, the worker pool and the
retention sweeper), :mod:`security` (secret, sessions, CSRF, login rate limit), :mod:`audit`,
:mod:`uploads` (streamed uploads with byte counter and disk quota). The library never imports
this package.
"""
