"""The mutation gate (`gate`) and its parts: the session that drives mutmut
(`session`, `runner`, `workspace`), the per-function result cache (`cache`)
and the evidence and interval it reports (`evidence`, `interval`)."""
