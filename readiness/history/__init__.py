"""History: the SQLite store of assessments (`store`), the regression rules
and baseline comparison (`regression`), and what one run reads from and
writes to history (`baseline`)."""
