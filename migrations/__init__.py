"""Numbered SQL schema migrations (``NNNN_name.sql``), applied in order by ``server.db.migrate``."""
