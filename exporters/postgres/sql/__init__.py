"""Statements the writer and the read API run, one ``.sql`` file each (see :mod:`..statements`)."""
