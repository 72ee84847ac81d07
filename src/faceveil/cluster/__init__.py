"""Scale out on a Ray cluster: long videos split into segments, big photo batches.

:mod:`faceveil.cluster.plan` cuts a video on keyframes, :mod:`faceveil.cluster.segments` does a
segment's work, :mod:`faceveil.cluster.join` joins the rendered segments; only
:mod:`faceveil.cluster.ray_backend` (and the modules built on it) imports Ray, lazily, so the
base install works without the ``faceveil[ray]`` extra.
"""
