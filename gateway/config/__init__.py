"""The site config: the TOML schema (``schema``), its cross-checks (``checks``)."""
