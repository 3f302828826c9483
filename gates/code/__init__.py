"""The code gates: suite health (with its JUnit and reportlog readers),
coverage and hygiene, plus the one check that keeps every file read inside
the project (`project_paths`)."""
