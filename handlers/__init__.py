"""The edge: one module per surface, thin functions. handlers/routes.py lists every URL."""
