"""Video jobs: persisted in SQLite (:mod:`store`), run by a worker pool (:mod:`worker`), their files
removed on time by the sweeper (:mod:`sweeper`)."""
